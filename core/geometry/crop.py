"""Hand-centred square crops as 2x3 affine matrices: the ONE crop of training and inference.

A crop is an affine matrix ``A`` (..., 2, 3) mapping full-image pixels to crop pixels:
``[u', v'] = A[:, :2] @ [u, v] + A[:, 2]``. Pixel coordinates follow the OpenCV convention of
:mod:`.camera` (pixel centres at integers), the convention of ``cv2.warpAffine`` and of
``kornia.geometry.transform.warp_affine(align_corners=True)``, so the matrix can be passed to
either unchanged. A square of side ``L`` source pixels centred on ``c`` maps exactly onto the
``out_size`` x ``out_size`` crop (its edges onto -0.5 and out_size - 0.5).

Rotation follows OpenCV / kornia (``cv2.getRotationMatrix2D``): a positive ``rotation``
(radians) turns the image content counter-clockwise as displayed, about the crop centre.

Because the crop is affine, ``crop_intrinsics(K, A)`` is the exact camera matrix of the crop:
projecting 3D points with it gives the cropped 2D points, so lifting in the crop is exact.

Arrays: numpy in -> float64 numpy out; any torch tensor in -> tensor out (differentiable).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from ._arrays import as_arrays, check_finite, check_shape, checks_apply, xp_of
from .camera import _check_K

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_CROP_SIZE",
    "square_crop_affine",
    "crop_from_keypoints",
    "crop_from_box",
    "upright_rotation",
    "invert_affine",
    "apply_affine",
    "compose_affine",
    "mirror_affine",
    "uncrop_points",
    "crop_image",
    "crop_images",
    "crop_intrinsics",
]

#: Crop side = DEFAULT_MARGIN x the larger side of the keypoints' bounding box. Keypoints sit
#: on the joints, inside the skin silhouette; 1.4 leaves 20 % of the box on each side for the
#: palm edge, fingertip flesh and frame-to-frame motion while tracking. (The real evaluation
#: crops of shared/data/real_eval_hgc are 1.32x their keypoint box; PeCLR samples 0.9-1.5.)
DEFAULT_MARGIN = 1.4
#: Crop side in pixels (PeCLR's network input, METHODS 2).
DEFAULT_CROP_SIZE = 128

_BORDERS = {"constant": (cv2.BORDER_CONSTANT, "zeros"), "replicate": (cv2.BORDER_REPLICATE,
                                                                       "border")}
_INTERP = {"linear": (cv2.INTER_LINEAR, "bilinear"), "nearest": (cv2.INTER_NEAREST, "nearest")}


def _check_out_size(out_size: int) -> None:
    if not isinstance(out_size, int | np.integer) or out_size < 1:
        raise ValueError(f"out_size must be an integer >= 1 pixels; got {out_size!r}")


def _rotation_matrix(r: Any) -> Any:
    """(..., 2, 2) [[c, s], [-s, c]] of angles (...,): the OpenCV turn of the content."""
    xp = xp_of(r)
    c, s = xp.cos(r), xp.sin(r)
    return xp.stack([xp.stack([c, s], -1), xp.stack([-s, c], -1)], -2)


def _square(centre: Any, side: Any, out_size: int, rotation: Any) -> Any:
    """Affine of the square (centre (..., 2), side (...,), rotation (...,)) -> crop pixels."""
    xp = xp_of(centre)
    # OpenCV convention: content turns counter-clockwise on screen for positive angles.
    lin = _rotation_matrix(rotation) * (out_size / side)[..., None, None]
    t = (out_size - 1) / 2.0 - (lin @ centre[..., None])[..., 0]
    return xp.concatenate([lin, t[..., None]], -1)


def square_crop_affine(centre: Any, side: Any, out_size: int = DEFAULT_CROP_SIZE,
                       rotation: Any = 0.0) -> Any:
    """Affine (..., 2, 3) of a square crop of ``side`` pixels centred on ``centre``.

    Args:
        centre: (..., 2) pixels in the full image.
        side: (...,) or scalar, pixels in the full image (> 0).
        out_size: crop side in pixels.
        rotation: (...,) or scalar radians (positive = content turns counter-clockwise).
    """
    _check_out_size(out_size)
    (c, sd, r), xp = as_arrays(centre, side, rotation)
    check_shape("centre", c, (2,))
    check_finite("centre", c)
    check_finite("side", sd)
    check_finite("rotation", r)
    if checks_apply(sd) and not bool((sd > 0).all()):
        raise ValueError(f"side must be > 0 pixels; got min {float(sd.min()):.4g}")
    lead = tuple(np.broadcast_shapes(tuple(c.shape[:-1]), tuple(sd.shape), tuple(r.shape)))
    return _square(xp.broadcast_to(c, (*lead, 2)), xp.broadcast_to(sd, lead), out_size,
                   xp.broadcast_to(r, lead))


def crop_from_keypoints(uv: Any, margin: float = DEFAULT_MARGIN,
                        out_size: int = DEFAULT_CROP_SIZE, rotation: Any = 0.0,
                        min_side: float = 1.0) -> Any:
    """Hand-centred square crop from 2D keypoints.

    The keypoints are turned by ``rotation`` first; the crop is the bounding box of the turned
    keypoints, made square with side ``max(box w, box h) * margin`` (at least ``min_side`` px)
    around the box centre. With ``rotation = 0`` this is the plain keypoint bounding box.

    Args:
        uv: (..., N, 2) pixels in the full image (N >= 1, typically 21).
        margin: side / larger keypoint-box side (> 0), default :data:`DEFAULT_MARGIN`.
        out_size: crop side in pixels.
        rotation: scalar or (...,) radians, positive turns the content counter-clockwise.
        min_side: smallest crop side in source pixels (a single point gives this side).

    Returns:
        A: (..., 2, 3) full-image pixels -> crop pixels.
    """
    _check_out_size(out_size)
    if not margin > 0:
        raise ValueError(f"margin must be > 0; got {margin}")
    if not min_side > 0:
        raise ValueError(f"min_side must be > 0 pixels; got {min_side}")
    (q, r), xp = as_arrays(uv, rotation)
    check_shape("uv", q, (None, 2))
    if q.shape[-2] < 1:
        raise ValueError(f"uv must hold at least one keypoint; got shape {tuple(q.shape)}")
    check_finite("uv", q)
    check_finite("rotation", r)
    lead = tuple(np.broadcast_shapes(tuple(q.shape[:-2]), tuple(r.shape)))
    q = xp.broadcast_to(q, (*lead, *q.shape[-2:]))
    r = xp.broadcast_to(r, lead)
    rot_t = xp.swapaxes(_rotation_matrix(r), -1, -2)
    turned = q @ rot_t
    lo, hi = xp.amin(turned, -2), xp.amax(turned, -2)
    side = xp.clip(xp.amax(hi - lo, -1) * margin, min_side, None)
    centre = (rot_t @ ((lo + hi) / 2.0)[..., None])[..., 0]  # back to image coordinates
    return _square(centre, side, out_size, r)


def upright_rotation(uv: Any) -> Any:
    """Crop rotation (radians) that turns the wrist -> middle-MCP axis upright.

    MediaPipe's convention: ``pi/2 - atan2(-(v9 - v0), u9 - u0)`` wrapped into [-pi, pi); with
    :func:`crop_from_keypoints` (positive turns the content counter-clockwise) the middle MCP
    lands straight above the wrist in the crop. The tracker crops every tracked hand this way
    and training can crop its labelled hands the same way, so both see upright hands.

    Args:
        uv: (..., 21, 2) pixels (joint order of :mod:`handpose.core.skeleton`).

    Returns:
        (...,) radians as numpy (a float for a single hand).
    """
    q = np.asarray(uv, dtype=np.float64)
    if q.ndim < 2 or q.shape[-2:] != (21, 2):
        raise ValueError(f"uv must have shape (..., 21, 2) pixels; got {q.shape}")
    d = q[..., 9, :] - q[..., 0, :]  # wrist -> middle MCP
    r = np.pi / 2 - np.arctan2(-d[..., 1], d[..., 0])
    r = (r + np.pi) % (2 * np.pi) - np.pi
    return float(r) if r.ndim == 0 else r


def crop_from_box(box: Any, margin: float = DEFAULT_MARGIN, out_size: int = DEFAULT_CROP_SIZE,
                  rotation: Any = 0.0) -> Any:
    """Square crop around a box (e.g. a detector's hand box).

    Args:
        box: (..., 4) as (x, y, w, h) pixels: the region [x, x + w] x [y, y + h] in the
            pixel-centre convention (a box exactly covering pixel columns j0..j1 is
            x = j0 - 0.5, w = j1 - j0 + 1). w, h > 0.
        margin: crop side / max(w, h) (> 0).
        out_size: crop side in pixels.
        rotation: scalar or (...,) radians about the box centre.

    Returns:
        A: (..., 2, 3) full-image pixels -> crop pixels.
    """
    _check_out_size(out_size)
    if not margin > 0:
        raise ValueError(f"margin must be > 0; got {margin}")
    (b, r), xp = as_arrays(box, rotation)
    check_shape("box", b, (4,))
    check_finite("box", b)
    check_finite("rotation", r)
    if checks_apply(b) and not bool((b[..., 2:] > 0).all()):
        raise ValueError(f"box w and h must be > 0 pixels; got min {float(b[..., 2:].min()):.4g}")
    centre = b[..., :2] + b[..., 2:] / 2.0
    side = xp.amax(b[..., 2:], -1) * margin
    lead = tuple(np.broadcast_shapes(tuple(b.shape[:-1]), tuple(r.shape)))
    return _square(xp.broadcast_to(centre, (*lead, 2)), xp.broadcast_to(side, lead), out_size,
                   xp.broadcast_to(r, lead))


def mirror_affine(A: Any, out_size: int) -> Any:
    """The same crop mirrored left to right: column u of the crop becomes ``out_size - 1 - u``.

    Args:
        A: (..., 2, 3) full-image pixels -> crop pixels.
        out_size: crop side in pixels.

    Returns:
        (..., 2, 3) full-image pixels -> mirrored crop pixels (uncropping through it maps
        points found in the mirrored crop back to where they are in the image).
    """
    _check_out_size(out_size)
    (a,), xp = as_arrays(A)
    _check_A(a)
    sign = xp.asarray([[-1.0], [1.0]], dtype=a.dtype)
    shift = xp.asarray([[0.0, 0.0, out_size - 1.0], [0.0, 0.0, 0.0]], dtype=a.dtype)
    return a * sign + shift


def _check_A(A: Any, name: str = "A") -> None:
    check_shape(name, A, (2, 3))
    check_finite(name, A)


def invert_affine(A: Any) -> Any:
    """Inverse of (..., 2, 3) affine matrices (crop pixels -> full-image pixels)."""
    (a,), xp = as_arrays(A)
    _check_A(a)
    L, t = a[..., :2], a[..., 2:]
    det = L[..., 0, 0] * L[..., 1, 1] - L[..., 0, 1] * L[..., 1, 0]
    if checks_apply(a) and not bool((abs(det) > 1e-12).all()):
        raise ValueError("A must be invertible (non-zero determinant of A[:, :2]); got det = "
                         f"{float(abs(det).min()):.3g}")
    inv = xp.stack([xp.stack([L[..., 1, 1], -L[..., 0, 1]], -1),
                    xp.stack([-L[..., 1, 0], L[..., 0, 0]], -1)], -2) / det[..., None, None]
    return xp.concatenate([inv, -(inv @ t)], -1)


def apply_affine(A: Any, uv: Any) -> Any:
    """Apply (..., 2, 3) affines to points (..., N, 2) -> (..., N, 2) (pixels to pixels)."""
    (a, q), xp = as_arrays(A, uv)
    _check_A(a)
    check_shape("uv", q, (None, 2))
    return q @ xp.swapaxes(a[..., :2], -1, -2) + a[..., None, :, 2]


def compose_affine(A: Any, B: Any) -> Any:
    """The affine "B, then A" (..., 2, 3): ``apply_affine(compose_affine(A, B), x) ==
    apply_affine(A, apply_affine(B, x))``."""
    (a, b), xp = as_arrays(A, B)
    _check_A(a)
    _check_A(b, "B")
    lin = a[..., :2] @ b[..., :2]
    t = a[..., :2] @ b[..., 2:] + a[..., 2:]
    return xp.concatenate([lin, t], -1)


def uncrop_points(A: Any, uv_crop: Any) -> Any:
    """Crop pixels (..., N, 2) back to full-image pixels with the crop's affine ``A``."""
    return apply_affine(invert_affine(A), uv_crop)


def crop_image(image: np.ndarray, A: Any, out_size: int = DEFAULT_CROP_SIZE,
               border: str = "constant", interpolation: str = "linear") -> np.ndarray:
    """Warp one image into its crop with ``cv2.warpAffine``.

    Args:
        image: (H, W) or (H, W, C) numpy array (uint8 RGB, float depth, ...).
        A: (2, 3) full-image pixels -> crop pixels (numpy or tensor).
        out_size: crop side in pixels.
        border: "constant" (zeros outside the image, the default of training and inference
            alike) or "replicate" (repeat the edge pixels).
        interpolation: "linear" (images) or "nearest" (depth maps, masks, labels).

    Returns:
        crop: (out_size, out_size[, C]) numpy array of the image's dtype.
    """
    _check_out_size(out_size)
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
        raise ValueError(f"image must be a (H, W) or (H, W, C) numpy array; got "
                         f"{type(image).__name__} {getattr(image, 'shape', '')}")
    if border not in _BORDERS:
        raise ValueError(f"border must be one of {tuple(_BORDERS)}; got {border!r}")
    if interpolation not in _INTERP:
        raise ValueError(f"interpolation must be one of {tuple(_INTERP)}; got {interpolation!r}")
    a = A.detach().cpu().numpy() if isinstance(A, torch.Tensor) else np.asarray(A)
    if a.shape != (2, 3) or not np.all(np.isfinite(a)):
        raise ValueError(f"A must be a finite (2, 3) affine matrix; got shape {a.shape}")
    return cv2.warpAffine(image, a.astype(np.float64), (out_size, out_size),
                          flags=_INTERP[interpolation][0], borderMode=_BORDERS[border][0],
                          borderValue=(0.0, 0.0, 0.0, 0.0))


def crop_images(images: torch.Tensor, A: Any, out_size: int = DEFAULT_CROP_SIZE,
                border: str = "constant", interpolation: str = "linear") -> torch.Tensor:
    """Batched, differentiable crop with ``kornia.geometry.transform.warp_affine``.

    Same geometry and border handling as :func:`crop_image` (tested to agree with it).

    Args:
        images: (B, C, H, W) float tensor.
        A: (B, 2, 3) full-image pixels -> crop pixels.
        out_size: crop side in pixels.
        border: "constant" (zeros) or "replicate".
        interpolation: "linear" or "nearest".

    Returns:
        crops: (B, C, out_size, out_size) tensor of the images' dtype and device.
    """
    from kornia.geometry.transform import warp_affine

    _check_out_size(out_size)
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or \
            not images.is_floating_point():
        raise ValueError(f"images must be a (B, C, H, W) float tensor; got "
                         f"{type(images).__name__} {tuple(getattr(images, 'shape', ()))}")
    if border not in _BORDERS:
        raise ValueError(f"border must be one of {tuple(_BORDERS)}; got {border!r}")
    if interpolation not in _INTERP:
        raise ValueError(f"interpolation must be one of {tuple(_INTERP)}; got {interpolation!r}")
    a = A if isinstance(A, torch.Tensor) else torch.as_tensor(np.asarray(A))
    a = a.to(device=images.device, dtype=images.dtype)
    if a.shape != (images.shape[0], 2, 3):
        raise ValueError(f"A must have shape ({images.shape[0]}, 2, 3) (one per image); got "
                         f"{tuple(a.shape)}")
    check_finite("A", a)
    return warp_affine(images, a, (out_size, out_size), mode=_INTERP[interpolation][1],
                       padding_mode=_BORDERS[border][1], align_corners=True)


def crop_intrinsics(K: Any, A: Any) -> Any:
    """Camera matrix of a crop: ``[A; 0 0 1] @ K`` (..., 3, 3).

    Projecting camera-frame points with it gives the cropped pixels exactly (any affine crop,
    rotated or not; a rotated crop's ``K`` has off-diagonal terms, which :mod:`.camera` and
    :mod:`.lifting` handle).

    Args:
        K: (..., 3, 3) intrinsics of the full image.
        A: (..., 2, 3) full-image pixels -> crop pixels.
    """
    (k, a), xp = as_arrays(K, A)
    _check_K(k)
    _check_A(a)
    row = xp.zeros_like(a[..., :1, :])
    row[..., 0, 2] = 1.0
    return xp.concatenate([a, row], -2) @ k
