"""Root depth and hand scale from a depth map (RGB-D input).

With a 2.5D pose (uv, z_rel) the joints are ``P_k = s (Zn + z_k) K^-1 [u_k, v_k, 1]``, where
``Zn = Z_root / s`` follows from the 2.5D pose alone (:func:`~handpose.core.geometry.
normalized_root_depth`) and the reference bone length ``s`` is unknown in RGB. A depth camera
observes the skin surface in front of each joint: ``D_k + offset = Z_k = s (Zn + z_k)``, so
every visible joint gives an estimate ``s_k = (D_k + offset) / (Zn + z_k)``; their median is
robust to occluded joints (the depth there belongs to an occluder) and to holes. With a known
scale (per-user calibration) only the root depth is measured:
``Z_root = median_k (D_k + offset - s z_k)``.

``D_k`` is the median of the valid depth readings in a small window around the joint's pixel
(``window`` x ``window``); readings of 0 / NaN / inf are holes. Fewer than ``min_valid`` joints
with a reading: no estimate (the caller falls back to the RGB-only lift).

:data:`SURFACE_OFFSET_M` (6 mm) is the median of ``Z_joint - D`` over the 25 frames x 21 joints
of ``shared/data/real_rgbd`` (fingertips ~0-3 mm, MCP joints 15-30 mm: the median over joints
absorbs the spread).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..geometry.lifting import lift_from_root_depth, normalized_root_depth
from ..skeleton import NUM_JOINTS

__all__ = ["SURFACE_OFFSET_M", "sample_depth", "depth_scale_and_root", "lift_with_depth"]

#: Joint centre behind the observed skin surface, metres (see the module docstring).
SURFACE_OFFSET_M = 0.006


def sample_depth(depth: np.ndarray, uv: Any, window: int = 5) -> np.ndarray:
    """Robust depth at keypoints: the median of the valid readings in a window around each.

    Args:
        depth: (H, W) float metres; 0, negative, NaN or inf = no reading.
        uv: (..., N, 2) pixels.
        window: odd side of the square window in pixels (>= 1).

    Returns:
        (..., N) metres, NaN where the window holds no valid reading or lies outside.
    """
    if not isinstance(depth, np.ndarray) or depth.ndim != 2:
        raise ValueError(f"depth must be an (H, W) numpy array of metres; got "
                         f"{type(depth).__name__} {getattr(depth, 'shape', '')}")
    if not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd int >= 1 (pixels); got {window!r}")
    q = np.asarray(uv, dtype=np.float64)
    if q.ndim < 2 or q.shape[-1] != 2:
        raise ValueError(f"uv must have shape (..., N, 2) pixels; got {q.shape}")
    h, w = depth.shape
    r = window // 2
    off = np.arange(-r, r + 1)
    centre = np.rint(np.nan_to_num(q, nan=-1e9)).astype(np.int64)
    cols = centre[..., 0, None, None] + off[None, :]  # (..., N, 1, window)
    rows = centre[..., 1, None, None] + off[:, None]  # (..., N, window, 1)
    inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    vals = depth[np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)].astype(np.float64)
    vals = np.where(inside & np.isfinite(vals) & (vals > 0), vals, np.nan)
    flat = vals.reshape(*vals.shape[:-2], window * window)
    out = np.full(flat.shape[:-1], np.nan)
    has = np.any(np.isfinite(flat), -1)
    if np.any(has):
        out[has] = np.nanmedian(flat[has], -1)
    return out


def depth_scale_and_root(uv: Any, z_rel: Any, K: Any, depth: np.ndarray,
                         scale: float | None = None, window: int = 5, min_valid: int = 5,
                         offset: float = SURFACE_OFFSET_M) -> tuple[float, float] | None:
    """Reference bone length and root depth of one hand from a depth map.

    Args:
        uv: (21, 2) full-image pixels; z_rel: (21,) unitless; K: (3, 3) of the depth map
            (aligned to the RGB image).
        depth: (H, W) metres.
        scale: known reference bone length (metres): only the root depth is measured.
        window, min_valid, offset: see the module docstring.

    Returns:
        (scale metres, root depth metres), or None with too few valid readings or a
        non-positive result.
    """
    q = np.asarray(uv, dtype=np.float64)
    z = np.asarray(z_rel, dtype=np.float64)
    if q.shape != (NUM_JOINTS, 2) or z.shape != (NUM_JOINTS,):
        raise ValueError(f"uv must be (21, 2) and z_rel (21,); got {q.shape} and {z.shape}")
    d = sample_depth(depth, q, window) + offset
    ok = np.isfinite(d)
    if int(ok.sum()) < min_valid:
        return None
    if scale is None:
        zn = float(normalized_root_depth(q, z, np.asarray(K, np.float64)))
        denom = zn + z[ok]
        good = denom > 1e-6
        if int(good.sum()) < min_valid:
            return None
        s = float(np.median(d[ok][good] / denom[good]))
        root = s * zn
    else:
        s = float(scale)
        root = float(np.median(d[ok] - s * z[ok]))
    if not (np.isfinite(s) and np.isfinite(root) and s > 0 and root > 0):
        return None
    return s, root


def lift_with_depth(uv: Any, z_rel: Any, K: Any, depth: np.ndarray, scale: float | None = None,
                    window: int = 5, min_valid: int = 5, offset: float = SURFACE_OFFSET_M
                    ) -> tuple[np.ndarray, float, float] | None:
    """Lift one hand to metric 3D with root depth (and scale, unless given) from depth.

    Args: as :func:`depth_scale_and_root`.

    Returns:
        (joints (21, 3) metres, scale metres, root depth metres), or None (see above).
    """
    est = depth_scale_and_root(uv, z_rel, K, depth, scale, window, min_valid, offset)
    if est is None:
        return None
    s, root = est
    joints = lift_from_root_depth(np.asarray(uv, np.float64), np.asarray(z_rel, np.float64),
                                  np.asarray(K, np.float64), s, root)
    return np.asarray(joints), s, root
