"""Class-per-folder image datasets read without following symlink loops.

torchvision's ``ImageFolder`` walks each class folder with
``os.walk(followlinks=True)``: a symlink pointing at one of its own parents
makes that walk endless. :func:`walk_files` follows symlinked folders (class
folders that are links into another disk are common) but enters each real
folder once, keyed by ``(st_dev, st_ino)``, so a loop ends the walk of that
branch instead of hanging. Only regular files (or links to them) are listed:
a FIFO or device named like an image is never opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable, Iterator, Optional

from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from caw_core.data.registry import DatasetError


def walk_files(folder: str | os.PathLike, seen: Optional[set] = None) -> Iterator[str]:
    """Every regular file below ``folder`` (sorted per folder), each real folder visited once."""
    seen = set() if seen is None else seen
    try:
        info = os.stat(folder)
    except OSError:
        return
    if (info.st_dev, info.st_ino) in seen:
        return
    seen.add((info.st_dev, info.st_ino))
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError as exc:
        raise DatasetError(f"cannot list {folder}: {exc.strerror or exc}") from exc
    for entry in entries:
        try:
            mode = os.stat(entry.path).st_mode  # follows links; a dangling link raises
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            yield from walk_files(entry.path, seen)
        elif stat.S_ISREG(mode):
            yield entry.path


class LoopSafeImageFolder(ImageFolder):
    """``ImageFolder`` whose walk follows symlinks without looping and lists only regular image files."""

    def make_dataset(self, directory: str, class_to_idx: dict[str, int], extensions=None,
                     is_valid_file: Optional[Callable[[str], bool]] = None,
                     allow_empty: bool = False) -> list[tuple[str, int]]:
        if not class_to_idx:
            raise DatasetError(f"{directory} has no class folders")
        allowed = extensions or IMG_EXTENSIONS
        samples = []
        for name in sorted(class_to_idx):
            samples += [(path, class_to_idx[name]) for path in walk_files(Path(directory) / name)
                        if has_file_allowed_extension(path, allowed)]
        if not samples:
            raise DatasetError(f"{directory} has class folders but no images ({', '.join(allowed)})")
        return samples
