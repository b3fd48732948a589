"""One Euro filter (Casiez, Roussel and Vogel, CHI 2012) for jitter-free, low-lag keypoints.

For a signal x sampled at times t, with dt = t_i - t_{i-1}:

    alpha(fc) = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)
    dx_i   = (x_i - xhat_{i-1}) / dt
    dxhat_i = alpha(d_cutoff) dx_i + (1 - alpha(d_cutoff)) dxhat_{i-1}
    fc_i   = min_cutoff + beta |dxhat_i|
    xhat_i = alpha(fc_i) x_i + (1 - alpha(fc_i)) xhat_{i-1}

Low ``min_cutoff`` removes jitter when the hand is still; ``beta`` raises the cutoff with
speed so fast motion is not lagged. Every element of the array is filtered independently
(e.g. the 63 coordinates of 21 joints in metres), unless ``vector_axis`` makes the speed the
Euclidean norm of the velocity over that axis (one cutoff per point, whatever the direction of
its motion). A ``speed_scale`` per sample multiplies the speed before it sets the cutoff
(MediaPipe's "value scale": e.g. 1 / the hand's size in pixels, so that ``beta`` is per hand
size per second and the same motion is filtered alike near and far from the camera).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["OneEuroFilter", "OneEuroParams"]


@dataclass(frozen=True)
class OneEuroParams:
    """Tuning of the One Euro filter.

    Attributes:
        min_cutoff: Hz, cutoff at zero speed (lower = smoother when still). Must be > 0.
        beta: s/unit, how fast the cutoff rises with speed (0 = a plain low-pass).
        d_cutoff: Hz, cutoff of the low-pass on the speed estimate.
    """

    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "d_cutoff"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"OneEuroParams.{name} must be a positive number of Hz; got {v}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"OneEuroParams.beta must be >= 0; got {self.beta}")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Stateful One Euro filter over arrays of a fixed shape.

    Example::

        f = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=20.0))
        smoothed = f(joints, timestamp)        # joints (21, 3) metres, timestamp seconds

    The first sample passes through unchanged. A timestamp that does not increase is treated
    as a repeated sample (returns the previous estimate). ``reset()`` forgets the state (use it
    when a track is lost, so a re-found hand does not glide in from its old place).

    Args:
        params: the tuning (default :class:`OneEuroParams`).
        vector_axis: None: each element has its own speed and cutoff. An axis (e.g. -1 of
            (21, 2) points): the speed is the norm of the velocity over that axis, shared by
            the elements of each vector.
    """

    def __init__(self, params: OneEuroParams | None = None, vector_axis: int | None = None
                 ) -> None:
        if vector_axis is not None and not isinstance(vector_axis, int):
            raise ValueError(f"vector_axis must be an int axis or None; got {vector_axis!r}")
        self.params = params or OneEuroParams()
        self.vector_axis = vector_axis
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, timestamp: float, speed_scale: float = 1.0
                 ) -> np.ndarray:
        """Filter one sample.

        Args:
            x: array of any fixed shape (e.g. (21, 3) metres); NaN is rejected.
            timestamp: seconds, increasing from call to call.
            speed_scale: > 0, multiplies this sample's speed (units of x per second) before
                it raises the cutoff; ``beta`` is then per (scaled unit / s).

        Returns:
            The filtered array, same shape, float64.
        """
        arr = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError("OneEuroFilter: x contains NaN or infinity")
        if not math.isfinite(timestamp):
            raise ValueError(f"OneEuroFilter: timestamp must be finite; got {timestamp}")
        if not (math.isfinite(speed_scale) and speed_scale > 0):
            raise ValueError(f"OneEuroFilter: speed_scale must be a positive number; "
                             f"got {speed_scale}")
        if self._x is None or self._t is None or self._dx is None:
            speed_shape = arr.shape if self.vector_axis is None else \
                np.linalg.norm(arr, axis=self.vector_axis, keepdims=True).shape
            self._x, self._dx, self._t = arr.copy(), np.zeros(speed_shape), float(timestamp)
            return arr.copy()
        if arr.shape != self._x.shape:
            raise ValueError(
                f"OneEuroFilter: x has shape {arr.shape}, but the filter was started with "
                f"{self._x.shape}; call reset() to filter a different signal"
            )
        dt = float(timestamp) - self._t
        if dt <= 0:
            return self._x.copy()
        p = self.params
        dx = (arr - self._x) * (speed_scale / dt)
        if self.vector_axis is not None:
            dx = np.linalg.norm(dx, axis=self.vector_axis, keepdims=True)
        a_d = _alpha(p.d_cutoff, dt)
        dx_hat = a_d * dx + (1.0 - a_d) * self._dx
        cutoff = p.min_cutoff + p.beta * np.abs(dx_hat)
        a = _alpha(cutoff, dt)
        x_hat = a * arr + (1.0 - a) * self._x
        self._x, self._dx, self._t = x_hat, dx_hat, float(timestamp)
        return x_hat.copy()
