"""Depth-assisted 3D labels: 2D joints + a depth map -> 3D joints (Qt-free).

Each joint takes the median of the valid depth readings (finite, > 0) in a
``(2 window + 1)``-pixel square around its 2D position. A joint whose reading is missing, or
more than ``max_spread`` metres from the median over the hand's joints (a fingertip over the
background, a finger hidden behind another), takes the depth of its nearest parent that has
one (the wrist, failing that, the hand's median). The 3D joint is the back-projection
``depth * K^-1 [u, v, 1]`` (:func:`~handpose.core.geometry.camera.unproject`).
"""

from __future__ import annotations

import numpy as np

from handpose.core.geometry.camera import unproject
from handpose.core.skeleton import NUM_JOINTS, PARENTS

__all__ = ["joint_depths", "lift_with_depth"]


def joint_depths(uv: np.ndarray, depth: np.ndarray, window: int = 2,
                 max_spread: float = 0.12) -> tuple[np.ndarray, np.ndarray]:
    """Depth of each 2D joint read from a depth map (module docstring).

    Args:
        uv: (21, 2) pixels. depth: (H, W) metres (0 / NaN = no reading).
        window: half-size of the square read around each joint, pixels (>= 0).
        max_spread: largest distance from the hand's median depth a reading may have (m).
    Returns:
        (21,) depth in metres and (21,) bool: True where the joint's own reading was used.
    Raises:
        ValueError: bad shapes, or no valid reading under any joint.
    """
    uv = np.asarray(uv, np.float64)
    d = np.asarray(depth, np.float64)
    if uv.shape != (NUM_JOINTS, 2) or not np.all(np.isfinite(uv)):
        raise ValueError(f"uv must be a finite (21, 2) array of pixels; got {uv.shape}")
    if d.ndim != 2:
        raise ValueError(f"depth must have shape (H, W); got {d.shape}")
    if not isinstance(window, int) or window < 0:
        raise ValueError(f"window must be an int >= 0; got {window!r}")
    h, w = d.shape
    off = np.arange(-window, window + 1)
    cols = np.rint(uv[:, 0])[:, None, None] + off[None, None, :]
    rows = np.rint(uv[:, 1])[:, None, None] + off[None, :, None]
    cols, rows = np.broadcast_arrays(cols, rows)
    inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    vals = d[np.clip(rows, 0, h - 1).astype(np.int64), np.clip(cols, 0, w - 1).astype(np.int64)]
    vals = np.where(inside & np.isfinite(vals) & (vals > 0), vals, np.nan).reshape(NUM_JOINTS, -1)
    has = np.any(np.isfinite(vals), axis=1)
    z = np.full(NUM_JOINTS, np.nan)
    z[has] = np.nanmedian(vals[has], axis=1)
    if not has.any():
        raise ValueError("no valid depth reading under any joint (is the depth map aligned "
                         "with the image?)")
    med = float(np.median(z[has]))
    own = has & (np.abs(z - med) <= max_spread)
    out = np.where(own, z, np.nan)
    for j in range(NUM_JOINTS):  # parents come first in the joint order
        if not own[j]:
            p = PARENTS[j]
            out[j] = out[p] if p >= 0 and np.isfinite(out[p]) else med
    return out, own


def lift_with_depth(uv: np.ndarray, depth: np.ndarray, K: np.ndarray, window: int = 2,
                    max_spread: float = 0.12) -> tuple[np.ndarray, np.ndarray]:
    """3D joints from 2D joints and a depth map.

    Args:
        uv: (21, 2) pixels. depth: (H, W) metres aligned with the image. K: (3, 3).
        window, max_spread: see :func:`joint_depths`.
    Returns:
        (21, 3) metres in the camera frame, and (21,) bool (own depth reading used).
    """
    z, own = joint_depths(uv, depth, window, max_spread)
    pts = unproject(np.asarray(uv, np.float64), z, np.asarray(K, np.float64))
    return np.asarray(pts, np.float64), own
