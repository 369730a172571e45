"""Dataset registry: one name -> how to find, check, download and load a dataset.

Every dataset caw evaluates on (the 16 of the CAW paper's protocol and the toy
world's tasks) is described by a :class:`DatasetSpec`, registered under a short
lower-case name (``"cifar10"``, ``"tinyimagenet"``, ``"toy-shape"``). Loading
returns a :class:`ZeroShotDataset`: images as float tensors in [0, 1] at the
model's resolution (CLIP normalisation happens inside the model, so attacks
work in pixel space), integer labels, and the cleaned class names and prompt
templates that build the zero-shot text head.

Registering a dataset imports no torch: a spec holds plain data (names,
prompts, the expected layout, how to check that the files are there) and
names the code that needs torch/torchvision (its ``build`` and ``download``)
by import path with :func:`caw_core.imports.imported`, so that code is imported only when a
dataset is loaded or downloaded. ``caw-core data check`` and ``caw-core
report`` read the registry without importing torch.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

if TYPE_CHECKING:
    from torch.utils.data import Dataset


class DatasetError(Exception):
    """Base class for dataset problems a user can fix (missing files, bad names, unreadable files)."""

    def __str__(self) -> str:
        # A DataLoader worker re-raises our error as DatasetError("Caught DatasetError in DataLoader worker
        # process 0.\nOriginal Traceback ...\ncaw_core...DatasetError: <message>"): keep the message only.
        text = super().__str__()
        if "Original Traceback" in text:
            last = text.rstrip().splitlines()[-1]
            return last.split(": ", 1)[1] if "Error: " in last else last
        return text


class UnknownDatasetError(DatasetError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The files of a dataset are not where the layout says they should be."""


class DatasetDownloadError(DatasetError, RuntimeError):
    """A download was asked for and could not happen (offline, or not allowed)."""


@dataclass
class ZeroShotDataset:
    """A loaded dataset plus what zero-shot classification needs.

    ``data[i]`` is ``(image, label)`` with ``image`` a float tensor (3, S, S) in
    [0, 1] and ``label`` an int in ``range(len(classnames))``.
    """

    name: str
    data: Dataset
    classnames: list[str]
    templates: list[str]
    split: str

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DatasetStatus:
    """What ``caw-core data check`` says about one dataset under one root.

    ``guide`` holds the setup lines for a missing dataset: archive names,
    official source, the fetch command, where to unpack, archives found but
    not unpacked.
    """

    name: str
    found: bool
    missing: list[str]
    expected_layout: str
    guide: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.found:
            return f"{self.name}: found"
        lines = [f"{self.name}: missing"] + [f"    missing: {m}" for m in self.missing]
        lines += [f"    {line}" for line in self.guide]
        lines.append("    expected layout:")
        lines += [f"      {line}" for line in self.expected_layout.splitlines()]
        return "\n".join(lines)


@dataclass(frozen=True)
class DatasetSpec:
    """How one dataset is found, loaded and described.

    Attributes:
        name: registry key.
        display_name: the name printed in tables ("CIFAR-10").
        templates: prompt templates with one ``{}`` for the class name.
        expected_layout: human-readable file tree below the data root.
        missing_files: ``root -> list of expected paths that do not exist``
            (empty when the dataset is usable).
        build: ``(root, split, transform) -> (torch Dataset, classnames)``;
            ``transform`` maps a PIL image to a [0, 1] tensor.
        splits: the splits this dataset has; the first is the evaluation default.
        download: ``(root) -> None`` fetching the files, or None when the
            dataset cannot be downloaded automatically (the reason in
            ``download_note``).
        synthetic: True for generated datasets that need no files (toy world).
        guide: ``root -> setup lines`` for a missing dataset (archives, source,
            where to unpack); see :meth:`caw_core.data.layout.Layout.guide`.
    """

    name: str
    display_name: str
    templates: tuple[str, ...]
    expected_layout: str
    missing_files: Callable[[Path], list[str]]
    build: Callable[[Path, str, Callable], tuple[Dataset, list[str]]]
    splits: tuple[str, ...] = ("test",)
    download: Optional[Callable[[Path], None]] = None
    download_note: str = ""
    synthetic: bool = False
    family: str = field(default="paper")
    guide: Callable[[Path], list[str]] = field(default=lambda root: [])


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"dataset {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _ensure_builtin_registered() -> None:
    # Importing the package registers every built-in dataset module.
    import caw_core.data  # noqa: F401


def available_datasets(family: Optional[str] = None) -> list[str]:
    _ensure_builtin_registered()
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def get_spec(name: str) -> DatasetSpec:
    _ensure_builtin_registered()
    key = name.strip().lower()
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownDatasetError(
            f"unknown dataset {name!r}.{hint} Known: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[key]


def check_dataset(name: str, root: Optional[Path]) -> DatasetStatus:
    spec = get_spec(name)
    root = Path(root or ".")
    missing = [] if spec.synthetic else spec.missing_files(root)
    if not missing:
        return DatasetStatus(spec.name, True, [], spec.expected_layout)
    fetch = (f"fetch:    caw-core data download {spec.name} --root {root}" if spec.download is not None
             else f"fetch:    no automatic download. {spec.download_note}".rstrip())
    return DatasetStatus(spec.name, False, missing, spec.expected_layout, (fetch, *spec.guide(root)))


def require_dataset(name: str, root: Optional[Path]) -> None:
    """Raise :class:`DatasetNotFoundError` naming the expected layout unless ``name`` is usable."""
    status = check_dataset(name, root)
    if not status.found:
        raise DatasetNotFoundError(
            f"dataset {get_spec(name).display_name} not found under {root}.\n{status.describe()}"
        )


def load_dataset(
    name: str,
    root: Optional[Path] = None,
    split: Optional[str] = None,
    image_size: int = 224,
    transform: Optional[Callable] = None,
) -> ZeroShotDataset:
    """Load ``name`` from ``root`` as [0, 1] tensors of side ``image_size``.

    Raises :class:`DatasetNotFoundError` naming the expected layout when files
    are missing, and :class:`UnknownDatasetError` for an unknown name or split.
    """
    from caw_core.data.transforms import pixel_transform

    spec = get_spec(name)
    split = split or spec.splits[0]
    if split not in spec.splits:
        raise UnknownDatasetError(
            f"dataset {spec.name!r} has no split {split!r}; it has {', '.join(spec.splits)}"
        )
    require_dataset(spec.name, root)
    data, classnames = spec.build(Path(root or "."), split, transform or pixel_transform(image_size))
    if not spec.synthetic:
        from caw_core.data.checked import CheckedDataset

        data = CheckedDataset(data, spec.display_name, len(classnames))
    return ZeroShotDataset(spec.name, data, list(classnames), list(spec.templates), split)


def download_dataset(name: str, root: Path) -> None:
    spec = get_spec(name)
    if spec.download is None:
        raise DatasetDownloadError(
            f"{spec.display_name} cannot be downloaded automatically. {spec.download_note}\n"
            f"Place it under {root} as:\n{spec.expected_layout}"
        )
    try:
        spec.download(Path(root))
    except DatasetError:
        raise
    except Exception as exc:  # network errors come in many types
        raise DatasetDownloadError(
            f"downloading {spec.display_name} to {root} failed: {exc}. "
            f"Without internet, fetch the files elsewhere and place them as:\n{spec.expected_layout}"
        ) from exc


def paths_missing(root: Path, relative_paths: Sequence[str]) -> list[str]:
    """The subset of ``relative_paths`` (files or folders) absent below ``root``."""
    return [str(root / p) for p in relative_paths if not (root / p).exists()]
