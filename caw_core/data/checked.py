"""Bad dataset files become one clear :class:`DatasetError`, never a traceback, a hang or a silent miscount.

Three guards, applied to every file-backed dataset by :func:`caw_core.data.registry.load_dataset`
and the layouts:

1. :func:`require_regular_files` -- before anything opens them, each required
   *file* must be a regular file (a FIFO would block the reader forever, a
   device like ``/dev/zero`` would exhaust memory) of at most
   :data:`MAX_DATASET_FILE_BYTES`.
2. :func:`reading` -- an exception while a loader parses its files (a
   truncated pickle, a ``.bin`` of the wrong size, a corrupt ``.mat`` or
   ``.h5``) becomes ``DatasetError("<dataset>: cannot read <files>: <cause>;
   expected ...")``.
3. :class:`CheckedDataset` -- each item: an undecodable image names its file,
   and a label outside ``range(number of classes)`` is an error instead of an
   image silently counted as misclassified; label lists the loader keeps in
   memory are checked up front.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional, Sequence

from caw_core.data.registry import DatasetError

if TYPE_CHECKING:
    from torch.utils.data import Dataset

MAX_DATASET_FILE_BYTES = 64 * 2**30  # PCAM's train images are 6.5 GB; nothing a dataset needs is near this


def require_regular_files(root: Path, relative_paths: Sequence[str]) -> None:
    """Raise DatasetError for a required path that exists but is neither a folder nor a bounded regular file."""
    for relative in relative_paths:
        path = Path(root) / relative
        try:
            mode = os.stat(path).st_mode
            size = os.stat(path).st_size
        except OSError:
            continue  # missing paths are the layout check's business
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            raise DatasetError(f"{path} is not a regular file (a FIFO, socket or device?); expected the dataset's "
                               f"{Path(relative).name} file")
        if size > MAX_DATASET_FILE_BYTES:
            raise DatasetError(f"{path} is {size / 2**30:.0f} GiB; no dataset file caw reads is over "
                               f"{MAX_DATASET_FILE_BYTES // 2**30} GiB -- is it the right file?")


@contextlib.contextmanager
def reading(display_name: str, files: Sequence[str | Path], expected: str) -> Iterator[None]:
    """Turn any parsing failure inside the block into one DatasetError naming ``files`` and ``expected``."""
    try:
        yield
    except DatasetError:
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        names = ", ".join(str(f) for f in files)
        raise DatasetError(f"{display_name}: cannot read {names}: {_cause(exc)}; expected {expected} "
                           "(re-download or re-extract the dataset)") from exc


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _item_path(data: Dataset, index: int) -> Optional[str]:
    """The file item ``index`` is read from, for loaders that keep a list of them."""
    for attribute in ("samples", "_samples", "_image_files", "_images"):
        items = getattr(data, attribute, None)
        if isinstance(items, (list, tuple)) and 0 <= index < len(items):
            entry = items[index]
            return str(entry[0] if isinstance(entry, (list, tuple)) else entry)
    return None


def known_labels(data: Dataset) -> Optional[list[int]]:
    """The labels a loader holds in memory (torchvision keeps them under several names), or None."""
    for attribute in ("targets", "_labels", "labels", "y"):
        values = getattr(data, attribute, None)
        if values is not None and not isinstance(values, (str, bytes)):
            try:
                return [int(v) for v in values]
            except (TypeError, ValueError):
                return None
    for attribute in ("samples", "_samples"):
        items = getattr(data, attribute, None)
        if isinstance(items, list) and items and isinstance(items[0], tuple) and len(items[0]) == 2:
            return [int(label) for _, label in items]
    return None


class CheckedDataset:
    """``data[i]`` with its label checked against ``num_classes`` and read errors naming the file (a map-style
    dataset like :class:`caw_core.data.toy_tasks.ToySceneDataset`: not subclassing torch's ``Dataset`` keeps
    :mod:`caw_core.data.layout`, and so ``caw-core data check``, free of torch)."""

    def __init__(self, data: Dataset, display_name: str, num_classes: int) -> None:
        self.data, self.display_name, self.num_classes = data, display_name, num_classes
        labels = known_labels(data)
        bad = next((label for label in labels or [] if not 0 <= label < num_classes), None)
        if bad is not None:
            raise DatasetError(f"{display_name}: its label files give label {bad}, outside the {num_classes} "
                               f"classes (0..{num_classes - 1}); the labels and the class list do not match")

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, index: int):
        try:
            image, label = self.data[index]
        except (DatasetError, MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:
            where = _item_path(self.data, index)
            raise DatasetError(f"{self.display_name}: cannot read item {index}"
                               f"{f' ({where})' if where else ''}: {_cause(exc)}; expected a readable image "
                               "(re-download or re-extract the dataset)") from exc
        if not 0 <= int(label) < self.num_classes:
            raise DatasetError(f"{self.display_name}: item {index} has label {int(label)}, outside the "
                               f"{self.num_classes} classes (0..{self.num_classes - 1})")
        return image, label
