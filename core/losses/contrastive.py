"""Contrastive losses: NT-Xent (SimCLR) and its pose-equivariant version (PeCLR), METHODS §2.

NT-Xent over a batch of N pairs: the 2N x 2N cosine-similarity matrix of both views divided
by the temperature; for each of the 2N anchors the positive is its other view and the
denominator runs over all entries of its row except itself; the loss is the mean over the 2N
anchors of -log softmax at the positive.

PeCLR first undoes each view's geometric augmentation in the projection space: the 128-d
projection is read as 64 2D points (consecutive pairs: point k = (z[2k], z[2k+1])), then

1. translation: subtract (t_px / L) * (max - min over the points) per axis (range detached),
   where t_px is the image translation in view pixels and L the view side;
2. rotation: rotate the points by -angle about their (detached) centroid, with the image
   warp's rotation convention (:mod:`handpose.core.augment_geometric`);
3. flip (if a view was mirrored): mirror x about the centroid;

and flattens, L2-normalises and applies NT-Xent. Scale needs no inversion (cosine
similarity ignores it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["nt_xent", "invert_latent_transform", "peclr_loss"]


def _check_pair(z1: Tensor, z2: Tensor) -> None:
    if z1.dim() != 2 or z1.shape != z2.shape or z1.shape[0] < 2:
        raise ValueError(f"z1 and z2 must both have shape (N, D) with N >= 2; got "
                         f"{tuple(z1.shape)} and {tuple(z2.shape)}")


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """Normalised temperature-scaled cross entropy (SimCLR).

    Args:
        z1, z2: (N, D) projections of the two views (normalised here; any scale works).
        temperature: tau > 0 (0.5 as in PeCLR).

    Returns:
        scalar loss, the mean over the 2N anchors.
    """
    _check_pair(z1, z2)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], 0), dim=1)
    logits = z @ z.t() / temperature
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, target)


def _param(params: Any, name: str) -> Any:
    if isinstance(params, Mapping):
        return params.get(name)
    return getattr(params, name, None)


def invert_latent_transform(z: Tensor, angle: Tensor, translation: Tensor, size: float,
                            flip: Tensor | None = None) -> Tensor:
    """Undo a view's rotation, translation (and flip) on projections read as 2D points.

    Args:
        z: (B, D) projections, D even.
        angle: (B,) radians, the view's image rotation (counter-clockwise as displayed).
        translation: (B, 2) the view's image translation in view pixels.
        size: L, the view side in pixels.
        flip: optional (B,) bool, the view was mirrored horizontally.

    Returns:
        (B, D) inverted projections (not normalised).
    """
    b, d = z.shape
    if d % 2:
        raise ValueError(f"z must have an even dimension (pairs of 2D points); got {d}")
    if angle.shape != (b,) or translation.shape != (b, 2):
        raise ValueError(f"angle must be ({b},) and translation ({b}, 2); got "
                         f"{tuple(angle.shape)} and {tuple(translation.shape)}")
    if size <= 0:
        raise ValueError(f"size must be > 0 pixels; got {size}")
    p = z.view(b, d // 2, 2)
    det = p.detach()
    extent = det.amax(dim=1) - det.amin(dim=1)  # (B, 2)
    p = p - (translation.to(z) / size * extent).unsqueeze(1)
    centre = p.detach().mean(dim=1, keepdim=True)
    c, s = torch.cos(angle.to(z)), torch.sin(angle.to(z))
    # forward rotation R(a) = [[c, s], [-s, c]]; its inverse is R(a)^T, rows: q = p @ R(a)
    rot = torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)
    q = (p - centre) @ rot + centre
    if flip is not None:
        if flip.shape != (b,):
            raise ValueError(f"flip must be ({b},); got {tuple(flip.shape)}")
        sign = torch.where(flip.to(z.device).bool(), -1.0, 1.0).to(z)
        x = (q[..., 0] - centre[..., 0]) * sign[:, None] + centre[..., 0]
        q = torch.stack([x, q[..., 1]], -1)
    return q.reshape(b, d)


def peclr_loss(z1: Tensor, z2: Tensor, params1: Any, params2: Any,
               temperature: float = 0.5, size: float | None = None) -> Tensor:
    """PeCLR: NT-Xent on projections with each view's geometric augmentation undone.

    Args:
        z1, z2: (N, D) projections of the two views (D even; 128 in the paper).
        params1, params2: each view's geometry, a
            :class:`~handpose.core.augment_geometric.GeometricParams` or a mapping with
            ``angle`` (N,) radians, ``translation`` (N, 2) view pixels, optional ``flip``
            (N,) bool and ``out_size`` (H, W).
        temperature: NT-Xent temperature (0.5).
        size: view side L in pixels; default ``out_size`` of the params (their width).

    Returns:
        scalar loss.
    """
    _check_pair(z1, z2)
    out = []
    for z, prm in ((z1, params1), (z2, params2)):
        angle, tr = _param(prm, "angle"), _param(prm, "translation")
        if angle is None or tr is None:
            raise ValueError("params must provide 'angle' (N,) and 'translation' (N, 2); got "
                             f"{type(prm).__name__}")
        length = size
        if length is None:
            hw = _param(prm, "out_size")
            if hw is None:
                raise ValueError("give size= or params with 'out_size' (the view side L)")
            length = float(hw[1])
        out.append(F.normalize(
            invert_latent_transform(z, angle, tr, float(length), _param(prm, "flip")), dim=1))
    return nt_xent(out[0], out[1], temperature)
