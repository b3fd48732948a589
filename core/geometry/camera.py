"""Pinhole cameras: intrinsics, projection, unprojection, depth back-projection.

Conventions (the whole project): OpenCV camera frame (x right, y down, z forward), metres,
pixels for images. Pixel coordinates put the *centre* of pixel (row i, column j) at
(u, v) = (j, i), so an image of width W spans u in [-0.5, W - 0.5] (OpenCV's convention, the
one of ``cv2.warpAffine`` and of calibrated ``K``).

``K`` is a (..., 3, 3) intrinsic matrix with bottom row (0, 0, 1). It may be a general affine
camera matrix (skew, a rotated crop's ``K`` from :func:`crop_intrinsics`): the functions here
use ``K[..., :2, :2]`` and ``K[..., :2, 2]`` and never assume ``K[0, 1] == 0``.

Arrays: numpy in -> float64 numpy out; any torch tensor in -> tensor out (differentiable).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ._arrays import (
    as_arrays,
    as_tensors,
    check_finite,
    check_shape,
    checks_apply,
    finish,
    xp_of,
)

__all__ = [
    "DEFAULT_FOV_DEG",
    "DEFAULT_FOV_AXIS",
    "intrinsics_from_fov",
    "default_intrinsics",
    "check_intrinsics",
    "project",
    "unproject",
    "normalize_pixels",
    "backproject_depth",
]

#: Field of view of :func:`default_intrinsics`: 70 degrees across the image diagonal, between a
#: typical laptop webcam (about 65-75 deg diagonal) and a Logitech C920-class USB webcam (78 deg).
#: At 640x480 this gives f = 571 px.
DEFAULT_FOV_DEG = 70.0
DEFAULT_FOV_AXIS = "diagonal"

_AXES = ("horizontal", "vertical", "diagonal")


def intrinsics_from_fov(width: int, height: int, fov_deg: float = 60.0,
                        axis: str = "horizontal") -> Any:
    """Intrinsics of an ideal pinhole camera (square pixels, no skew, centred principal point).

    Args:
        width, height: image size in pixels (> 0).
        fov_deg: full field of view in degrees along ``axis``, in (0, 180).
        axis: "horizontal" (across the width), "vertical" (height) or "diagonal".

    Returns:
        K: (3, 3) float64 numpy array, f = (extent / 2) / tan(fov / 2) px, principal point at the
        image centre ((width - 1) / 2, (height - 1) / 2) in the pixel-centre convention.
    """
    if not (width > 0 and height > 0):
        raise ValueError(f"width and height must be > 0 pixels; got {width}x{height}")
    if not (0.0 < fov_deg < 180.0) or not math.isfinite(fov_deg):
        raise ValueError(f"fov_deg must be in (0, 180) degrees; got {fov_deg}")
    if axis not in _AXES:
        raise ValueError(f"axis must be one of {_AXES}; got {axis!r}")
    extent = {"horizontal": width, "vertical": height,
              "diagonal": math.hypot(width, height)}[axis]
    f = 0.5 * extent / math.tan(math.radians(fov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0],
                     [0.0, f, (height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])


def default_intrinsics(width: int, height: int) -> Any:
    """A sensible webcam ``K`` (3, 3) numpy when no calibration is known.

    Uses :data:`DEFAULT_FOV_DEG` (70 deg) across the image diagonal, square pixels, centred
    principal point.
    """
    return intrinsics_from_fov(width, height, DEFAULT_FOV_DEG, DEFAULT_FOV_AXIS)


def _check_K(K: Any, name: str = "K") -> None:
    """Validate a (..., 3, 3) tensor or float numpy array (see :func:`check_intrinsics`)."""
    check_shape(name, K, (3, 3))
    if not checks_apply(K):
        return
    check_finite(name, K)
    bottom = K[..., 2, :]
    bad_row = (abs(bottom[..., 0]) > 1e-4) | (abs(bottom[..., 1]) > 1e-4) | \
        (abs(bottom[..., 2] - 1.0) > 1e-4)
    if bool(bad_row.any()):
        raise ValueError(f"{name} must have bottom row (0, 0, 1) (is it transposed?); "
                         f"got {bottom.reshape(-1, 3)[0].tolist()}")
    det = K[..., 0, 0] * K[..., 1, 1] - K[..., 0, 1] * K[..., 1, 0]
    bad = ~(abs(det) > 1e-12)
    if bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0][0])
        k = K.reshape(-1, 3, 3)[i]
        raise ValueError(f"{name} has a zero focal length: det(K[:2, :2]) must be non-zero; "
                         f"got fx={k[0, 0].item()}, fy={k[1, 1].item()} (matrix {i})")


def check_intrinsics(K: Any, name: str = "K") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``K`` is a valid (..., 3, 3) intrinsic matrix:
    finite, bottom row (0, 0, 1), non-zero focal lengths (det of ``K[:2, :2]`` non-zero)."""
    (k,), _ = as_arrays(K)
    _check_K(k, name)


def _affine_parts(K: Any) -> tuple[Any, Any]:
    return K[..., :2, :2], K[..., :2, 2]


def _normalize(uv: Any, K: Any) -> Any:
    """K^-1 [u, v, 1] restricted to (x, y) with an analytic 2x2 inverse (batched; tensors or
    numpy arrays)."""
    xp = xp_of(uv)
    M, c = _affine_parts(K)
    d = uv - c[..., None, :]
    det = M[..., 0, 0] * M[..., 1, 1] - M[..., 0, 1] * M[..., 1, 0]
    inv = xp.stack([xp.stack([M[..., 1, 1], -M[..., 0, 1]], -1),
                    xp.stack([-M[..., 1, 0], M[..., 0, 0]], -1)], -2)
    inv = inv / det[..., None, None]
    return d @ xp.swapaxes(inv, -1, -2)


def _denormalize(xy: Any, K: Any) -> Any:
    M, c = _affine_parts(K)
    return xy @ xp_of(xy).swapaxes(M, -1, -2) + c[..., None, :]


def project(points: Any, K: Any, min_depth: float | None = None) -> Any:
    """Perspective projection of camera-frame points to pixels.

    Args:
        points: (..., N, 3) metres, camera frame.
        K: (..., 3, 3) intrinsics, broadcastable against the leading dims of ``points``.
        min_depth: None (default) -> raise ``ValueError`` for points with Z <= 0 (behind or on
            the camera plane); a float (metres) -> clamp Z to at least this value instead
            (for losses on predictions that may transiently cross the camera plane).

    Returns:
        uv: (..., N, 2) pixels.
    """
    (p, k), xp = as_arrays(points, K)
    check_shape("points", p, (None, 3))
    _check_K(k)
    check_finite("points", p)
    z = p[..., 2:]
    if min_depth is None:
        if checks_apply(z) and not bool((z > 0).all()):
            raise ValueError(f"points must lie in front of the camera (Z > 0 m); got "
                             f"{int((z <= 0).sum())} point(s) with Z <= 0, min Z = "
                             f"{float(z.min()):.4g}")
    else:
        z = xp.clip(z, min_depth, None)
    return _denormalize(p[..., :2] / z, k)


def normalize_pixels(uv: Any, K: Any) -> Any:
    """Normalised image coordinates: (x, y) of K^-1 [u, v, 1].

    Args:
        uv: (..., N, 2) pixels.
        K: (..., 3, 3) intrinsics.

    Returns:
        xy: (..., N, 2) unitless (X/Z, Y/Z of the ray through each pixel).
    """
    (q, k), _ = as_arrays(uv, K)
    check_shape("uv", q, (None, 2))
    _check_K(k)
    check_finite("uv", q)
    return _normalize(q, k)


def unproject(uv: Any, depth: Any, K: Any) -> Any:
    """Lift pixels with known depth to camera-frame points: P = depth * K^-1 [u, v, 1].

    Args:
        uv: (..., N, 2) pixels.
        depth: (..., N) metres, the Z coordinate (not the distance along the ray), > 0.
        K: (..., 3, 3) intrinsics.

    Returns:
        points: (..., N, 3) metres.
    """
    (q, d, k), xp = as_arrays(uv, depth, K)
    check_shape("uv", q, (None, 2))
    _check_K(k)
    check_finite("uv", q)
    check_finite("depth", d)
    if d.shape != q.shape[:-1]:
        raise ValueError(f"depth must have shape {tuple(q.shape[:-1])} (uv without its last "
                         f"axis); got {tuple(d.shape)}")
    if checks_apply(d) and not bool((d > 0).all()):
        raise ValueError(f"depth must be > 0 m (in front of the camera); got min "
                         f"{float(d.min()):.4g}")
    xy = _normalize(q, k)
    return xp.concatenate([xy, xp.ones_like(xy[..., :1])], -1) * d[..., None]


def backproject_depth(depth: Any, K: Any, stride: int = 1) -> Any:
    """Point cloud of a depth map: one point per valid pixel (depth > 0 and finite).

    Args:
        depth: (H, W) metres (Z per pixel); 0, negative, NaN or inf mark missing readings.
        K: (3, 3) intrinsics of the depth image.
        stride: keep every ``stride``-th row and column (pixel (i, j) with i, j multiples of
            ``stride``), >= 1.

    Returns:
        points: (M, 3) metres, camera frame, in row-major pixel order.
    """
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1; got {stride!r}")
    (d, k), numpy_out = as_tensors(depth, K)
    if d.ndim != 2:
        raise ValueError(f"depth must have shape (H, W); got {tuple(d.shape)}")
    if k.shape != (3, 3):
        raise ValueError(f"K must have shape (3, 3); got {tuple(k.shape)}")
    _check_K(k)
    d = d[::stride, ::stride]
    rows = torch.arange(0, depth.shape[0], stride, device=d.device, dtype=d.dtype)
    cols = torch.arange(0, depth.shape[1], stride, device=d.device, dtype=d.dtype)
    valid = torch.isfinite(d) & (d > 0)
    ii, jj = torch.nonzero(valid, as_tuple=True)
    uv = torch.stack([cols[jj], rows[ii]], -1)
    z = d[ii, jj]
    xy = _normalize(uv, k)
    pts = torch.cat([xy, torch.ones_like(z)[:, None]], -1) * z[:, None]
    return finish(pts, numpy_out)
