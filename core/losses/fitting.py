"""Model-fitting energies: the sphere model against depth (Wan et al. 2019, METHODS §6) and the
circle model against a hand mask (SemiHand's cross-modal consistency, METHODS §4).

All are pure functions of tensors, differentiable in the model's parameters (sphere centres,
radii, circle centres, radii) and batched over a leading dimension ``B``. ``reduction="mean"``
returns the mean over the batch (a scalar), ``"none"`` the per-sample values (B,) so callers
can weight samples (e.g. by pseudo-label confidence). Units: metres for the depth terms,
pixels for the mask terms.
"""

from __future__ import annotations

import torch

from ..render_mask import render_circle_mask
from ..skeleton import BONES
from ..spheres import collision_pairs

__all__ = [
    "model_to_data",
    "data_to_model",
    "collision",
    "bone_length_band",
    "multiview_consistency",
    "mask_to_circles",
    "circles_to_mask",
]

_EPS = 1e-9  # metres or pixels: sqrt(|x|^2 + eps^2) keeps gradients finite at 0


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction must be 'mean' or 'none'; got {reduction!r}")


def _tensor(x: object, name: str, shape: str, ndim: int | None = None,
            last: tuple[int, ...] = ()) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a tensor {shape}; got {type(x).__name__}")
    if (ndim is not None and x.ndim != ndim) or tuple(x.shape[x.ndim - len(last):]) != last:
        raise ValueError(f"{name} must have shape {shape}; got {tuple(x.shape)}")
    return x


def _radii(radii: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    n = centres.shape[-2]
    batch = tuple(centres.shape[:-2])
    if not isinstance(radii, torch.Tensor) or tuple(radii.shape) not in ((n,), (*batch, n)):
        raise ValueError(f"radii must have shape {(*batch, n)} or ({n},); "
                         f"got {tuple(getattr(radii, 'shape', ()))}")
    return radii.to(centres.dtype).expand(*batch, n)


def model_to_data(
    rendered_depth: torch.Tensor,
    observed_depth: torch.Tensor,
    valid_mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """L_m2d: mean absolute depth difference over the valid pixels of each image.

    Background pixels of the observed depth should hold the renderer's ``far`` value; holes
    (no sensor reading) are excluded by ``valid_mask``. L1 keeps the term robust to them.

    Args:
        rendered_depth: (B, H, W) metres (e.g. from :func:`handpose.core.render.
            render_depth_orthographic`).
        observed_depth: (B, H, W) metres.
        valid_mask: (B, H, W) bool or weights in [0, 1]; ``None``: ``observed_depth > 0``.
        reduction: ``"mean"`` or ``"none"`` (per image; an image without valid pixels gives 0).
    Returns:
        metres: a scalar, or (B,) for ``"none"``.
    """
    _tensor(rendered_depth, "rendered_depth", "(B, H, W)", 3)
    if not isinstance(observed_depth, torch.Tensor) or observed_depth.shape != rendered_depth.shape:
        raise ValueError(f"observed_depth must have the shape of rendered_depth "
                         f"{tuple(rendered_depth.shape)}; got "
                         f"{tuple(getattr(observed_depth, 'shape', ()))}")
    if valid_mask is None:
        valid_mask = observed_depth > 0
    elif not isinstance(valid_mask, torch.Tensor) or valid_mask.shape != rendered_depth.shape:
        raise ValueError(f"valid_mask must have shape {tuple(rendered_depth.shape)}; got "
                         f"{tuple(getattr(valid_mask, 'shape', ()))}")
    weight = valid_mask.to(rendered_depth.dtype)
    diff = (rendered_depth - observed_depth.to(rendered_depth.dtype)).abs() * weight
    per_image = diff.sum(dim=(1, 2)) / weight.sum(dim=(1, 2)).clamp(min=1.0)
    return _reduce(per_image, reduction)


def data_to_model(
    points: torch.Tensor,
    centres: torch.Tensor,
    radii: torch.Tensor,
    point_mask: torch.Tensor | None = None,
    max_distance: float = 0.03,
    reduction: str = "mean",
) -> torch.Tensor:
    """L_d2m: mean over observed points of the distance to the nearest sphere surface.

    ``min_j | |p - c_j| - r_j |``, clamped at ``max_distance`` (a *(choose)* value, 3 cm) so
    stray points (background, forearm) add a constant instead of dragging the model.

    Args:
        points: (B, M, 3) metres, the depth map's points (same frame as the centres).
        centres: (B, N, 3) metres; radii: (B, N) or (N,) metres.
        point_mask: (B, M) bool or weights; ``None``: all points count.
        max_distance: metres.
        reduction: ``"mean"`` or ``"none"`` (per sample; a sample without points gives 0).
    Returns:
        metres: a scalar, or (B,).
    """
    _tensor(points, "points", "(B, M, 3) metres", 3, (3,))
    _tensor(centres, "centres", "(B, N, 3) metres", 3, (3,))
    if points.shape[0] != centres.shape[0]:
        raise ValueError(f"points and centres must share the batch size; got "
                         f"{points.shape[0]} and {centres.shape[0]}")
    radii = _radii(radii, centres)
    if point_mask is None:
        weight = points.new_ones(points.shape[:2])
    elif not isinstance(point_mask, torch.Tensor) or point_mask.shape != points.shape[:2]:
        raise ValueError(f"point_mask must have shape {tuple(points.shape[:2])}; got "
                         f"{tuple(getattr(point_mask, 'shape', ()))}")
    else:
        weight = point_mask.to(points.dtype)
    if not max_distance > 0:
        raise ValueError(f"max_distance must be positive; got {max_distance}")
    diff = points[:, :, None, :] - centres[:, None, :, :]
    dist = torch.sqrt((diff * diff).sum(-1) + _EPS**2)
    surface = (dist - radii[:, None, :]).abs().min(dim=-1).values.clamp(max=max_distance)
    per_sample = (surface * weight).sum(1) / weight.sum(1).clamp(min=1e-12)
    return _reduce(per_sample, reduction)


def collision(
    centres: torch.Tensor,
    radii: torch.Tensor,
    pairs: torch.Tensor | None = None,
    margin: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Collision energy: ``sum over pairs (j, k) of max(r_j + r_k - margin - |c_j - c_k|, 0)``.

    Wan et al. eq. 16 (with the distance, not its square, so the terms are in metres).
    Labelled real poses are not collision-free under the sphere model: touching fingers and
    a fist's fingertips on the palm overlap by a few mm (summed over the pairs, the shipped
    model gives a median of 7 mm and a 90th percentile of 25 mm on real_eval_hgc's labels,
    0 to 53 mm on real_rgbd's); ``margin`` tolerates such overlap per pair.

    Args:
        centres: (B, 41, 3) metres; radii: (B, 41) or (41,) metres.
        pairs: (P, 2) sphere indices; ``None``: :func:`handpose.core.spheres.collision_pairs`
            (spheres of different fingers / the palm).
        margin: overlap allowed per pair before it costs, metres (0: the paper's term).
        reduction: ``"mean"`` or ``"none"``.
    Returns:
        metres (summed over pairs): a scalar, or (B,).
    """
    _tensor(centres, "centres", "(B, N, 3) metres", 3, (3,))
    radii = _radii(radii, centres)
    if pairs is None:
        pairs = collision_pairs()
    if not isinstance(pairs, torch.Tensor) or pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must be an int tensor (P, 2); got "
                         f"{tuple(getattr(pairs, 'shape', ()))}")
    pairs = pairs.to(device=centres.device, dtype=torch.int64)
    if pairs.numel() and (int(pairs.min()) < 0 or int(pairs.max()) >= centres.shape[1]):
        raise ValueError(f"pairs index spheres outside 0..{centres.shape[1] - 1}")
    j, k = pairs[:, 0], pairs[:, 1]
    diff = centres[:, j] - centres[:, k]
    dist = torch.sqrt((diff * diff).sum(-1) + _EPS**2)
    overlap = torch.relu(radii[:, j] + radii[:, k] - margin - dist)
    return _reduce(overlap.sum(-1), reduction)


def bone_length_band(
    points: torch.Tensor,
    reference_lengths: torch.Tensor,
    pairs: torch.Tensor | None = None,
    lo: float = 0.80,
    hi: float = 1.05,
    reduction: str = "mean",
) -> torch.Tensor:
    """Bone-length prior: ``sum_e max(lo L_e - d_e, 0)^2 + max(d_e - hi L_e, 0)^2``.

    ``d_e`` is the distance between the two points of edge ``e`` and ``L_e`` its reference
    length (Wan et al. eq. 14, band ``[0.80, 1.05] x reference`` from METHODS §6).

    Args:
        points: (B, P, 3) metres: joints (P = 21) or sphere centres.
        reference_lengths: (E,) or (B, E) metres.
        pairs: (E, 2) point indices; ``None``: the 20 bones of the skeleton (needs P = 21).
        lo, hi: the band, as fractions of the reference.
        reduction: ``"mean"`` or ``"none"``.
    Returns:
        square metres (summed over edges): a scalar, or (B,).
    """
    _tensor(points, "points", "(B, P, 3) metres", 3, (3,))
    if pairs is None:
        if points.shape[1] != 21:
            raise ValueError(f"pairs are required unless points are 21 joints; got "
                             f"{points.shape[1]} points")
        pairs = torch.tensor(BONES, dtype=torch.int64)
    if not isinstance(pairs, torch.Tensor) or pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must be an int tensor (E, 2); got "
                         f"{tuple(getattr(pairs, 'shape', ()))}")
    e = pairs.shape[0]
    if not isinstance(reference_lengths, torch.Tensor) or tuple(reference_lengths.shape) not in (
        (e,), (points.shape[0], e)
    ):
        raise ValueError(f"reference_lengths must have shape ({e},) or ({points.shape[0]}, {e})"
                         f" metres; got {tuple(getattr(reference_lengths, 'shape', ()))}")
    if not 0 < lo <= hi:
        raise ValueError(f"need 0 < lo <= hi; got lo={lo}, hi={hi}")
    pairs = pairs.to(device=points.device, dtype=torch.int64)
    ref = reference_lengths.to(points.dtype)
    diff = points[:, pairs[:, 1]] - points[:, pairs[:, 0]]
    d = torch.sqrt((diff * diff).sum(-1) + _EPS**2)
    penalty = torch.relu(lo * ref - d) ** 2 + torch.relu(d - hi * ref) ** 2
    return _reduce(penalty.sum(-1), reduction)


def multiview_consistency(
    centres_per_view: torch.Tensor,
    extrinsics: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-view term: each view's spheres pulled to the per-sphere median across views.

    Each view's centres are mapped to the canonical frame (``x_c = R x + t`` with
    ``extrinsics[v] = [[R, t], [0, 1]]``, view -> canonical), the target is the coordinate-wise
    median over views (``torch.quantile(.., 0.5)``: with an even number of views the mean of
    the two middle ones), held fixed (stop-gradient) as in Wan et al. eq. 12; the energy is
    ``sum_v sum_j |x_c(v, j) - median_j|^2``. With 2 views the median is the mean (Wan et al.
    use 3 or more).

    Args:
        centres_per_view: (V, B, N, 3) metres, V >= 2.
        extrinsics: (V, 4, 4) or (V, B, 4, 4) view -> canonical; ``None``: the centres are
            already in one frame.
        reduction: ``"mean"`` or ``"none"``.
    Returns:
        square metres (summed over views and spheres): a scalar, or (B,).
    """
    _tensor(centres_per_view, "centres_per_view", "(V, B, N, 3) metres", 4, (3,))
    v, b = centres_per_view.shape[:2]
    if v < 2:
        raise ValueError(f"centres_per_view needs at least 2 views; got {v}")
    x = centres_per_view
    if extrinsics is not None:
        if not isinstance(extrinsics, torch.Tensor) or tuple(extrinsics.shape) not in (
            (v, 4, 4), (v, b, 4, 4)
        ):
            raise ValueError(f"extrinsics must have shape ({v}, 4, 4) or ({v}, {b}, 4, 4); "
                             f"got {tuple(getattr(extrinsics, 'shape', ()))}")
        t = extrinsics.to(x.dtype)
        if t.ndim == 3:
            t = t[:, None]
        x = x @ t[..., :3, :3].transpose(-1, -2) + t[..., None, :3, 3]
    with torch.no_grad():
        target = torch.quantile(x, 0.5, dim=0)
    err = ((x - target) ** 2).sum(-1)  # (V, B, N)
    return _reduce(err.sum(dim=(0, 2)), reduction)


def _check_mask_inputs(centres: torch.Tensor, radii: torch.Tensor, mask: torch.Tensor) -> None:
    _tensor(centres, "centres", "(B, N, 2) pixels", 3, (2,))
    _radii(radii, centres)
    if not isinstance(mask, torch.Tensor) or mask.ndim != 3 or mask.shape[0] != centres.shape[0]:
        raise ValueError(f"mask must have shape ({centres.shape[0]}, H, W); got "
                         f"{tuple(getattr(mask, 'shape', ()))}")


def mask_to_circles(
    centres: torch.Tensor,
    radii: torch.Tensor,
    mask: torch.Tensor,
    sharpness: float = 0.5,
    temperature: float = 0.5,
    reduction: str = "mean",
) -> torch.Tensor:
    """SemiHand's L_m2d: ``mean_g |render(circles)(g) - stop_grad(mask)(g)|``.

    Args:
        centres: (B, 55, 2) pixels, radii (B, 55) or (55,) pixels, in the mask's pixel grid
            (pixel ``(i, j)`` centred at ``(u, v) = (j, i)``).
        mask: (B, H, W) in [0, 1] (e.g. the network's predicted mask); detached here.
        sharpness, temperature: of :func:`handpose.core.render.render_circle_mask`.
        reduction: ``"mean"`` or ``"none"``.
    Returns:
        unitless mean over pixels: a scalar, or (B,).
    """
    _check_mask_inputs(centres, radii, mask)
    size = (int(mask.shape[1]), int(mask.shape[2]))
    rendered = render_circle_mask(centres, radii, size, sharpness=sharpness,
                                  temperature=temperature)
    diff = (rendered - mask.detach().to(rendered.dtype)).abs()
    return _reduce(diff.mean(dim=(1, 2)), reduction)


def circles_to_mask(
    centres: torch.Tensor,
    radii: torch.Tensor,
    mask: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    """SemiHand's L_d2m: the registration error of the circles against a mask.

    With ``d(g) = min_i (|g - c_i| - r_i)``: a mask pixel outside all circles costs
    ``max(d, 0)`` (its distance to the nearest circle), a background pixel inside some circle
    costs ``max(max_i (r_i - |g - c_i|), 0) = max(-d, 0)`` (its depth inside the deepest
    circle). A soft mask ``w`` in [0, 1] weights the two: ``w max(d, 0) + (1 - w) max(-d, 0)``.
    The mask is detached (stop-gradient). Evaluated densely (B x H*W x N distances).

    Args:
        centres: (B, 55, 2) pixels, radii (B, 55) or (55,) pixels.
        mask: (B, H, W) in [0, 1].
        reduction: ``"mean"`` or ``"none"``.
    Returns:
        pixels, mean over the image's pixels: a scalar, or (B,).
    """
    _check_mask_inputs(centres, radii, mask)
    radii = _radii(radii, centres)
    bsz, h, w = mask.shape
    dtype = centres.dtype
    gv, gu = torch.meshgrid(torch.arange(h, dtype=dtype, device=centres.device),
                            torch.arange(w, dtype=dtype, device=centres.device), indexing="ij")
    du = gu.reshape(1, -1, 1) - centres[:, None, :, 0]
    dv = gv.reshape(1, -1, 1) - centres[:, None, :, 1]
    d = (torch.sqrt(du * du + dv * dv + _EPS**2) - radii[:, None, :]).min(dim=-1).values
    wgt = mask.detach().to(dtype).reshape(bsz, -1)
    cost = wgt * torch.relu(d) + (1.0 - wgt) * torch.relu(-d)
    return _reduce(cost.mean(dim=1), reduction)
