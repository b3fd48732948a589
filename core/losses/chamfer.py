"""Chamfer distance between point clouds (the point-cloud loss of the cross-modal VAE, METHODS §7).

For clouds P (N points) and Q (M points) the symmetric Chamfer distance of the dissertation
(eq. 5.7) is::

    CD(P, Q) = 1/N sum_{p in P} min_{q in Q} |p - q|  +  1/M sum_{q in Q} min_{p in P} |p - q|

(``squared=True`` uses squared distances instead, the common variant of point-set
generation networks). Units are those of the points (metres, or reference bones).

:func:`chamfer_distance` is the differentiable, batched torch version: exact pairwise
distances (no |a|^2 + |b|^2 - 2ab shortcut, so small distances between points far from the
origin stay accurate), computed in chunks of rows so memory stays bounded for large clouds.
:func:`chamfer_distance_kdtree` is the non-differentiable evaluation version for large clouds
(scipy's cKDTree, O((N + M) log) instead of O(N M)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

__all__ = ["chamfer_distance", "nearest_distances", "chamfer_distance_kdtree"]

#: Rows of the distance matrix computed at once (per batch element) by :func:`nearest_distances`.
_CHUNK = 4096


def _check_clouds(a: Any, b: Any) -> None:
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[1] < 1 or x.shape[2] < 1:
            raise ValueError(f"{name} must be a tensor (B, N, D) with N >= 1 points; got "
                             f"{tuple(getattr(x, 'shape', ())) or type(x).__name__}")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
        raise ValueError(f"a and b must have the same batch and point dimension; got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")


def nearest_distances(a: Tensor, b: Tensor, squared: bool = False) -> Tensor:
    """For every point of ``a``, the distance to its nearest point of ``b``.

    Args:
        a: (B, N, D) points. b: (B, M, D) points (same units).
        squared: return squared distances.
    Returns:
        (B, N) distances (differentiable with respect to both clouds).
    """
    _check_clouds(a, b)
    parts = []
    for i in range(0, a.shape[1], _CHUNK):
        diff = a[:, i:i + _CHUNK, None, :] - b[:, None, :, :]  # (B, n, M, D)
        parts.append((diff * diff).sum(-1).amin(dim=2))
    d2 = torch.cat(parts, dim=1)
    if squared:
        return d2
    # sqrt has an infinite derivative at 0; the clamp gives coincident points a zero gradient
    return torch.sqrt(d2.clamp_min(torch.finfo(d2.dtype).tiny)) * (d2 > 0)


def chamfer_distance(a: Tensor, b: Tensor, *, squared: bool = False, reduction: str = "none"
                     ) -> Tensor:
    """Symmetric Chamfer distance of batched point clouds (module docstring).

    Args:
        a: (B, N, D) points; b: (B, M, D) points (N and M may differ).
        squared: use squared distances.
        reduction: "none" -> (B,) per pair of clouds; "mean" -> the batch mean (scalar).
    Returns:
        (B,) or a scalar, in the units of the points (squared units with ``squared``).
    Raises:
        ValueError: shapes that do not match, an unknown reduction.
    """
    if reduction not in ("none", "mean"):
        raise ValueError(f"reduction must be 'none' or 'mean'; got {reduction!r}")
    per = nearest_distances(a, b, squared).mean(1) + nearest_distances(b, a, squared).mean(1)
    return per if reduction == "none" else per.mean()


def chamfer_distance_kdtree(a: Any, b: Any, squared: bool = False) -> float:
    """The same distance for two single large clouds, with KD-trees (not differentiable).

    Args:
        a: (N, D) array-like points; b: (M, D) (numpy or CPU tensors).
        squared: use squared distances.
    Returns:
        the Chamfer distance as a float, in the units of the points.
    """
    pa = np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=np.float64)
    pb = np.asarray(b.detach().cpu() if isinstance(b, Tensor) else b, dtype=np.float64)
    if pa.ndim != 2 or pb.ndim != 2 or pa.shape[1] != pb.shape[1] or not len(pa) or not len(pb):
        raise ValueError(f"a and b must be non-empty (N, D) and (M, D) point arrays; got "
                         f"{pa.shape} and {pb.shape}")
    da, _ = cKDTree(pb).query(pa)
    db, _ = cKDTree(pa).query(pb)
    if squared:
        da, db = da ** 2, db ** 2
    return float(da.mean() + db.mean())
