"""Horizontal bar chart of a model's top-k class probabilities."""

from __future__ import annotations

from typing import Optional, Sequence

import pyqtgraph as pg
from PySide6.QtGui import QColor


class TopKChart(pg.PlotWidget):
    """Bars for the k most probable classes, best on top; one class can be highlighted."""

    def __init__(self, title: str, colour: str = "#1f77b4", parent=None):
        super().__init__(parent=parent, background="w")
        self.colour = colour
        self.entries: list[tuple[str, float]] = []
        self.plotItem.setTitle(title, color="#333", size="10pt")
        self.plotItem.setMouseEnabled(x=False, y=False)
        self.plotItem.hideButtons()
        self.plotItem.setMenuEnabled(False)
        self.plotItem.setXRange(0, 1, padding=0.02)
        self.plotItem.setLabel("bottom", "probability")
        self.plotItem.getAxis("left").setWidth(110)
        self.setMinimumHeight(150)
        self._items: list = []

    def set_title(self, title: str) -> None:
        self.plotItem.setTitle(title, color="#333", size="10pt")

    def set_topk(self, entries: Sequence[tuple[str, float]], highlight: Optional[str] = None) -> None:
        """``entries``: (class name, probability) pairs, most probable first."""
        for item in self._items:
            self.plotItem.removeItem(item)
        self._items = []
        self.entries = list(entries)
        count = len(self.entries)
        if not count:
            self.plotItem.getAxis("left").setTicks([[]])
            return
        ys = list(range(count - 1, -1, -1))
        brushes = [QColor("#2ca02c") if name == highlight else QColor(self.colour) for name, _ in self.entries]
        bars = pg.BarGraphItem(x0=0, y=ys, height=0.7, width=[p for _, p in self.entries], brushes=brushes)
        self.plotItem.addItem(bars)
        self._items.append(bars)
        for y, (_, p) in zip(ys, self.entries):
            inside = p > 0.75  # long bars carry their label inside, in white
            text = pg.TextItem(f"{p:.1%}", color="w" if inside else "#222", anchor=(1 if inside else 0, 0.5))
            text.setPos(p - 0.02 if inside else p + 0.02, y)
            self.plotItem.addItem(text)
            self._items.append(text)
        self.plotItem.getAxis("left").setTicks([[(y, name[:18]) for y, (name, _) in zip(ys, self.entries)]])
        self.plotItem.setYRange(-0.6, count - 0.4, padding=0)
        self.plotItem.setXRange(0, 1, padding=0.02)
