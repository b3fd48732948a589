"""How responsive the GUI thread is: the lateness of a high-rate timer (Qt).

:class:`EventLoopProbe` starts a precise timer every ``interval_ms``; each time it fires it
records how much later than planned it ran. While the GUI thread is busy (drawing, or
blocked by anything) the timer cannot fire, so the lateness is the event-loop latency a
user would feel as a delayed click or repaint. Used by the tests and
``benchmarks/app_latency.py``.
"""

from __future__ import annotations

import time

import numpy as np
from PyQt6.QtCore import QObject, Qt, QTimer

__all__ = ["EventLoopProbe"]


class EventLoopProbe(QObject):
    """Measure the GUI event loop's latency (module docstring).

    Args:
        interval_ms: timer period in milliseconds (>= 1).
    """

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if interval_ms < 1:
            raise ValueError(f"interval_ms must be >= 1; got {interval_ms}")
        self.interval_s = interval_ms / 1000.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._fire)
        self._last: float | None = None
        self.lateness_ms: list[float] = []

    def start(self) -> None:
        self.lateness_ms.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _fire(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.lateness_ms.append(max(0.0, (now - self._last - self.interval_s) * 1000.0))
        self._last = now

    def summary(self) -> dict[str, float]:
        """``n``, ``p50``, ``p95``, ``p99``, ``max`` lateness in milliseconds."""
        a = np.asarray(self.lateness_ms, np.float64)
        if a.size == 0:
            return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"),
                    "max": float("nan")}
        return {"n": int(a.size), "p50": float(np.percentile(a, 50)),
                "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99)),
                "max": float(a.max())}
