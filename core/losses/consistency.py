"""SemiHand's pose distance, view consistency, pseudo-label confidence and update (METHODS §4).

**The pose distance** of Yang et al. (ICCV 2021, eq. 6.2 of the dissertation)::

    l(p1, p2) = |uv1 - uv2|^2 + lambda_d |d1 - d2|^2,   lambda_d = 50

is computed per sample as the MEAN over the 21 joints of the squared 2D distance plus
``lambda_d`` times the squared depth difference, with

- ``uv`` in pixels of a ``uv_grid`` x ``uv_grid`` image (default 64: the paper's input and
  output resolution): crop pixels are multiplied by ``uv_grid / crop_size`` first, so the
  distance does not depend on the network's input size;
- ``d`` the 2.5D ``z_rel`` (root-relative depth / reference bone length, unitless).

These are the units in which the paper's threshold ``tau = 1.5`` is meaningful: a confidence
``C <= 1.5`` allows a root-mean-square 2D disagreement of about 1.2 px on the 64-px grid
(1.9 % of the crop side, 2.4 px on a 128-px crop) when the depths agree, and a z_rel
disagreement of ``sqrt(1.5 / 50) = 0.17`` reference bones (about 5 mm) when the 2D points
agree. (Summing over the joints instead would make 1.5 a 0.27 px RMS tolerance, which no
prediction meets; metric depths in metres would make ``lambda_d`` irrelevant.)

**View consistency** ``l(f(T(x)), T(f(x)))``: an image-plane affine ``T`` (rotation,
translation, scale; the (B, 2, 3) matrices of :mod:`handpose.core.augment`) moves the 2D
joints and leaves ``z_rel`` unchanged (it is root-relative and scale-normalised). The target
``T(f(x))`` is detached by default (the prediction on the un-perturbed view teaches the one
on the perturbed view, as FixMatch; the paper leaves it open). Masks: L1 between the mask
predicted on ``T(x)`` and the warped mask predicted on ``x``.

**Confidence** ``C(p^) = l(T(p^), f(T(x))) + l(p^, P(p^))`` (eq. 6.8) and the **update**
``p^ = argmin l(p', p^) + l(r', p^) = (p' + r') / 2`` (eq. 6.7: ``l`` is a weighted sum of
squares, so the minimiser is the mean). The pose registration ``P`` of 2.5D labels is
:func:`~.pose_registration.correct_pose_25d` (re-exported here).
"""

from __future__ import annotations

import torch

from ..augment_geometric import transform_points, warp_images
from ..skeleton import NUM_JOINTS
from .pose_registration import MIN_ROOT_DEPTH, Corrected25D, correct_pose_25d

__all__ = [
    "LAMBDA_D",
    "UV_GRID",
    "TAU",
    "MIN_ROOT_DEPTH",
    "pose_distance",
    "transform_pose",
    "rescale_affine",
    "view_consistency",
    "pseudo_label_confidence",
    "update_pseudo_labels",
    "Corrected25D",
    "correct_pose_25d",
]

#: Weight of the depth term of the pose distance (the paper's lambda_d).
LAMBDA_D = 50.0
#: Side in pixels of the grid the 2D term is measured on (the paper's 64 x 64 input).
UV_GRID = 64.0
#: Confidence threshold of the pseudo-labels (the paper's tau), in the units of
#: :func:`pose_distance`.
TAU = 1.5


def _check_pose(uv: torch.Tensor, z: torch.Tensor, name: str) -> None:
    if not isinstance(uv, torch.Tensor) or uv.ndim != 3 or tuple(uv.shape[1:]) != (NUM_JOINTS, 2):
        raise ValueError(f"{name}_uv must be a tensor (B, 21, 2) pixels; got "
                         f"{tuple(getattr(uv, 'shape', ()))}")
    if not isinstance(z, torch.Tensor) or tuple(z.shape) != tuple(uv.shape[:2]):
        raise ValueError(f"{name}_z must be a tensor ({uv.shape[0]}, 21) (z_rel); got "
                         f"{tuple(getattr(z, 'shape', ()))}")


def _check_matrix(matrix: torch.Tensor, b: int) -> None:
    if not isinstance(matrix, torch.Tensor) or tuple(matrix.shape) != (b, 2, 3):
        raise ValueError(f"matrix must be a tensor ({b}, 2, 3) (crop pixels -> perturbed "
                         f"pixels); got {tuple(getattr(matrix, 'shape', ()))}")


def pose_distance(
    uv1: torch.Tensor,
    z1: torch.Tensor,
    uv2: torch.Tensor,
    z2: torch.Tensor,
    crop_size: float,
    *,
    lambda_d: float = LAMBDA_D,
    uv_grid: float = UV_GRID,
    joint_mask: torch.Tensor | None = None,
    reduction: str = "none",
) -> torch.Tensor:
    """SemiHand's l(p1, p2) in the units of the module docstring.

    Args:
        uv1, uv2: (B, 21, 2) crop pixels. z1, z2: (B, 21) z_rel (unitless).
        crop_size: side of the crop the pixels refer to (> 0).
        lambda_d: weight of the depth term (50).
        uv_grid: the 2D term is measured in pixels of a ``uv_grid``-pixel crop (64).
        joint_mask: optional (B, 21) bool/weights: the mean runs over these joints only
            (a sample without any gives 0).
        reduction: ``"none"`` (B,) or ``"mean"`` (scalar).
    Returns:
        (B,) or a scalar: mean over joints of ``|duv|^2 (grid px^2) + lambda_d dz^2``.
    Raises:
        ValueError: shapes, a non-positive crop size or grid, an unknown reduction.
    """
    _check_pose(uv1, z1, "p1")
    _check_pose(uv2, z2, "p2")
    if uv1.shape != uv2.shape:
        raise ValueError(f"p1 and p2 must have the same batch; got {tuple(uv1.shape)} and "
                         f"{tuple(uv2.shape)}")
    if not crop_size > 0 or not uv_grid > 0 or lambda_d < 0:
        raise ValueError(f"crop_size and uv_grid must be > 0 and lambda_d >= 0; got "
                         f"{crop_size}, {uv_grid}, {lambda_d}")
    k = uv_grid / float(crop_size)
    per_joint = ((uv1 - uv2) ** 2).sum(-1) * (k * k) + lambda_d * (z1 - z2) ** 2
    if joint_mask is None:
        per_sample = per_joint.mean(-1)
    else:
        if tuple(joint_mask.shape) != tuple(per_joint.shape):
            raise ValueError(f"joint_mask must have shape {tuple(per_joint.shape)}; got "
                             f"{tuple(joint_mask.shape)}")
        m = joint_mask.to(per_joint.dtype)
        per_sample = (per_joint * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    if reduction == "none":
        return per_sample
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"reduction must be 'none' or 'mean'; got {reduction!r}")


def transform_pose(uv: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """T(p) for the 2D part: (B, 21, 2) pixels through (B, 2, 3) affines (z_rel unchanged)."""
    _check_matrix(matrix, uv.shape[0] if isinstance(uv, torch.Tensor) and uv.ndim else -1)
    return transform_points(uv, matrix)


def rescale_affine(matrix: torch.Tensor, from_size: float, to_size: float) -> torch.Tensor:
    """The same image transform expressed on a grid of another resolution.

    Both grids cover the same square with pixel centres at integers (``x_to = a x_from + b``,
    ``a = to / from``, ``b = (a - 1) / 2``), e.g. crop pixels -> pixels of a (S/4)-side mask.

    Args:
        matrix: (B, 2, 3) affines in ``from_size`` pixels.
        from_size, to_size: grid sides (> 0).
    Returns:
        (B, 2, 3) affines in ``to_size`` pixels.
    """
    if not isinstance(matrix, torch.Tensor) or matrix.ndim != 3 or matrix.shape[1:] != (2, 3):
        raise ValueError(f"matrix must be a tensor (B, 2, 3); got "
                         f"{tuple(getattr(matrix, 'shape', ()))}")
    if not from_size > 0 or not to_size > 0:
        raise ValueError(f"grid sizes must be > 0; got {from_size}, {to_size}")
    a = float(to_size) / float(from_size)
    b = 0.5 * (a - 1.0)
    lin = matrix[:, :, :2]
    # x_to' = a (L x_from + t) + b with x_from = (x_to - b) / a
    t = a * matrix[:, :, 2] + b - lin.sum(-1) * b
    return torch.cat([lin, t.unsqueeze(-1)], -1)


def view_consistency(
    pred_t_uv: torch.Tensor,
    pred_t_z: torch.Tensor,
    pred_uv: torch.Tensor,
    pred_z: torch.Tensor,
    matrix: torch.Tensor,
    crop_size: float,
    *,
    pred_t_mask: torch.Tensor | None = None,
    pred_mask: torch.Tensor | None = None,
    detach_target: bool = True,
    lambda_d: float = LAMBDA_D,
    uv_grid: float = UV_GRID,
) -> dict[str, torch.Tensor]:
    """L_vc = l(f(T(x)), T(f(x))) + |w(T(x)) - T(w(x))|_1, per sample.

    Args:
        pred_t_uv, pred_t_z: prediction on the perturbed images T(x): (B, 21, 2) px, (B, 21).
        pred_uv, pred_z: prediction on the un-perturbed images x.
        matrix: (B, 2, 3) the perturbation T, crop pixels of x -> crop pixels of T(x).
        crop_size: side of both crops in pixels.
        pred_t_mask, pred_mask: optional (B, h, w) masks in [0, 1] predicted on T(x) and x
            (any square resolution covering the crop); both or neither.
        detach_target: stop the gradient through the prediction on x.
        lambda_d, uv_grid: of :func:`pose_distance`.
    Returns:
        dict "pose" (B,) and, with masks, "mask" (B,) (mean absolute difference per pixel).
    """
    _check_pose(pred_t_uv, pred_t_z, "pred_t")
    _check_pose(pred_uv, pred_z, "pred")
    _check_matrix(matrix, pred_uv.shape[0])
    tgt_uv, tgt_z = transform_points(pred_uv, matrix), pred_z
    if detach_target:
        tgt_uv, tgt_z = tgt_uv.detach(), tgt_z.detach()
    out = {"pose": pose_distance(pred_t_uv, pred_t_z, tgt_uv, tgt_z, crop_size,
                                 lambda_d=lambda_d, uv_grid=uv_grid)}
    if (pred_t_mask is None) != (pred_mask is None):
        raise ValueError("give both pred_t_mask and pred_mask, or neither")
    if pred_t_mask is not None and pred_mask is not None:
        b = pred_uv.shape[0]
        if pred_mask.ndim != 3 or pred_mask.shape[0] != b or pred_t_mask.shape != pred_mask.shape \
                or pred_mask.shape[1] != pred_mask.shape[2]:
            raise ValueError(f"pred_t_mask and pred_mask must both be ({b}, h, h); got "
                             f"{tuple(pred_t_mask.shape)} and {tuple(pred_mask.shape)}")
        side = int(pred_mask.shape[-1])
        m = rescale_affine(matrix.to(pred_mask.dtype), crop_size, side)
        src = pred_mask.detach() if detach_target else pred_mask
        warped = warp_images(src.unsqueeze(1), m, (side, side))[:, 0]
        out["mask"] = (pred_t_mask - warped).abs().mean(dim=(1, 2))
    return out


def pseudo_label_confidence(
    label_uv: torch.Tensor,
    label_z: torch.Tensor,
    pred_t_uv: torch.Tensor,
    pred_t_z: torch.Tensor,
    matrix: torch.Tensor,
    corrected_uv: torch.Tensor,
    corrected_z: torch.Tensor,
    crop_size: float,
    *,
    lambda_d: float = LAMBDA_D,
    uv_grid: float = UV_GRID,
) -> torch.Tensor:
    """C(p^) = l(T(p^), f(T(x))) + l(p^, P(p^)) (eq. 6.8); smaller is more confident.

    Args:
        label_uv, label_z: the pseudo-labels p^ (B, 21, 2) crop px, (B, 21).
        pred_t_uv, pred_t_z: the network's prediction on the perturbed images T(x).
        matrix: (B, 2, 3) the perturbation T (crop px of x -> of T(x)).
        corrected_uv, corrected_z: P(p^), e.g. from :func:`correct_pose_25d`.
        crop_size: crop side in pixels; lambda_d, uv_grid: of :func:`pose_distance`.
    Returns:
        (B,) in the units of :func:`pose_distance` (compare with :data:`TAU`).
    """
    _check_pose(label_uv, label_z, "label")
    _check_matrix(matrix, label_uv.shape[0])
    kw = dict(lambda_d=lambda_d, uv_grid=uv_grid)
    stability = pose_distance(transform_points(label_uv, matrix), label_z, pred_t_uv, pred_t_z,
                              crop_size, **kw)  # type: ignore[arg-type]
    plausibility = pose_distance(label_uv, label_z, corrected_uv, corrected_z, crop_size,
                                 **kw)  # type: ignore[arg-type]
    return stability + plausibility


def update_pseudo_labels(
    pred_uv: torch.Tensor, pred_z: torch.Tensor, corrected_uv: torch.Tensor,
    corrected_z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """p^ = argmin_p l(p', p) + l(r', p) = (p' + r') / 2 (eq. 6.7).

    Args:
        pred_uv, pred_z: the current prediction p' (B, 21, 2) px, (B, 21).
        corrected_uv, corrected_z: the previous corrected label r'.
    Returns:
        (uv (B, 21, 2), z_rel (B, 21)) of the new pseudo-label (the new r is P of it).
    """
    _check_pose(pred_uv, pred_z, "pred")
    _check_pose(corrected_uv, corrected_z, "corrected")
    if pred_uv.shape != corrected_uv.shape:
        raise ValueError(f"pred and corrected must have the same batch; got "
                         f"{tuple(pred_uv.shape)} and {tuple(corrected_uv.shape)}")
    return 0.5 * (pred_uv + corrected_uv), 0.5 * (pred_z + corrected_z)
