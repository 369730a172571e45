"""The attack playground without a window: one image, a vanilla and a fine-tuned CLIP, clean vs adversarial.

What is attacked. The image is resized (shorter side, bicubic) and centre-cropped to the
model's input size S x S (:func:`caw_core.data.transforms.pixel_transform`); that S x S image
x in [0, 1] is what every model sees and what the attack perturbs.

Labels. The attack pushes away from a label y: the true label when it is known (a toy scene
carries its own; a user may name one), else the clean prediction of the model it is crafted on
(the attack then only tries to change that model's mind). Each model tested on an adversarial
x' gets a verdict against its own reference label (y when known, else its own clean prediction):

- ``robust``: argmax f(x') is still the reference label;
- ``fooled``: argmax f(x') differs from it;
- ``wrong``: the true label is known and f already misclassifies the clean image (nothing left
  to attack; its adversarial verdict would be meaningless).

Threat model: ``{x' : ||x' - x|| <= eps/255, x' in [0, 1]^d}`` (linf or l2), white-box on the
model the attack is crafted on. ``source="each"`` attacks every model with its own gradients;
``"vanilla"`` / ``"finetuned"`` craft on that model and show the same x' to both (transfer).
An attack that returns x' == x found nothing inside the ball (AutoAttack keeps the clean image
when all its runs fail); the record says so (``found_nothing``).

Steps mean the same everywhere (playground, ``caw-core attack``, evaluation): the iterations of
the attack, i.e. PGD/CW steps or the iterations of each APGD run of AutoAttack; None = the
attack's default from :data:`caw_core.attacks.registry.ATTACKS`.

Cancellation: the attack runs with ``should_stop`` (:mod:`caw_core.attacks.control`), checked
before every forward pass; when it turns true the attack raises :class:`AttackCancelled`, so a
cancel lands within one forward/backward of the running attack, whatever its number of steps.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from PIL import Image

from caw_core.attacks.registry import attack_images, parse_attack
from caw_core.data import toyworld as tw
from caw_core.data.toy_tasks import TASKS
from caw_core.data.transforms import pixel_transform
from caw_core.distributed import resolve_device
from caw_core.evaluate import validate_budget
from caw_core.models import ModelSpec, ZeroShotCLIP, load_model
from caw_core.models.checkpoint import MODEL_FILE, resolve_checkpoint

ROLES = ("vanilla", "finetuned")
SOURCES = ("each", "vanilla", "finetuned")
TEMPLATE_SEPARATOR = " | "
MAX_STEPS = 100_000  # one image, interactively: more iterations than this is a typo
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class ClassPreset:
    """A ready-made zero-shot task: class names, prompt templates (averaged), and for a toy task the scene
    attribute whose value is the true label."""

    display: str
    classnames: tuple[str, ...]
    templates: tuple[str, ...]
    attribute: Optional[str] = None


def class_presets() -> dict[str, ClassPreset]:
    """The presets by short name: the five toy tasks (``toy-shape`` ...), ``cifar10`` and ``imagenet``."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    presets = {name: ClassPreset(display, tuple(tw.ATTRIBUTES[attribute]), tuple(templates), attribute)
               for name, (attribute, display, templates) in TASKS.items()}
    presets["cifar10"] = ClassPreset("CIFAR-10", CIFAR10, ("a photo of a {}.",))
    presets["imagenet"] = ClassPreset("ImageNet", tuple(IMAGENET_CLASSNAMES), ("a photo of a {}.",))
    return presets


def parse_templates(text: str) -> list[str]:
    """'a photo of a {}. | a {} picture.' -> the templates; ValueError when one lacks its '{}'."""
    templates = [t.strip() for t in text.split(TEMPLATE_SEPARATOR.strip()) if t.strip()] or ["{}"]
    for template in templates:
        if template.count("{}") != 1:
            raise ValueError(f"each prompt template needs one {{}} where the class name goes, e.g. "
                             f"'a photo of a {{}}.'; got {template!r}")
    return templates


def checkpoint_identity(spec: ModelSpec) -> tuple:
    """What makes a checkpoint's weights these weights: its step folder, the model file's mtime and size.

    A run folder points at its latest step, so the same ``spec`` names other weights after the run
    continued; caching by this identity never serves the old ones. ``()`` for a base model.
    """
    if not spec.checkpoint:
        return ()
    folder = resolve_checkpoint(spec.checkpoint)
    stat = (folder / MODEL_FILE).stat()
    return str(folder.resolve()), stat.st_mtime_ns, stat.st_size


class ModelCache:
    """Loaded models by (spec, checkpoint identity, device); loading is serialised by a lock.

    A model whose checkpoint identity changed (the run wrote a newer step) is reloaded and the
    stale copy dropped.
    """

    def __init__(self, loader: Callable[[ModelSpec, str], ZeroShotCLIP] = load_model):
        self._models: dict[tuple, ZeroShotCLIP] = {}
        self._lock = threading.Lock()
        self._loader = loader

    def get(self, spec: ModelSpec, device: str) -> ZeroShotCLIP:
        """The model of ``spec`` on ``device`` ("auto" resolves to CUDA, MPS or CPU)."""
        device = str(resolve_device(device))
        key = (spec, checkpoint_identity(spec), device)
        with self._lock:
            if key not in self._models:
                for stale in [k for k in self._models if k[0] == spec and k[2] == device]:
                    del self._models[stale]
                self._models[key] = self._loader(spec, device)
            return self._models[key]


@dataclass
class PlaygroundRequest:
    """One playground question. ``eps`` in units of 1/255; ``label`` an index into ``classnames`` or None."""

    image: Image.Image
    classnames: list[str]
    templates: list[str]
    attack: str = "pgd"
    norm: str = "linf"
    eps: float = 4.0
    steps: Optional[int] = None
    source: str = "each"
    label: Optional[int] = None
    top_k: int = 5

    def validate(self) -> None:
        if len(self.classnames) < 2:
            raise ValueError("give at least two class names")
        if len(set(self.classnames)) != len(self.classnames):
            raise ValueError("the class names must differ from each other")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.label is not None and not 0 <= self.label < len(self.classnames):
            raise ValueError(f"label {self.label} is not a class index (0..{len(self.classnames) - 1})")
        validate_budget(self.eps, self.norm)
        if self.steps is not None and not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be between 1 and {MAX_STEPS}, got {self.steps}")
        parse_attack(self.attack, self.steps)


def class_index(classnames: list[str], name: str) -> int:
    """The position of ``name`` in ``classnames`` (case-insensitive); ValueError naming close choices."""
    lowered = [c.lower() for c in classnames]
    if name.strip().lower() in lowered:
        return lowered.index(name.strip().lower())
    import difflib

    close = difflib.get_close_matches(name, classnames, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown class {name!r}: not among the {len(classnames)} class names{hint}")


def top_k(logits: torch.Tensor, classnames: list[str], k: int) -> list[tuple[str, float]]:
    """(class name, probability) of the ``k`` most probable classes of one image, most probable first."""
    probs = logits.softmax(dim=-1)[0]
    values, indices = probs.topk(min(k, len(classnames)))
    return [(classnames[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """The first image of a [0, 1] batch as an (H, W, 3) uint8 array."""
    return (images[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def input_note(width: int, height: int, size: int) -> str:
    """How a W x H image became the model's S x S input, in words ('' when it already was S x S)."""
    if (width, height) == (size, size):
        return ""
    note = f"resized from {width}×{height} to {size}×{size}"
    if width != height:
        note += ", centre-cropped to a square (the edges of the longer side are cut)"
    return note


def verdict(predicted: int, reference: int, clean_wrong: bool) -> str:
    """'wrong' (already wrong on the clean image), 'fooled' or 'robust' (see the module docstring)."""
    if clean_wrong:
        return "wrong"
    return "robust" if predicted == reference else "fooled"


def run_playground(
    request: PlaygroundRequest,
    models: dict[str, ZeroShotCLIP],
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Optional[Callable[[dict], None]] = None,
) -> Iterator[dict]:
    """Classify ``request.image`` with ``models`` ({"vanilla": ..., "finetuned": ...}), attack, classify again.

    Records: ``input`` (what the models see: ``image`` S x S uint8, ``size``, ``note``), ``clean``
    (``topk`` and ``predicted`` per role, ``label`` the true class name or None), then one
    ``adversarial`` per crafted image (``crafted_on``, ``label`` pushed away from and whether it is
    the ``true_label``, ``image``, ``delta`` (S, S, 3) float, ``linf``/``l2`` in pixel units,
    ``found_nothing``, and per tested role ``topk``, ``verdict`` and the ``reference`` class it is judged
    against), then ``done``. ``on_progress``
    gets ``{"crafted_on", "forwards", "expected", "elapsed_s"}`` after every forward of the attack.
    :class:`caw_core.attacks.control.AttackCancelled` propagates when ``should_stop()`` turns true.
    """
    r = request
    r.validate()
    if "vanilla" not in models:
        raise ValueError("the playground needs the vanilla model")
    for model in models.values():
        model.set_classes(r.classnames, r.templates)
    size = models["vanilla"].image_size
    device = models["vanilla"].device
    images = pixel_transform(size)(r.image).unsqueeze(0).to(device)
    yield {"event": "input", "image": to_uint8(images), "size": size, "original": r.image.size,
           "note": input_note(r.image.width, r.image.height, size)}
    with torch.no_grad():
        clean = {role: int(model(images).argmax()) for role, model in models.items()}
        clean_topk = {role: top_k(model(images), r.classnames, r.top_k) for role, model in models.items()}
    true = r.label
    yield {"event": "clean", "topk": clean_topk, "predicted": {role: r.classnames[i] for role, i in clean.items()},
           "label": r.classnames[true] if true is not None else None}

    sources = list(models) if r.source == "each" else [r.source]
    for source in sources:
        if source not in models:
            raise ValueError(f"cannot craft the attack on the {source} model: none is chosen")
        label = true if true is not None else clean[source]
        started = time.perf_counter()
        attack = parse_attack(r.attack, r.steps)
        expected = attack.spec.forwards(attack.steps, len(r.classnames))

        def report(count: int, source=source, started=started, expected=expected) -> None:
            if on_progress is not None:
                on_progress({"crafted_on": source, "forwards": count, "expected": expected,
                             "elapsed_s": time.perf_counter() - started})

        adv = attack_images(attack, models[source], images, torch.tensor([label], device=device),
                            eps=r.eps / 255.0, norm=r.norm, should_stop=should_stop, on_forward=report)
        targets = [source] if r.source == "each" else list(models)
        with torch.no_grad():
            logits = {role: models[role](adv) for role in targets}
        delta = (adv - images)[0].permute(1, 2, 0).cpu().numpy()
        verdicts, references = {}, {}
        for role in targets:
            reference = true if true is not None else clean[role]
            references[role] = r.classnames[reference]
            verdicts[role] = verdict(int(logits[role].argmax()), reference, true is not None and clean[role] != true)
        yield {"event": "adversarial", "crafted_on": source, "label": r.classnames[label],
               "true_label": true is not None, "image": to_uint8(adv), "delta": delta,
               "linf": float(np.abs(delta).max()), "l2": float(np.linalg.norm(delta)),
               "found_nothing": not np.any(delta), "seconds": time.perf_counter() - started,
               "topk": {role: top_k(lg, r.classnames, r.top_k) for role, lg in logits.items()},
               "verdict": verdicts, "reference": references}
    yield {"event": "done"}


def describe_verdict(verdict_: str, found_nothing: bool, predicted: str, reference: str) -> str:
    """What a verdict means, in one line: "now predicts 'cat' instead of 'dog'" (+ a note when δ = 0)."""
    text = {"robust": f"still predicts '{predicted}'",
            "fooled": f"now predicts '{predicted}' instead of '{reference}'",
            "wrong": f"already wrong on the clean image (the true class is '{reference}')"}[verdict_]
    if found_nothing and verdict_ != "wrong":
        text += "; the attack found no adversarial inside the ε ball (δ = 0)"
    return text


def load_playground_models(cache: ModelCache, vanilla: ModelSpec, finetuned: Optional[ModelSpec],
                           device: str) -> dict[str, ZeroShotCLIP]:
    """{"vanilla": model[, "finetuned": model]} from ``cache``."""
    specs = {"vanilla": vanilla, **({"finetuned": finetuned} if finetuned is not None else {})}
    return {role: cache.get(spec, device) for role, spec in specs.items()}
