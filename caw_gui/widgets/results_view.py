"""The paper-style results table (datasets x models: clean, robust, optionally each attack of the chain; Avg)
and its bar chart (hover a bar for its value)."""

from __future__ import annotations

from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from caw_core.report import Table, chain_label, display_name
from caw_gui.widgets.curve_plot import PALETTE
from caw_gui.widgets.topk_chart import HoverPlot

METRICS = ("clean", "robust")


def metric_label(table: Table, metric: str) -> str:
    """'clean', 'robust' or an attack link of the chain as 'clean → pgd10'."""
    return metric if metric in METRICS else chain_label(table.robust_attacks, metric)


class ResultsTable(QTableWidget):
    """Rows: one per model and metric (clean, robust, and with ``per_attack`` each attack link); columns:
    datasets then Avg. A ``partial`` table (a run still going) says so in its Avg header, not in bold."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setEditTriggers(QTableWidget.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table: Optional[Table] = None

    def set_table(self, table: Optional[Table], per_attack: bool = False, partial: bool = False) -> None:
        self.table = table
        self.clear()
        if table is None:
            self.setRowCount(0)
            self.setColumnCount(0)
            return
        metrics = [*METRICS, *(table.robust_attacks if per_attack else [])]
        rows = [r for metric in metrics for r in table.rows if r.metric == metric]
        average = "Avg (partial)" if partial else "Avg"
        headers = ["Model", "Metric", *[display_name(d) for d in table.datasets], average]
        self.setColumnCount(len(headers))
        self.setHorizontalHeaderLabels(headers)
        self.setRowCount(len(rows))
        if partial:
            self.horizontalHeaderItem(len(headers) - 1).setToolTip("The run is still going: this average covers "
                                                                   "only the datasets finished so far")
        headline = QFont()
        headline.setBold(not partial)
        headline.setItalic(partial)
        for i, row in enumerate(rows):
            values = [row.values.get(d) for d in table.datasets] + [row.avg()]
            cells = [row.model, metric_label(table, row.metric), *["–" if v is None else f"{v:.1f}" for v in values]]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignCenter if j >= 2 else Qt.AlignLeft | Qt.AlignVCenter)
                if j == len(cells) - 1:
                    item.setFont(headline)
                if row.metric != "clean":
                    item.setBackground(QBrush(QColor("#fff4e5")))
                self.setItem(i, j, item)

    def cell_text(self, row: int, column: int) -> str:
        item = self.item(row, column)
        return item.text() if item is not None else ""


class ResultsChart(HoverPlot):
    """Grouped bars per dataset (and Avg): for each model a light clean bar with its robust bar inside."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plotItem.setTitle("Accuracy per dataset: clean (light) and robust (solid)", color="#333", size="10pt")
        self.plotItem.setLabel("left", "accuracy (%)")
        self.plotItem.setYRange(0, 100, padding=0.02)
        self.plotItem.setMouseEnabled(x=False, y=False)
        self.plotItem.showGrid(y=True, alpha=0.2)
        self.bar_count = 0
        self.bars: list[tuple[float, float, float, str]] = []  # (x, width, height, description) for hover

    def set_table(self, table: Optional[Table]) -> None:
        self.plotItem.clear()
        legend = self.plotItem.legend or self.plotItem.addLegend(offset=(-10, 10))
        legend.clear()
        self.bar_count = 0
        self.bars = []
        if table is None:
            return
        columns = [*table.datasets, "avg"]
        models = list(dict.fromkeys(r.model for r in table.rows))
        width = 0.8 / max(len(models), 1)
        for m, model in enumerate(models):
            colour = QColor(PALETTE[m % len(PALETTE)])
            light = QColor(colour)
            light.setAlpha(80)
            for metric, brush, shrink in (("clean", light, 1.0), ("robust", colour, 0.55)):
                row = next((r for r in table.rows if r.model == model and r.metric == metric), None)
                if row is None:
                    continue
                xs, heights = [], []
                for c, column in enumerate(columns):
                    value = row.avg() if column == "avg" else row.values.get(column)
                    if value is not None:
                        xs.append(c - 0.4 + width * (m + 0.5))
                        heights.append(value)
                        name = "Avg" if column == "avg" else display_name(column)
                        self.bars.append((xs[-1], width * 0.9 * shrink, value, f"{model} · {name} · {metric}: "
                                                                               f"{value:.1f}%"))
                bars = pg.BarGraphItem(x=xs, height=heights, width=width * 0.9 * shrink, brush=brush,
                                       pen=pg.mkPen(colour))
                self.plotItem.addItem(bars)
                self.bar_count += len(xs)
                if metric == "robust":
                    legend.addItem(bars, model)
        labels = [display_name(c) if c != "avg" else "Avg" for c in columns]
        self.plotItem.getAxis("bottom").setTicks([list(enumerate(labels))])
        self.plotItem.setXRange(-0.6, len(columns) - 0.4, padding=0)

    def hover_text(self, scene_pos: QPointF) -> str:
        """'model · dataset · metric: 41.0%' for the bar under a scene position ('' elsewhere); the narrower
        robust bar wins over the clean bar it sits in."""
        if not self.plotItem.vb.sceneBoundingRect().contains(scene_pos):
            return ""
        point = self.plotItem.vb.mapSceneToView(scene_pos)
        hits = [bar for bar in self.bars if abs(point.x() - bar[0]) <= bar[1] / 2 and 0 <= point.y() <= bar[2]]
        return min(hits, key=lambda bar: bar[1])[3] if hits else ""
