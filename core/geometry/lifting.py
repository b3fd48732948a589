"""2.5D pose <-> 3D joints (Iqbal et al. 2018, METHODS 1).

The 2.5D pose of a hand is, per joint k, its pixel position (u_k, v_k) and its scale-normalised
root-relative depth ``z_k = (Z_k - Z_root) / s``, where ``s`` is the length of the reference
bone (:data:`~handpose.core.skeleton.REFERENCE_BONE`, middle MCP -> middle PIP, FreiHAND's
``scale``) and the root is :data:`ROOT_JOINT` (the wrist) everywhere in handpose.

Lifting back needs the root depth. With ``x~_k = K^-1 [u_k, v_k, 1]`` and
``P_k = s (Z + z_k) x~_k`` (Z = Z_root / s, unitless), the reference bone must have length s:
``|(Z + z_n) x~_n - (Z + z_m) x~_m| = 1``, a quadratic ``a Z^2 + b Z + c = 0`` in Z whose
larger root is taken (METHODS 1, eps guards on a and on the discriminant). It is evaluated in
the numerically stable form (no cancellation between -b and the square root), which is the same
root; everything is differentiable in torch.

Ambiguity (inherent to the method): both roots reproduce the 2.5D pose and the bone length
exactly. The true root is the larger one iff moving the hand away along the camera rays
lengthens the reference bone, i.e. ``(P_n - P_m) . (x~_n - x~_m) > 0``. It fails when that bone
points steeply towards or away from the camera off the optical axis: 6 of the 400 real frames
of ``real_eval_hgc`` and ~0.5 % of uniformly rotated synthetic hands. Lifting then returns the
other, exactly consistent hand; the root-refinement MLP (METHODS 1) or depth has to resolve it.
Near the double root (that dot product ~ 0) and for a reference bone seen end-on, the root
depth is ill-conditioned: float32 loses accuracy there (tests/core/test_lifting.py measures it).

Arrays: numpy in -> float64 numpy out; any torch tensor in -> tensor out.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import torch

from ..skeleton import NUM_JOINTS, REFERENCE_BONE, Joint
from ._arrays import (
    as_arrays,
    as_tensors,
    check_finite,
    check_shape,
    checks_apply,
    checks_enabled,
    finish,
    xp_of,
)
from .camera import _check_K, _denormalize, _normalize

__all__ = [
    "ROOT_JOINT",
    "LIFT_EPS",
    "to_25d",
    "normalized_root_depth",
    "lift_from_root_depth",
    "lift_to_3d",
    "scale_from_root_depth",
]

#: The root of the 2.5D representation: the wrist (joint 0), the root of the kinematic tree.
ROOT_JOINT: Final[int] = int(Joint.WRIST)
#: Lower bound of ``a`` and of the discriminant in the root-depth quadratic (normalised
#: image units squared). 1e-12 is a reference bone of 1e-6 normalised units (1e-3 px at
#: f = 1000 px) in the image: a larger bound (1e-8) already biased hands whose reference bone
#: points within ~0.5 deg of the viewing ray.
LIFT_EPS: Final[float] = 1e-12

_N, _M = REFERENCE_BONE  # (9, 10): middle MCP, middle PIP


def to_25d(joints: Any, K: Any) -> tuple[Any, Any, Any]:
    """3D joints -> 2.5D pose and the reference bone length.

    Args:
        joints: (..., 21, 3) metres, camera frame, all joints in front of the camera (Z > 0).
        K: (..., 3, 3) intrinsics of the image the 2D pose refers to.

    Returns:
        uv: (..., 21, 2) pixels; z_rel: (..., 21) unitless, ``(Z_k - Z_root) / s``;
        s: (...,) metres, ``|J10 - J9|``.
    """
    (p, k), numpy_out = as_tensors(joints, K)
    check_shape("joints", p, (NUM_JOINTS, 3))
    _check_K(k)
    check_finite("joints", p)
    z = p[..., 2]
    if checks_enabled() and not bool(torch.all(z > 0)):
        raise ValueError(f"joints must lie in front of the camera (Z > 0 m); got min Z = "
                         f"{float(z.min()):.4g}")
    s = torch.linalg.vector_norm(p[..., _M, :] - p[..., _N, :], dim=-1)
    if checks_enabled() and not bool(torch.all(s > 0)):
        raise ValueError(f"joints: the reference bone {REFERENCE_BONE} has zero length")
    uv = _denormalize(p[..., :2] / z.unsqueeze(-1), k)
    z_rel = (z - z[..., ROOT_JOINT:ROOT_JOINT + 1]) / s.unsqueeze(-1)
    return finish(uv, numpy_out), finish(z_rel, numpy_out), finish(s, numpy_out)


def _check_pose(q: Any, z: Any, k: Any) -> None:
    check_shape("uv", q, (NUM_JOINTS, 2))
    if z.shape != q.shape[:-1]:
        raise ValueError(f"z_rel must have shape {tuple(q.shape[:-1])} (uv's shape without its "
                         f"last axis); got {tuple(z.shape)}")
    _check_K(k)
    check_finite("uv", q)
    check_finite("z_rel", z)


def _check_positive(name: str, x: Any, lead: tuple[int, ...], unit: str) -> None:
    try:
        np.broadcast_shapes(tuple(x.shape), tuple(lead))
    except ValueError:
        raise ValueError(f"{name} must be a scalar or have shape broadcastable to {lead}; got "
                         f"{tuple(x.shape)}") from None
    check_finite(name, x)
    if checks_apply(x) and not bool((x > 0).all()):
        raise ValueError(f"{name} must be > 0 {unit}; got min {float(x.min()):.4g}")


def _root(xy: Any, z: Any, eps: float) -> Any:
    """Larger root Z (...,) of the reference-bone quadratic, xy (..., 21, 2), z (..., 21)."""
    xp = xp_of(xy)
    xn, yn, zn = xy[..., _N, 0], xy[..., _N, 1], z[..., _N]
    xm, ym, zm = xy[..., _M, 0], xy[..., _M, 1], z[..., _M]
    a = (xn - xm) ** 2 + (yn - ym) ** 2
    b = 2.0 * (zn * (xn * xn + yn * yn - xn * xm - yn * ym)
               + zm * (xm * xm + ym * ym - xn * xm - yn * ym))
    c = (xn * zn - xm * zm) ** 2 + (yn * zn - ym * zm) ** 2 + (zn - zm) ** 2 - 1.0
    sq = xp.sqrt(xp.clip(b * b - 4.0 * a * c, eps, None))
    a = xp.clip(a, eps, None)
    # (-b + sq) / 2a, written without cancellation when b > 0: it equals 2c / (-b - sq), whose
    # denominator is <= -sqrt(eps) there; where b < 0 it is replaced by -1 before dividing, so
    # neither branch divides by zero (finite gradients through where, no numpy warnings).
    den = xp.where(b < 0, -xp.ones_like(b), -b - sq)
    return xp.where(b < 0, (sq - b) / (2.0 * a), (2.0 * c) / den)


def normalized_root_depth(uv: Any, z_rel: Any, K: Any, eps: float = LIFT_EPS) -> Any:
    """Root depth divided by the reference bone length, Z = Z_root / s (unitless).

    The input of the root-refinement MLP (METHODS 1). Solves the quadratic of the module
    docstring in K^-1-normalised coordinates.

    Args:
        uv: (..., 21, 2) pixels; z_rel: (..., 21) unitless; K: (..., 3, 3).
        eps: lower bound of ``a`` and of the discriminant.

    Returns:
        Z: (...,) unitless.
    """
    (q, z, k), _ = as_arrays(uv, z_rel, K)
    _check_pose(q, z, k)
    return _root(_normalize(q, k), z, eps)


def _lift(xy: Any, z: Any, s: Any, root_depth: Any) -> Any:
    """P_k = (Z_root + s z_k) x~_k with root_depth = Z_root in metres."""
    xp = xp_of(xy)
    depth = root_depth[..., None] + s[..., None] * z
    return xp.concatenate([xy, xp.ones_like(xy[..., :1])], -1) * depth[..., None]


def lift_from_root_depth(uv: Any, z_rel: Any, K: Any, scale: Any, root_depth: Any) -> Any:
    """3D joints from a 2.5D pose with a known (refined or measured) root depth.

    ``P_k = (root_depth + scale * z_k) K^-1 [u_k, v_k, 1]``.

    Args:
        uv: (..., 21, 2) pixels; z_rel: (..., 21) unitless; K: (..., 3, 3).
        scale: scalar or (...,) metres, reference bone length s (> 0).
        root_depth: scalar or (...,) metres, Z of the root joint (> 0), e.g. ``s * (Z + dZ)``
            after root refinement, or the depth measured by an RGB-D camera.

    Returns:
        joints: (..., 21, 3) metres, camera frame.
    """
    (q, z, k, s, d), _ = as_arrays(uv, z_rel, K, scale, root_depth)
    _check_pose(q, z, k)
    _check_positive("scale", s, q.shape[:-2], "m")
    _check_positive("root_depth", d, q.shape[:-2], "m")
    return _lift(_normalize(q, k), z, s, d)


def lift_to_3d(uv: Any, z_rel: Any, K: Any, scale: Any, return_root_depth: bool = False,
               eps: float = LIFT_EPS, root_range: tuple[float, float] | None = None) -> Any:
    """3D joints from a 2.5D pose and the reference bone length (METHODS 1).

    Args:
        uv: (..., 21, 2) pixels in the image ``K`` describes (the crop with its crop ``K``,
            or the full image).
        z_rel: (..., 21) unitless root-relative depths ``(Z_k - Z_root) / s``.
        K: (..., 3, 3) intrinsics.
        scale: scalar or (...,) metres, the reference bone length s (> 0).
        return_root_depth: also return the root depth.
        eps: lower bound of ``a`` and of the discriminant of the quadratic.
        root_range: optional (lo, hi) clamp of the normalised root depth Z = Z_root / s before
            lifting (e.g. (4, 50) as the root-refinement MLP, METHODS 1), which keeps raw
            network predictions without a real solution from lifting to absurd depths.
            None (default): no clamp.

    Returns:
        joints: (..., 21, 3) metres, camera frame; with ``return_root_depth`` the pair
        (joints, root_depth) with root_depth (...,) metres (Z of the root joint).
    """
    (q, z, k, s), xp = as_arrays(uv, z_rel, K, scale)
    _check_pose(q, z, k)
    _check_positive("scale", s, q.shape[:-2], "m")
    xy = _normalize(q, k)
    Z = _root(xy, z, eps)
    if root_range is not None:
        lo, hi = root_range
        if not 0 < lo < hi:
            raise ValueError(f"root_range must be (lo, hi) with 0 < lo < hi; got {root_range}")
        Z = xp.clip(Z, lo, hi)
    root = s * Z
    joints = _lift(xy, z, s, root)
    if return_root_depth:
        return joints, root
    return joints


def scale_from_root_depth(uv: Any, z_rel: Any, K: Any, root_depth: Any,
                          eps: float = LIFT_EPS) -> Any:
    """Reference bone length implied by a measured root depth: s = Z_root / Z (metres).

    For RGB-D input, where the root depth is observed and the hand size is not.

    Args:
        uv: (..., 21, 2) pixels; z_rel: (..., 21) unitless; K: (..., 3, 3).
        root_depth: scalar or (...,) metres, Z of the root joint (> 0).

    Returns:
        scale: (...,) metres.
    """
    (q, z, k, d), _ = as_arrays(uv, z_rel, K, root_depth)
    _check_pose(q, z, k)
    _check_positive("root_depth", d, q.shape[:-2], "m")
    return d / _root(_normalize(q, k), z, eps)
