"""Live plots: frame rates, per-stage latency and confidence over the last few seconds.

The curves are created once and redrawn with ``setData`` from
:class:`~handpose.app.stats.History` by :meth:`PlotsPanel.refresh` (the window calls it a few
times a second, not per frame). Times are seconds before now.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from ..stats import History

__all__ = ["PlotsPanel", "LATENCY_SERIES", "HISTORY_S"]

#: Seconds of history shown.
HISTORY_S = 10.0
#: Latency curves: (series, legend name, colour).
LATENCY_SERIES = (
    ("latency", "capture->display", (255, 255, 255)),
    ("total", "pipeline total", (255, 190, 90)),
    ("detect", "detect", (240, 90, 80)),
    ("network", "network", (90, 200, 255)),
    ("lift", "lift", (130, 220, 120)),
    ("correct", "correct", (200, 130, 250)),
    ("fit", "depth fit", (250, 240, 120)),
)


def _plot(title: str, unit: str, columns: int) -> pg.PlotWidget:
    w = pg.PlotWidget()
    w.setBackground((22, 24, 28))
    w.setTitle(title, size="9pt")
    w.setLabel("left", unit)
    w.showGrid(x=True, y=True, alpha=0.2)
    w.setMouseEnabled(x=False, y=False)
    w.setMenuEnabled(False)
    w.setXRange(-HISTORY_S, 0.0, padding=0.0)  # fixed: only the y axis follows the data
    w.enableAutoRange(x=False, y=True)
    w.setClipToView(True)
    legend = w.addLegend(offset=(-2, 2), labelTextSize="7pt", colCount=columns,
                         verSpacing=-6, horSpacing=8)
    legend.setBrush(pg.mkBrush(22, 24, 28, 200))
    return w


class PlotsPanel(QWidget):
    """Three small plots (module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fps_plot = _plot("frames / s", "fps", 2)
        self.latency_plot = _plot("latency", "ms", 4)
        self.conf_plot = _plot("confidence (mean over joints)", "", 2)
        self.conf_plot.setYRange(0.0, 1.0)
        self.curves: dict[str, pg.PlotDataItem] = {
            "display_fps": self.fps_plot.plot(pen=pg.mkPen((255, 255, 255), width=2),
                                              name="shown"),
            "model_fps": self.fps_plot.plot(pen=pg.mkPen((90, 200, 255), width=2),
                                            name="model"),
            "confidence_0": self.conf_plot.plot(pen=pg.mkPen((255, 190, 90), width=2),
                                                name="hand 1"),
            "confidence_1": self.conf_plot.plot(pen=pg.mkPen((120, 200, 255), width=2),
                                                name="hand 2"),
        }
        for key, name, color in LATENCY_SERIES:
            self.curves[key] = self.latency_plot.plot(pen=pg.mkPen(color, width=1.5), name=name)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.fps_plot, self.latency_plot, self.conf_plot):
            lay.addWidget(w)
        self.refreshes = 0

    def refresh(self, history: History, now: float) -> None:
        """Redraw every curve from ``history`` (x = seconds relative to ``now``)."""
        t = history.times()
        if t.size == 0:
            for c in self.curves.values():
                c.setData([], [])
            return
        x = t - now
        for key, curve in self.curves.items():
            y = history.series(key)
            ok = np.isfinite(y)
            curve.setData(x[ok], y[ok])
        self.refreshes += 1
