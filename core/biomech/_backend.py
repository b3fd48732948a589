"""Array operations shared by the numpy and torch code paths of ``handpose.core.biomech``.

Every biomechanical formula is written once against these helpers: numpy arrays stay numpy
(fast for the per-frame correction), torch tensors stay torch (differentiable for the losses).
The torch versions are *safe*: a zero-length vector or an undefined angle gives a finite value
and a finite (zero) gradient instead of NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "Array",
    "EPS",
    "is_torch",
    "atan2",
    "sqrt",
    "norm",
    "normalise",
    "cross",
    "dot",
    "stack",
    "cat",
    "clip",
    "where",
    "cos",
    "sin",
    "matvec",
    "matTvec",
    "relu",
]

Array = Any  # numpy.ndarray or torch.Tensor; each function returns the type it was given
#: Length below which a vector counts as zero (applied to squared lengths as EPS**2).
EPS = 1e-12
_TINY = 1e-30


def is_torch(x: Array) -> bool:
    return isinstance(x, torch.Tensor)


def atan2(y: Array, x: Array) -> Array:
    """Elementwise atan2(y, x); 0 (with zero gradient) where x = y = 0."""
    if is_torch(y):
        small = x * x + y * y < _TINY
        xs = torch.where(small, torch.ones_like(x), x)
        return torch.where(small, torch.zeros_like(x), torch.atan2(y, xs))
    return np.arctan2(y, x)


def sqrt(x: Array, eps: float = EPS) -> Array:
    """sqrt(max(x, eps**2)): finite value and gradient at 0."""
    if is_torch(x):
        return torch.sqrt(torch.clamp(x, min=eps * eps))
    return np.sqrt(np.maximum(x, eps * eps))  # np.maximum: much cheaper than np.clip


def dot(a: Array, b: Array) -> Array:
    """(..., 3) . (..., 3) -> (...) (broadcasting)."""
    if is_torch(a) or is_torch(b):
        return (a * b).sum(-1)
    return np.einsum("...i,...i->...", a, b)


def norm(v: Array, eps: float = EPS) -> Array:
    """Euclidean norm over the last axis, at least ``eps`` (safe gradient)."""
    return sqrt(dot(v, v), eps)


def normalise(v: Array, eps: float = EPS) -> Array:
    """v / |v| over the last axis; a zero vector stays (almost) zero, never NaN."""
    return v / norm(v, eps)[..., None]


def stack(xs: Sequence[Array], axis: int) -> Array:
    if is_torch(xs[0]):
        return torch.stack(list(xs), axis)
    return np.stack(xs, axis)


def cat(xs: Sequence[Array], axis: int) -> Array:
    if is_torch(xs[0]):
        return torch.cat(list(xs), axis)
    return np.concatenate(xs, axis)


_I1 = np.array([1, 2, 0])
_I2 = np.array([2, 0, 1])


def cross(a: Array, b: Array) -> Array:
    """Cross product over the last axis (broadcasting)."""
    if is_torch(a) or is_torch(b):
        a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
        b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
        return torch.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)
    return np.take(a, _I1, -1) * np.take(b, _I2, -1) - np.take(a, _I2, -1) * np.take(b, _I1, -1)


def clip(x: Array, lo: Array, hi: Array) -> Array:
    """Elementwise clamp into [lo, hi] (arrays or numbers, broadcasting)."""
    if is_torch(x):
        lo_t = torch.as_tensor(lo, dtype=x.dtype, device=x.device)
        hi_t = torch.as_tensor(hi, dtype=x.dtype, device=x.device)
        return torch.minimum(torch.maximum(x, lo_t), hi_t)
    return np.minimum(np.maximum(x, lo), hi)


def relu(x: Array) -> Array:
    if is_torch(x):
        return torch.clamp(x, min=0.0)
    return np.maximum(x, 0.0)


def where(cond: Array, a: Array, b: Array) -> Array:
    if is_torch(a) or is_torch(b):
        return torch.where(cond, a, b)
    return np.where(cond, a, b)


def cos(x: Array) -> Array:
    return torch.cos(x) if is_torch(x) else np.cos(x)


def sin(x: Array) -> Array:
    return torch.sin(x) if is_torch(x) else np.sin(x)


def matvec(m: Array, v: Array) -> Array:
    """(..., 3, 3) @ (..., 3) -> (..., 3)."""
    if is_torch(m):
        return (m * v[..., None, :]).sum(-1)
    return np.einsum("...ij,...j->...i", m, v)


def matTvec(m: Array, v: Array) -> Array:  # noqa: N802 - the transpose in the name
    """(..., 3, 3)^T @ (..., 3) -> (..., 3)."""
    if is_torch(m):
        return (m * v[..., :, None]).sum(-2)
    return np.einsum("...ji,...j->...i", m, v)
