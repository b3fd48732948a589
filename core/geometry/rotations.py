"""Rotations: axis-angle <-> matrix, uniform random rotations, minimal vector-to-vector
rotations, planar rotations for image augmentation.

Matrices act on column vectors (``x' = R @ x``); angles are radians. Conversions use
``kornia.geometry.conversions`` and accept any leading dims. Arrays: numpy in -> float64 numpy
out; any torch tensor in -> tensor out (differentiable).
"""

from __future__ import annotations

from typing import Any

import torch
from kornia.geometry.conversions import (
    axis_angle_to_rotation_matrix,
    quaternion_to_rotation_matrix,
    rotation_matrix_to_axis_angle,
)

from ._arrays import as_tensors, check_finite, check_shape, checks_enabled, finish

__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "random_rotation",
    "rotation_between",
    "rotation_2d",
    "rotation_z",
]

#: Below this 1 + cos(angle between a and b), :func:`rotation_between` switches to the
#: antiparallel construction (about 0.08 deg from exactly opposite).
_ANTIPARALLEL = 1e-6


def axis_angle_to_matrix(axis_angle: Any) -> Any:
    """Rotation vectors (..., 3) (unit axis x angle in radians) -> matrices (..., 3, 3)."""
    (a,), numpy_out = as_tensors(axis_angle)
    check_shape("axis_angle", a, (3,))
    check_finite("axis_angle", a)
    R = axis_angle_to_rotation_matrix(a.reshape(-1, 3)).reshape(*a.shape[:-1], 3, 3)
    return finish(R, numpy_out)


def matrix_to_axis_angle(R: Any) -> Any:
    """Rotation matrices (..., 3, 3) -> rotation vectors (..., 3), angle in [0, pi] radians."""
    (r,), numpy_out = as_tensors(R)
    check_shape("R", r, (3, 3))
    check_finite("R", r)
    a = rotation_matrix_to_axis_angle(r.reshape(-1, 3, 3).contiguous())
    return finish(a.reshape(*r.shape[:-2], 3), numpy_out)


def random_rotation(n: int, generator: torch.Generator | None = None,
                    dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """``n`` rotation matrices (n, 3, 3) drawn uniformly (Haar measure) on SO(3).

    Unit quaternions from normalised 4D Gaussians are uniform on S^3, hence the matrices
    uniform on SO(3). Pass a seeded ``torch.Generator`` (on ``device``) for reproducibility.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0; got {n!r}")
    q = torch.randn(n, 4, generator=generator, dtype=dtype, device=device)
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp_min(1e-12)
    return quaternion_to_rotation_matrix(q)  # kornia: (w, x, y, z)


def _skew(v: torch.Tensor) -> torch.Tensor:
    z = torch.zeros_like(v[..., 0])
    return torch.stack([torch.stack([z, -v[..., 2], v[..., 1]], -1),
                        torch.stack([v[..., 2], z, -v[..., 0]], -1),
                        torch.stack([-v[..., 1], v[..., 0], z], -1)], -2)


def _align_unit(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """R = I + [v]x + [v]x^2 / (1 + c) (Rodrigues with v = a x b, c = a . b); unit a, b.

    1 + c is computed as |a + b|^2 / 2, which keeps its relative accuracy as a -> -b (the
    dot product loses it to cancellation: 6 % at 1 + c = 1e-6 in float32)."""
    v = torch.linalg.cross(a, b, dim=-1)
    one_plus_c = 0.5 * ((a + b) ** 2).sum(-1)
    vx = _skew(v)
    eye = torch.eye(3, dtype=a.dtype, device=a.device).expand_as(vx)
    return eye + vx + (vx @ vx) / one_plus_c.clamp_min(_ANTIPARALLEL)[..., None, None]


def rotation_between(a: Any, b: Any) -> Any:
    """The minimal rotation R (..., 3, 3) with ``R @ a_hat == b_hat``.

    Args:
        a, b: (..., 3) non-zero vectors (normalised internally), leading dims broadcast.

    Returns:
        R: (..., 3, 3), rotating about ``a x b`` by the angle between a and b. For exactly
        opposite vectors every half-turn about an axis perpendicular to a is minimal: the axis
        is taken perpendicular to a and to the coordinate axis least aligned with a, and the
        result stays accurate (no 0/0) as a -> -b.
    """
    (x, y), numpy_out = as_tensors(a, b)
    check_shape("a", x, (3,))
    check_shape("b", y, (3,))
    check_finite("a", x)
    check_finite("b", y)
    nx = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    ny = torch.linalg.vector_norm(y, dim=-1, keepdim=True)
    if checks_enabled():
        for name, n in (("a", nx), ("b", ny)):
            if not bool(torch.all(n > 0)):
                raise ValueError(f"{name} must be non-zero vectors; got a zero-length vector")
    lead = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    x = (x / nx).expand(*lead, 3)
    y = (y / ny).expand(*lead, 3)
    direct = _align_unit(x, y)
    # Near-opposite: half-turn about u (u perpendicular to a) maps a to -a, then the
    # well-conditioned minimal rotation takes -a to b.
    e = torch.zeros_like(x)
    e.scatter_(-1, torch.argmin(x.abs(), dim=-1, keepdim=True), 1.0)
    u = torch.linalg.cross(x, e, dim=-1)
    u = u / torch.linalg.vector_norm(u, dim=-1, keepdim=True)
    half = 2.0 * u.unsqueeze(-1) * u.unsqueeze(-2) - torch.eye(3, dtype=x.dtype, device=x.device)
    opposite = _align_unit(-x, y) @ half
    near = 0.5 * ((x + y) ** 2).sum(-1) < _ANTIPARALLEL
    return finish(torch.where(near[..., None, None], opposite, direct), numpy_out)


def rotation_2d(angle: Any) -> Any:
    """Planar rotation matrices (..., 2, 2) ``[[cos, -sin], [sin, cos]]`` of ``angle`` (...,)
    radians. On image pixels (y down) a positive angle turns clockwise as displayed."""
    (t,), numpy_out = as_tensors(angle)
    check_finite("angle", t)
    c, s = torch.cos(t), torch.sin(t)
    return finish(torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2),
                  numpy_out)


def rotation_z(angle: Any) -> Any:
    """Rotation matrices (..., 3, 3) about the camera z axis (the optical axis) by ``angle``
    (...,) radians: the 3D counterpart of rotating the image by :func:`rotation_2d`."""
    (t,), numpy_out = as_tensors(angle)
    check_finite("angle", t)
    c, s = torch.cos(t), torch.sin(t)
    z, o = torch.zeros_like(t), torch.ones_like(t)
    R = torch.stack([torch.stack([c, -s, z], -1), torch.stack([s, c, z], -1),
                     torch.stack([z, z, o], -1)], -2)
    return finish(R, numpy_out)
