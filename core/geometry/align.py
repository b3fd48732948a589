"""Similarity (or rigid) Procrustes alignment of point sets, batched (Umeyama 1991).

Finds R (a proper rotation, det R = +1), s and t minimising
``sum_k |s R p_k + t - q_k|^2`` for prediction points p_k and target points q_k. Reflections are
never returned: the SVD solution is corrected by the sign of det(U V^T) (Umeyama's S matrix).
This is the alignment of the PA-EPE metric (METHODS 8). FreiHAND's evaluation script uses the
plain orthogonal Procrustes solution, which can return a reflection on degenerate or very bad
predictions; on everything else both agree.

Arrays: numpy in -> float64 numpy out; any torch tensor in -> tensors out (differentiable
through ``torch.linalg.svd`` where the singular values are distinct).
"""

from __future__ import annotations

from typing import Any

import torch

from ._arrays import as_tensors, check_finite, check_shape, finish

__all__ = ["procrustes", "procrustes_align"]

_EPS = 1e-12


def _procrustes(p: torch.Tensor, q: torch.Tensor, scale: bool) -> tuple[torch.Tensor, ...]:
    mu_p, mu_q = p.mean(-2, keepdim=True), q.mean(-2, keepdim=True)
    x, y = p - mu_p, q - mu_q
    cov = y.transpose(-1, -2) @ x / p.shape[-2]  # (..., 3, 3): target x prediction
    U, D, Vh = torch.linalg.svd(cov)
    sign = torch.sign(torch.linalg.det(U) * torch.linalg.det(Vh))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    S = torch.ones_like(D)
    S = torch.cat([S[..., :-1], sign.unsqueeze(-1)], -1)
    R = (U * S.unsqueeze(-2)) @ Vh
    if scale:
        var_p = (x * x).sum((-1, -2)) / p.shape[-2]
        s = (D * S).sum(-1) / var_p.clamp_min(_EPS)
    else:
        s = torch.ones_like(D[..., 0])
    t = mu_q.squeeze(-2) - s.unsqueeze(-1) * (R @ mu_p.squeeze(-2).unsqueeze(-1)).squeeze(-1)
    aligned = s[..., None, None] * (p @ R.transpose(-1, -2)) + t.unsqueeze(-2)
    return aligned, R, s, t


def procrustes(pred: Any, target: Any, scale: bool = True) -> tuple[Any, Any, Any, Any]:
    """Align ``pred`` to ``target`` per sample with a similarity (or rigid) transform.

    Args:
        pred: (..., N, D) points (D = 3 for joints; any D >= 2 works), N >= 1.
        target: (..., N, D) points, same shape (leading dims broadcast).
        scale: estimate the scale s (similarity); False fixes s = 1 (rigid).

    Returns:
        aligned: (..., N, D) = s * pred @ R^T + t; R: (..., D, D) with det R = +1;
        s: (...,); t: (..., D). Units of t and aligned are those of ``target``.
    """
    (p, q), numpy_out = as_tensors(pred, target)
    check_shape("pred", p, (None, None))
    check_shape("target", q, (None, None))
    if p.shape[-2:] != q.shape[-2:]:
        raise ValueError(f"pred and target must both be (..., N, D) with the same N and D; got "
                         f"{tuple(p.shape)} and {tuple(q.shape)}")
    if p.shape[-2] < 1:
        raise ValueError(f"pred must hold at least one point; got {tuple(p.shape)}")
    check_finite("pred", p)
    check_finite("target", q)
    lead = torch.broadcast_shapes(p.shape[:-2], q.shape[:-2])
    p = p.expand(*lead, *p.shape[-2:])
    q = q.expand(*lead, *q.shape[-2:])
    out = _procrustes(p, q, scale)
    return tuple(finish(o, numpy_out) for o in out)  # type: ignore[return-value]


def procrustes_align(pred: Any, target: Any, scale: bool = True) -> Any:
    """``pred`` (..., N, D) aligned to ``target`` (..., N, D) (see :func:`procrustes`)."""
    return procrustes(pred, target, scale)[0]
