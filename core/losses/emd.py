"""Earth mover's distance between equal-size point clouds (cross-modal VAE, dissertation eq. 5.8).

``EMD(P, Q) = min over bijections phi: P -> Q of 1/N sum_p |p - phi(p)|``.

The optimal bijection is found exactly on the detached distances by the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``, O(N^3) per cloud: fine for the 256-point clouds of
the VAE); the distance is then a differentiable function of the points with that assignment
held fixed, which is the gradient of the EMD wherever the optimal assignment is unique.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

__all__ = ["earth_movers_distance", "optimal_assignment"]


def optimal_assignment(a: Tensor, b: Tensor) -> Tensor:
    """Index of the partner in ``b`` of every point of ``a`` under the optimal bijection.

    Args:
        a, b: (B, N, D) clouds of equal size.
    Returns:
        (B, N) int64 on ``a``'s device: ``b[i, perm[i, k]]`` is matched with ``a[i, k]``.
    """
    if not isinstance(a, Tensor) or not isinstance(b, Tensor) or a.dim() != 3 or \
            a.shape != b.shape or a.shape[1] < 1:
        raise ValueError(f"a and b must be tensors of the same shape (B, N, D), N >= 1; got "
                         f"{tuple(getattr(a, 'shape', ()))} and {tuple(getattr(b, 'shape', ()))}")
    cost = torch.cdist(a.detach().double(), b.detach().double()).cpu().numpy()
    perm = np.empty(cost.shape[:2], np.int64)
    for i, c in enumerate(cost):
        rows, cols = linear_sum_assignment(c)
        perm[i, rows] = cols
    return torch.from_numpy(perm).to(a.device)


def earth_movers_distance(a: Tensor, b: Tensor, reduction: str = "none") -> Tensor:
    """Mean distance between matched points under the optimal bijection.

    Args:
        a, b: (B, N, D) clouds of equal size (same units).
        reduction: "none" -> (B,); "mean" -> scalar.
    Returns:
        (B,) or a scalar in the units of the points; differentiable in both clouds.
    """
    if reduction not in ("none", "mean"):
        raise ValueError(f"reduction must be 'none' or 'mean'; got {reduction!r}")
    perm = optimal_assignment(a, b)
    matched = torch.gather(b, 1, perm[..., None].expand_as(b))
    per = (a - matched).norm(dim=-1).mean(1)
    return per if reduction == "none" else per.mean()
