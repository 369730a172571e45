"""Which files a dataset needs below the data root, per split, and how to say so.

A :class:`Layout` is the single source for what a :class:`DatasetSpec` needs to
find and explain a dataset: the human-readable ``expected_layout``, the
``missing_files`` check (for the evaluation split, the first one listed), the
per-split check done just before building (so asking for ``split="train"``
without the train files gives a :class:`DatasetNotFoundError`, not a
torchvision ``RuntimeError``), and the setup guide ``caw-core data check``
prints for a missing dataset: the exact archive names, where they come from,
where to unpack them, and the extract command for an archive found but not
unpacked.

Datasets reach users in more than one shape (EuroSAT's old ``2750/`` and
today's ``EuroSAT_RGB/``, DTD extracted one level higher than torchvision
expects): :class:`AnyLayout` accepts the first of several complete layouts.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

from caw_core.data.checked import require_regular_files
from caw_core.data.registry import DatasetNotFoundError, paths_missing


@dataclass(frozen=True)
class Layout:
    """Required paths per split, relative to the data root.

    Attributes:
        files: ``split -> relative paths`` that must exist (files or folders);
            the first split is the evaluation default.
        contents: illustrative lines (``food-101/images/<class>/<id>.jpg``)
            shown in the description but not checked.
        source: the official page or URL the archives come from.
        archives: ``archive name -> folder below the root to extract it into``
            ("" = the root itself); an archive name may be a path inside
            another archive's output (Caltech-101's zip holds a tar.gz).
        name: what this layout is, when a dataset accepts several.
    """

    files: Mapping[str, Sequence[str]]
    contents: Sequence[str] = ()
    source: str = ""
    archives: Mapping[str, str] = field(default_factory=dict)
    name: str = ""

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    def missing(self, root: Path, split: Optional[str] = None) -> list[str]:
        return paths_missing(Path(root), self.files[split or self.splits[0]])

    def require(self, root: Path, split: str, display_name: str) -> "Layout":
        """Raise :class:`DatasetNotFoundError` unless ``split``'s files are present; returns this layout."""
        missing = self.missing(root, split)
        if missing:
            raise DatasetNotFoundError(
                f"{display_name} split {split!r} not found under {root}: missing "
                + ", ".join(missing)
                + f"\nexpected layout:\n{self.describe()}"
            )
        require_regular_files(root, self.files[split])
        return self

    def describe(self) -> str:
        """One line per required path with the splits that need it, then contents and source."""
        needed_by: dict[str, list[str]] = {}
        for split, paths in self.files.items():
            for path in paths:
                needed_by.setdefault(path, []).append(split)
        width = max(len(p) for p in needed_by)
        lines = [f"({self.name})"] if self.name else []
        lines += [
            f"{path.ljust(width)}  (split{'s' if len(splits) > 1 else ''} {', '.join(splits)})"
            for path, splits in needed_by.items()
        ]
        lines += list(self.contents)
        if self.source:
            lines.append(f"source: {self.source}")
        return "\n".join(lines)

    def guide(self, root: Path) -> list[str]:
        """Setup lines for a missing dataset: archives, source, where to unpack, archives found but not unpacked."""
        root = Path(root)
        lines = []
        if self.archives:
            lines.append(f"archives: {', '.join(Path(a).name for a in self.archives)}")
        if self.source:
            lines.append(f"source:   {self.source}")
        for archive, target in self.archives.items():
            verb = "unpack:  " if _is_archive(archive) else "put:     "
            lines.append(f"{verb} {Path(archive).name} into {root / target if target else root}")
        for archive, target in self.archives.items():
            found = _find_archive(root, archive, target)
            if found is not None:
                lines.append(f"found {found}, not unpacked: {extract_command(found, root / target)}")
        return lines


def _find_archive(root: Path, archive: str, target: str) -> Optional[Path]:
    """Where ``archive`` lies if a user downloaded it into the root or its target folder (or one level below)."""
    name = Path(archive).name
    folders = [root, root / target] if target else [root]
    candidates = [folder / archive for folder in folders] + [folder / name for folder in folders]
    for folder in folders:
        with contextlib.suppress(OSError):
            candidates += [child / name for child in folder.iterdir() if child.is_dir()]
    return next((c for c in candidates if c.is_file()), None)


def _is_archive(name: str) -> bool:
    return name.endswith((".zip", ".tar", ".tgz", ".gz"))


def extract_command(archive: Path, target: Path) -> str:
    """The shell command that unpacks ``archive`` into ``target`` (or moves a plain file there)."""
    name = archive.name
    if not _is_archive(name):
        return f"mkdir -p {target} && mv {archive} {target}/"
    if name.endswith(".zip"):
        return f"unzip -q {archive} -d {target}"
    if name.endswith(".gz") and not name.endswith((".tar.gz", ".tgz")):
        return f"mkdir -p {target} && gunzip -c {archive} > {target / name[:-3]}"
    flags = "-xzf" if name.endswith((".tar.gz", ".tgz")) else "-xf"
    return f"mkdir -p {target} && tar {flags} {archive} -C {target}"


@dataclass(frozen=True)
class AnyLayout:
    """Several accepted layouts of one dataset; the first complete one is used, the first listed is preferred."""

    options: Sequence[Layout]

    @property
    def splits(self) -> tuple[str, ...]:
        return self.options[0].splits

    def match(self, root: Path, split: Optional[str] = None) -> Optional[Layout]:
        split = split or self.splits[0]
        return next((o for o in self.options if split in o.files and not o.missing(root, split)), None)

    def missing(self, root: Path, split: Optional[str] = None) -> list[str]:
        if self.match(root, split) is not None:
            return []
        missing = self.options[0].missing(root, split)
        others = [" + ".join(str(Path(root) / p) for p in o.files[split or self.splits[0]]) for o in self.options[1:]]
        return missing + ([f"(or instead: {'; or '.join(others)})"] if others else [])

    def require(self, root: Path, split: str, display_name: str) -> Layout:
        found = self.match(root, split)
        if found is None:
            raise DatasetNotFoundError(
                f"{display_name} split {split!r} not found under {root}: missing "
                + ", ".join(self.missing(root, split)) + f"\nexpected layout, one of:\n{self.describe()}")
        return found.require(root, split, display_name)

    def describe(self) -> str:
        return "\n".join(o.describe() for o in self.options)

    def guide(self, root: Path) -> list[str]:
        lines: list[str] = []
        for option in self.options:
            lines += [line for line in option.guide(root) if line not in lines]
        return lines


def has_entry(folder: Path, wanted) -> bool:
    """True when ``folder`` has an entry for which ``wanted(os.DirEntry)`` holds (stops at the first; no listing)."""
    try:
        with os.scandir(folder) as entries:
            return any(wanted(entry) for entry in entries)
    except OSError:
        return False
