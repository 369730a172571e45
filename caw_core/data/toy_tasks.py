"""The toy world's zero-shot tasks, registered in the dataset registry.

Each task classifies one attribute of the toy scenes (see
:mod:`caw_core.data.toyworld`): ``toy-shape`` (the training task, the
TinyImageNet stand-in), ``toy-colour``, ``toy-texture``, ``toy-size`` and
``toy-position`` (held out). All tasks share the same scenes per split and
differ only in the label they read off:

    train  20,000 scenes, stream seed 1, only pretraining-seen compositions
    test    1,000 scenes, stream seed 2, every composition (incl. held-out pairs)
    val     1,000 scenes, stream seed 3, every composition: for choosing hyper-parameters
            (the toy experiment's learning rates) on the training task; no reported number uses it

Scenes are rendered on first access (random-access, deterministic) and kept
in the per-process render cache of :func:`caw_core.data.toyworld.rendered`;
a DataLoader batch of misses is rendered in one vectorised call
(``__getitems__``). The 64x64 uint8 render goes through the registry's PIL -> tensor ``transform``, which resizes
it to the requested ``image_size`` (at 64 that is the identity), so the toy
tasks behave exactly like image-folder datasets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PIL import Image

from caw_core.data import toyworld as tw
from caw_core.data.registry import DatasetSpec, register

SPLITS = {  # split -> (stream seed, number of scenes, composition)
    "train": (1, 20_000, "seen"),
    "test": (2, 1_000, "all"),
    "val": (3, 1_000, "all"),
}

# task name -> (attribute, display name, prompt templates). The templates are
# phrased like the pretraining captions, which almost always name the shape, so
# the held-out tasks ensemble over every shape name (plus the generic "shape"),
# as CLIP's zero-shot heads ensemble over templates.
_NOUNS = tw.SHAPES + ("shape",)
TASKS = {
    "toy-shape": ("shape", "Toy shape", ("a photo of a {}.",)),
    "toy-colour": ("colour", "Toy colour", tuple(f"a photo of a {{}} {n}." for n in _NOUNS)),
    "toy-texture": ("texture", "Toy texture", tuple(f"a photo of a {n} on a {{}} background." for n in _NOUNS)),
    "toy-size": ("size", "Toy size", tuple(f"a photo of a {{}} {n}." for n in _NOUNS)),
    "toy-position": ("position", "Toy position", tuple(f"a photo of a {n} in the {{}}." for n in _NOUNS)),
}
assert tuple(TASKS) == tw.TOY_TASKS


class ToySceneDataset:
    """``n`` toy scenes of stream ``seed``, labelled by one ``attribute`` (a map-style dataset: torch's
    DataLoader takes any object with ``__len__`` and ``__getitem__``; not subclassing torch's ``Dataset`` keeps
    this module, and so ``caw-core data check``, free of torch)."""

    def __init__(self, attribute: str, seed: int, n: int, composition: str, transform: Callable):
        self.attribute, self.seed, self.n = attribute, seed, n
        self.composition, self.transform = composition, transform

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list:
        """The items of ``indices`` (the DataLoader's batched fetch)."""
        for index in indices:
            if not 0 <= index < self.n:
                raise IndexError(index)
        images, labels = tw.rendered(self.seed, indices, self.composition)
        column = list(tw.ATTRIBUTES).index(self.attribute)
        return [(self.transform(Image.fromarray(image)), int(label[column])) for image, label in zip(images, labels)]


def _builder(attribute: str):
    def build(root: Path, split: str, transform: Callable):
        seed, n, composition = SPLITS[split]
        return ToySceneDataset(attribute, seed, n, composition, transform), list(tw.ATTRIBUTES[attribute])

    return build


for _name, (_attribute, _display, _templates) in TASKS.items():
    register(
        DatasetSpec(
            name=_name,
            display_name=_display,
            templates=_templates,
            expected_layout="(generated on the fly; no files)",
            missing_files=lambda root: [],
            build=_builder(_attribute),
            splits=("test", "train", "val"),
            synthetic=True,
            family="toy",
        )
    )
