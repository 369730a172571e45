"""Which files a dataset needs below the data root, per split, and how to say so.

A :class:`Layout` is the single source for three things a :class:`DatasetSpec`
needs: the human-readable ``expected_layout``, the ``missing_files`` check (for
the evaluation split, the first one listed) and the per-split check done just
before building (so asking for ``split="train"`` without the train files gives
a :class:`DatasetNotFoundError`, not a torchvision ``RuntimeError``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from caw_core.data.registry import DatasetNotFoundError, paths_missing


@dataclass(frozen=True)
class Layout:
    """Required paths per split, relative to the data root.

    Attributes:
        files: ``split -> relative paths`` that must exist (files or folders);
            the first split is the evaluation default.
        contents: illustrative lines (``food-101/images/<class>/<id>.jpg``)
            shown in the description but not checked.
        source: where the files come from and how to unpack them.
    """

    files: Mapping[str, Sequence[str]]
    contents: Sequence[str] = ()
    source: str = ""

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    def missing(self, root: Path, split: Optional[str] = None) -> list[str]:
        return paths_missing(Path(root), self.files[split or self.splits[0]])

    def require(self, root: Path, split: str, display_name: str) -> None:
        missing = self.missing(root, split)
        if missing:
            raise DatasetNotFoundError(
                f"{display_name} split {split!r} not found under {root}: missing "
                + ", ".join(missing)
                + f"\nexpected layout:\n{self.describe()}"
            )

    def describe(self) -> str:
        """One line per required path with the splits that need it, then contents and source."""
        needed_by: dict[str, list[str]] = {}
        for split, paths in self.files.items():
            for path in paths:
                needed_by.setdefault(path, []).append(split)
        width = max(len(p) for p in needed_by)
        lines = [
            f"{path.ljust(width)}  (split{'s' if len(splits) > 1 else ''} {', '.join(splits)})"
            for path, splits in needed_by.items()
        ]
        lines += list(self.contents)
        if self.source:
            lines.append(f"source: {self.source}")
        return "\n".join(lines)
