"""Training curves of one or several runs: faint raw values plus a bold EMA-smoothed line per series.

Records are buffered with :meth:`CurvePlot.add`; nothing is drawn until
:meth:`CurvePlot.refresh`, which the owning view calls from a QTimer, so a fast
stream of records never floods the GUI thread.

A series is one metric of one run. With one run on the plot, colours tell the
metrics apart; with several (overlays, TensorBoard style), colours tell the
runs apart and the line style tells the metrics apart. The legend sits above
the plot (never over the data) as check boxes that show or hide each series;
the values under the mouse are shown in a line below it; :meth:`export`
writes the plot as PNG or SVG.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401  (pg.exporters)
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
STYLES = (Qt.SolidLine, Qt.DashLine, Qt.DotLine, Qt.DashDotLine)


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average (weight 0 = no smoothing)."""
    out = np.empty_like(values)
    last, debias = 0.0, 0.0
    for i, v in enumerate(values):
        last = weight * last + (1.0 - weight) * v
        debias = weight * debias + (1.0 - weight)
        out[i] = last / debias
    return out


class _Series:
    def __init__(self, plot: pg.PlotItem, run: str, metric: str):
        self.run, self.metric = run, metric
        self.steps: list[float] = []
        self.values: list[float] = []
        self.raw = plot.plot()
        self.smooth = plot.plot()
        self.drawn = -1
        self.visible = True
        self.colour = PALETTE[0]
        self.toggle: Optional[QCheckBox] = None

    def set_pen(self, colour: str, style) -> None:
        self.colour = colour
        faint = QColor(colour)
        faint.setAlpha(70)
        self.raw.setPen(pg.mkPen(faint, width=1, style=style))
        self.smooth.setPen(pg.mkPen(colour, width=2.5, style=style))


class CurvePlot(QWidget):
    """Named series over training steps, per run, with smoothing, log-y, toggles, hover values and export."""

    def __init__(self, title: str, y_label: str, parent=None):
        super().__init__(parent)
        self.title = title
        self.plot = pg.PlotWidget()
        self.item = self.plot.plotItem
        self.item.setTitle(title, size="10pt")
        self.item.setLabel("bottom", "step")
        self.item.setLabel("left", y_label)
        self.item.getAxis("left").enableAutoSIPrefix(False)
        self.item.showGrid(x=True, y=True, alpha=0.2)
        self.series: dict[tuple[str, str], _Series] = {}
        self.smoothing = 0.6
        self.log_y = False
        self.current_name = "current"  # how the legend names the run keyed ""

        self.legend = QWidget()
        self.legend_row = QHBoxLayout(self.legend)
        self.legend_row.setContentsMargins(0, 0, 0, 0)
        self.legend_row.addStretch(1)
        legend_scroll = QScrollArea()
        legend_scroll.setWidget(self.legend)
        legend_scroll.setWidgetResizable(True)
        legend_scroll.setFrameShape(QScrollArea.NoFrame)
        legend_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        legend_scroll.setFixedHeight(28)
        export = QToolButton()
        export.setText("Export…")
        export.setToolTip(f"Save the {title.lower()} plot as a PNG image or an SVG drawing")
        export.clicked.connect(self._ask_export)
        top = QHBoxLayout()
        top.addWidget(legend_scroll, 1)
        top.addWidget(export)
        self.hover = QLabel(" ")
        self.hover.setToolTip("Values at the step under the mouse")
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addLayout(top)
        column.addWidget(self.plot, 1)
        column.addWidget(self.hover)
        self._mouse = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved)
        self.apply_theme()

    # -- data --------------------------------------------------------------------------------------------------
    def add(self, step: float, values: dict, run: str = "") -> None:
        """Buffer one point per finite value in ``values`` (None and NaN are skipped) for ``run``."""
        for metric, value in values.items():
            if value is None or not math.isfinite(value):
                continue
            key = (run, metric)
            if key not in self.series:
                self._new_series(run, metric)
            self.series[key].steps.append(step)
            self.series[key].values.append(float(value))

    def _new_series(self, run: str, metric: str) -> None:
        series = _Series(self.item, run, metric)
        self.series[(run, metric)] = series
        series.toggle = QCheckBox()
        series.toggle.setChecked(True)
        series.toggle.toggled.connect(lambda on, s=series: self._set_visible(s, on))
        self.legend_row.insertWidget(self.legend_row.count() - 1, series.toggle)
        self._restyle()

    def runs(self) -> list[str]:
        return list(dict.fromkeys(run for run, _ in self.series))

    def _restyle(self) -> None:
        """Colours and legend labels for the current set of runs (see the module docstring)."""
        runs = self.runs()
        metrics = list(dict.fromkeys(metric for _, metric in self.series))
        several = len(runs) > 1
        for (run, metric), series in self.series.items():
            if several:
                colour = PALETTE[runs.index(run) % len(PALETTE)]
                style = STYLES[metrics.index(metric) % len(STYLES)]
                name = run or self.current_name
                label = f"{name if len(name) <= 18 else name[:8] + '…' + name[-8:]}: {metric}"
            else:
                colour, style, label = PALETTE[metrics.index(metric) % len(PALETTE)], Qt.SolidLine, metric
            series.set_pen(colour, style)
            series.toggle.setText(label)
            series.toggle.setToolTip(f"{run or self.current_name}: {metric} (untick to hide)")
            series.toggle.setStyleSheet(f"QCheckBox {{ color: {colour}; font-weight: bold; }}")

    def set_current_name(self, name: str) -> None:
        """Name the current run (series keyed "") in the legend when several runs are shown."""
        self.current_name = name or "current"
        self._restyle()

    def _set_visible(self, series: _Series, visible: bool) -> None:
        series.visible = visible
        series.raw.setVisible(visible)
        series.smooth.setVisible(visible)

    def remove_run(self, run: str) -> None:
        for key in [key for key in self.series if key[0] == run]:
            series = self.series.pop(key)
            self.item.removeItem(series.raw)
            self.item.removeItem(series.smooth)
            series.toggle.deleteLater()
        self._restyle()

    def clear_data(self) -> None:
        for run in self.runs():
            self.remove_run(run)

    def metrics(self, run: str = "") -> set[str]:
        """The metrics plotted for ``run`` ("" = the current run)."""
        return {metric for r, metric in self.series if r == run}

    def point_count(self, metric: str, run: str = "") -> int:
        series = self.series.get((run, metric))
        return len(series.values) if series else 0

    def values_at(self, step: float) -> dict[str, float]:
        """Each visible series' smoothed value at the logged step nearest ``step`` (what the hover line shows)."""
        out = {}
        for series in self.series.values():
            if not series.visible or not series.steps:
                continue
            steps = np.asarray(series.steps, dtype=float)
            index = int(np.abs(steps - step).argmin())
            smooth = ema(np.asarray(series.values, dtype=float), self.smoothing)
            out[series.toggle.text()] = float(smooth[index])
        return out

    # -- display -----------------------------------------------------------------------------------------------
    def set_smoothing(self, weight: float) -> None:
        self.smoothing = min(max(weight, 0.0), 0.99)
        self._invalidate()

    def set_log_y(self, enabled: bool) -> None:
        self.log_y = enabled
        self.item.setLogMode(y=enabled)
        self._invalidate()

    def _invalidate(self) -> None:
        for series in self.series.values():
            series.drawn = -1
        self.refresh()

    def refresh(self) -> None:
        """Redraw series that got new points since the last refresh."""
        for series in self.series.values():
            if series.drawn == len(series.values):
                continue
            steps = np.asarray(series.steps, dtype=float)
            values = np.asarray(series.values, dtype=float)
            if self.log_y:  # log axes cannot show values <= 0
                keep = values > 0
                steps, values = steps[keep], values[keep]
            series.raw.setData(steps, values)
            series.smooth.setData(steps, ema(values, self.smoothing) if len(values) else values)
            series.drawn = len(series.values)

    def _mouse_moved(self, event) -> None:
        position = event[0]
        if not self.item.sceneBoundingRect().contains(position):
            return
        step = self.item.vb.mapSceneToView(position).x()
        values = self.values_at(step)
        text = "   ".join(f"{name} {value:.4g}" for name, value in values.items())
        self.hover.setText(f"step {step:.0f}:   {text}" if values else " ")

    def apply_theme(self) -> None:
        """Background and axes from the widget's palette (light or dark, following the system)."""
        palette = self.palette()
        foreground = palette.color(QPalette.WindowText)
        self.plot.setBackground(palette.color(QPalette.Base))
        for axis in ("left", "bottom"):
            self.item.getAxis(axis).setPen(foreground)
            self.item.getAxis(axis).setTextPen(foreground)
        self.item.setTitle(self.title, size="10pt", color=foreground.name())

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.PaletteChange:
            self.apply_theme()
        super().changeEvent(event)

    # -- export ------------------------------------------------------------------------------------------------
    def export(self, path: str) -> None:
        """Write the plot to ``path``: SVG for a ``.svg`` name, otherwise a PNG image."""
        self.refresh()
        if path.lower().endswith(".svg"):  # QtSvg: pyqtgraph's SVG exporter fails on some paths
            generator = QSvgGenerator()
            generator.setFileName(path)
            generator.setSize(self.plot.size())
            generator.setViewBox(self.plot.rect())
            generator.setTitle(self.title)
            painter = QPainter(generator)
            self.plot.render(painter)
            painter.end()
        else:
            pg.exporters.ImageExporter(self.item).export(path if path.lower().endswith(".png") else path + ".png")

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export {self.title}", f"{self.title.lower()}.png",
                                              "PNG image (*.png);;SVG drawing (*.svg)")
        if path:
            self.export(path)
