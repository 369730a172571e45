"""Horizontal bar chart of a model's top-k class probabilities (hover shows the values), and figure export."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize
from PySide6.QtGui import QColor, QCursor, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QToolTip, QWidget

EXPORT_FORMATS = {".png": "PNG image (*.png)", ".svg": "SVG vector image (*.svg)"}


def export_widget(widget: QWidget, path: str | Path) -> Path:
    """Save what ``widget`` shows as PNG (pixels) or SVG (vectors), chosen by the suffix; ValueError otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ValueError(f"export as .png or .svg, not {path.suffix or 'a file without suffix'}")
    if suffix == ".png":
        if not widget.grab().save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
        return path
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(QSize(widget.width(), widget.height()))
    generator.setViewBox(QRectF(0, 0, widget.width(), widget.height()))
    generator.setTitle(path.stem)
    painter = QPainter(generator)
    try:
        QWidget.render(widget, painter, QPoint(0, 0))  # the widget as drawn (a plot view included)
    finally:
        painter.end()
    if not path.is_file():
        raise OSError(f"could not write {path}")
    return path


def export_with_dialog(parent: QWidget, widget: QWidget, banner, default_path: str, what: str,
                       path: str = "") -> Optional[Path]:
    """Ask where (unless ``path`` is given), save ``widget`` as PNG/SVG and say on ``banner`` how it went.

    Returns the file written, or None when the user cancelled or the export failed.
    """
    if not path:
        path, _ = QFileDialog.getSaveFileName(parent, f"Export {what}", default_path,
                                              ";;".join(EXPORT_FORMATS.values()))
    if not path:
        return None
    try:
        written = export_widget(widget, path)
    except (OSError, ValueError) as exc:
        banner.show_message(f"Could not export the {what}: {exc}", "error")
        return None
    banner.show_message(f"Exported {written}", "info")
    return written


class HoverPlot(pg.PlotWidget):
    """A plot that shows :meth:`hover_text` of the point under the mouse as a tooltip (no hidden menu)."""

    def __init__(self, parent=None):
        super().__init__(parent=parent, background="w")
        self.plotItem.setMenuEnabled(False)
        self.scene().sigMouseMoved.connect(self._hovered)

    def hover_text(self, scene_pos: QPointF) -> str:
        raise NotImplementedError

    def _hovered(self, scene_pos: QPointF) -> None:
        text = self.hover_text(scene_pos)
        if text:
            QToolTip.showText(QCursor.pos(), text, self)
        else:
            QToolTip.hideText()


class TopKChart(HoverPlot):
    """Bars for the k most probable classes, best on top; one class can be highlighted; hover names a bar."""

    def __init__(self, title: str, colour: str = "#1f77b4", parent=None):
        super().__init__(parent)
        self.colour = colour
        self.entries: list[tuple[str, float]] = []
        self.plotItem.setTitle(title, color="#333", size="9pt")
        self.plotItem.setMouseEnabled(x=False, y=False)
        self.plotItem.hideButtons()
        self.plotItem.setXRange(0, 1, padding=0.02)
        self.plotItem.getAxis("left").setWidth(100)
        self.plotItem.getAxis("bottom").setHeight(18)
        self.setMinimumHeight(120)
        self.setToolTip("Top-5 class probabilities (softmax over the class list); hover a bar for its value")
        self._items: list = []

    def set_title(self, title: str) -> None:
        self.plotItem.setTitle(title, color="#333", size="9pt")

    def set_topk(self, entries: Sequence[tuple[str, float]], highlight: Optional[str] = None) -> None:
        """``entries``: (class name, probability) pairs, most probable first; ``highlight`` drawn in green."""
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
        self.plotItem.getAxis("left").setTicks([[(y, name[:16]) for y, (name, _) in zip(ys, self.entries)]])
        self.plotItem.setYRange(-0.6, count - 0.4, padding=0)
        self.plotItem.setXRange(0, 1, padding=0.02)

    def entry_at(self, y: float) -> Optional[tuple[str, float]]:
        """The (class, probability) whose bar covers the data coordinate ``y``, or None."""
        index = len(self.entries) - 1 - round(y)
        if 0 <= index < len(self.entries) and abs(y - round(y)) <= 0.35:
            return self.entries[index]
        return None

    def hover_text(self, scene_pos: QPointF) -> str:
        """'class: 12.3%' for the bar under a scene position, '' elsewhere."""
        if not self.plotItem.vb.sceneBoundingRect().contains(scene_pos):
            return ""
        entry = self.entry_at(self.plotItem.vb.mapSceneToView(scene_pos).y())
        return f"{entry[0]}: {entry[1]:.2%}" if entry else ""
