"""Class-per-folder image datasets read without following symlink loops.

torchvision's ``ImageFolder`` walks each class folder with
``os.walk(followlinks=True)``: a symlink pointing at one of its own parents
makes that walk endless. :func:`walk_files` follows symlinked folders (class
folders that are links into another disk are common) but enters each real
folder once, keyed by ``(st_dev, st_ino)`` -- the class folders themselves
included -- so a loop ends the walk of that branch instead of hanging, and a
link into another class folder does not count its images twice. Only regular files (or links to them) are listed:
a FIFO or device named like an image is never opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable, Iterator, Optional

from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, default_loader, has_file_allowed_extension

from caw_core.data.registry import DatasetError


def _key(path: str | os.PathLike) -> Optional[tuple[int, int]]:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def walk_files(folder: str | os.PathLike, seen: Optional[set] = None) -> Iterator[str]:
    """Every regular file below ``folder`` (sorted per folder), never entering a real folder in ``seen`` twice.

    ``seen`` is shared with the caller: folders already walked (or reserved, like the other class folders)
    are skipped when a link leads back to them.
    """
    seen = set() if seen is None else seen
    seen.add(_key(folder))
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError as exc:
        raise DatasetError(f"cannot list {folder}: {exc.strerror or exc}") from exc
    for entry in entries:
        try:
            info = os.stat(entry.path)  # follows links; a dangling link raises
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode):
            if (info.st_dev, info.st_ino) not in seen:
                yield from walk_files(entry.path, seen)
        elif stat.S_ISREG(info.st_mode):
            yield entry.path


class LoopSafeImageFolder(ImageFolder):
    """``ImageFolder`` whose walk follows symlinks without looping and lists only regular image files."""

    def make_dataset(self, directory: str, class_to_idx: dict[str, int], extensions=None,
                     is_valid_file: Optional[Callable[[str], bool]] = None,
                     allow_empty: bool = False) -> list[tuple[str, int]]:
        if not class_to_idx:
            raise DatasetError(f"{directory} has no class folders")
        allowed = extensions or IMG_EXTENSIONS
        seen = {_key(directory)} | {_key(Path(directory) / name) for name in class_to_idx}  # each walked once
        samples = []
        for name in sorted(class_to_idx):
            samples += [(path, class_to_idx[name]) for path in walk_files(Path(directory) / name, seen)
                        if has_file_allowed_extension(path, allowed)]
        if not samples:
            raise DatasetError(f"{directory} has class folders but no images ({', '.join(allowed)})")
        return samples


class SampleList(Dataset):
    """``(transform(image), label)`` for a list of ``(image path, label)`` pairs; subclasses fill ``samples``."""

    samples: list[tuple[Path | str, int]]
    transform: Callable

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        return self.transform(default_loader(str(path))), label
