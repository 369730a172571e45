"""Live training curves: faint raw values plus a bold EMA-smoothed line per series.

Records are buffered with :meth:`CurvePlot.add`; nothing is drawn until
:meth:`CurvePlot.refresh`, which the owning view calls from a QTimer, so a fast
stream of records never floods the GUI thread.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


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
    def __init__(self, plot: pg.PlotItem, name: str, colour: str):
        self.steps: list[float] = []
        self.values: list[float] = []
        faint = QColor(colour)
        faint.setAlpha(70)
        self.raw = plot.plot(pen=pg.mkPen(faint, width=1))
        self.smooth = plot.plot(pen=pg.mkPen(colour, width=2.5), name=name)
        self.drawn = -1


class CurvePlot(pg.PlotWidget):
    """A plot of named series over training steps, with smoothing and a log-y option."""

    def __init__(self, title: str, y_label: str, parent=None):
        super().__init__(parent=parent, background="w")
        self.plotItem.setTitle(title, color="#333", size="11pt")
        self.plotItem.setLabel("bottom", "step")
        self.plotItem.setLabel("left", y_label)
        self.plotItem.getAxis("left").enableAutoSIPrefix(False)
        self.plotItem.showGrid(x=True, y=True, alpha=0.2)
        self.plotItem.addLegend(offset=(-10, 10))
        self.series: dict[str, _Series] = {}
        self.smoothing = 0.6
        self.log_y = False

    def add(self, step: float, values: dict) -> None:
        """Buffer one point per finite value in ``values`` (None and NaN are skipped)."""
        for name, value in values.items():
            if value is None or not math.isfinite(value):
                continue
            if name not in self.series:
                self.series[name] = _Series(self.plotItem, name, PALETTE[len(self.series) % len(PALETTE)])
            self.series[name].steps.append(step)
            self.series[name].values.append(float(value))

    def set_smoothing(self, weight: float) -> None:
        self.smoothing = min(max(weight, 0.0), 0.99)
        self._invalidate()

    def set_log_y(self, enabled: bool) -> None:
        self.log_y = enabled
        self.plotItem.setLogMode(y=enabled)
        self._invalidate()

    def clear_data(self) -> None:
        for series in self.series.values():
            self.plotItem.removeItem(series.raw)
            self.plotItem.removeItem(series.smooth)
        self.series.clear()
        self.plotItem.legend.clear()

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

    def point_count(self, name: str) -> int:
        return len(self.series[name].values) if name in self.series else 0
