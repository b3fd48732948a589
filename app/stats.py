"""Running statistics of the live view (Qt-free): frame rates and the plots' histories.

:class:`RateMeter` measures events per second over a sliding time window.
:class:`History` keeps the last ``capacity`` samples of named series in ring buffers
(preallocated numpy arrays; appending never allocates) for the live plots.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np

__all__ = ["RateMeter", "History"]


class RateMeter:
    """Events per second over the last ``window_s`` seconds.

    Args:
        window_s: length of the sliding window in seconds (> 0).
    """

    def __init__(self, window_s: float = 1.0) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0 seconds; got {window_s}")
        self.window_s = float(window_s)
        self._times: deque[float] = deque()

    def add(self, t: float) -> None:
        """Record one event at time ``t`` (seconds, non-decreasing)."""
        self._times.append(float(t))
        self._trim(float(t))

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        """Events per second in the window ending at ``now`` (default: the last event).

        With fewer than two events in the window the rate is 0.
        """
        if not self._times:
            return 0.0
        if now is not None:
            self._trim(float(now))
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def reset(self) -> None:
        self._times.clear()


class History:
    """Fixed-length histories of named series, sharing one time axis.

    Args:
        names: the series (e.g. ``("fps", "network", "total")``).
        capacity: samples kept per series (>= 2).

    A series missing from an :meth:`append` call gets NaN for that sample (a plot shows a
    gap), so stages that did not run are visible as such.
    """

    def __init__(self, names: Iterable[str], capacity: int = 300) -> None:
        self.names = tuple(names)
        if not self.names or len(set(self.names)) != len(self.names):
            raise ValueError(f"names must be unique and non-empty; got {self.names}")
        if not isinstance(capacity, int) or capacity < 2:
            raise ValueError(f"capacity must be an int >= 2; got {capacity!r}")
        self.capacity = capacity
        self._t = np.full(capacity, np.nan)
        self._v = np.full((len(self.names), capacity), np.nan)
        self._index = {n: i for i, n in enumerate(self.names)}
        self._n = 0  # samples appended so far

    def append(self, t: float, values: dict[str, float]) -> None:
        """Add one sample at time ``t`` (seconds); unknown names raise ValueError."""
        unknown = set(values) - set(self._index)
        if unknown:
            raise ValueError(f"unknown series {sorted(unknown)}; known: {list(self.names)}")
        k = self._n % self.capacity
        self._t[k] = t
        self._v[:, k] = np.nan
        for name, v in values.items():
            self._v[self._index[name], k] = v
        self._n += 1

    def __len__(self) -> int:
        return min(self._n, self.capacity)

    def _order(self) -> np.ndarray:
        n = len(self)
        start = self._n - n
        return (np.arange(start, self._n) % self.capacity).astype(np.int64)

    def times(self) -> np.ndarray:
        """(n,) sample times, oldest first."""
        return self._t[self._order()]

    def series(self, name: str) -> np.ndarray:
        """(n,) values of ``name``, oldest first (NaN where it had no value)."""
        if name not in self._index:
            raise ValueError(f"unknown series {name!r}; known: {list(self.names)}")
        return self._v[self._index[name], self._order()]

    def last(self, name: str) -> float:
        """The newest value of ``name`` (NaN when empty)."""
        if self._n == 0:
            return float("nan")
        return float(self._v[self._index[name], (self._n - 1) % self.capacity])

    def clear(self) -> None:
        self._t[:] = np.nan
        self._v[:] = np.nan
        self._n = 0
