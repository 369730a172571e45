"""The layout every tab shares: a message banner above a form | content splitter."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget


def banner_over_split(view: QWidget, banner: QWidget, left: QWidget, right: QWidget, sizes: tuple[int, int]) -> None:
    """Lay ``view`` out as ``banner`` on top of a horizontal splitter (``left`` | ``right``, right stretches)."""
    splitter = QSplitter(Qt.Horizontal)
    splitter.addWidget(left)
    splitter.addWidget(right)
    splitter.setStretchFactor(1, 1)
    splitter.setSizes(list(sizes))
    layout = QVBoxLayout(view)
    layout.addWidget(banner)
    layout.addWidget(splitter, 1)
