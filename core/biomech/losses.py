"""Differentiable biomechanical losses (Spurr et al. 2020, METHODS §3).

Each loss is the interval penalty ``I(x; lo, hi) = max(lo - x, 0) + max(x - hi, 0)`` summed
over its constraints (radians for angles, ratios for bone lengths, unitless curvature), then
reduced over the batch. All quantities are scale invariant, so joints may be in metres or
scale-normalised. Pure functions on torch tensors (numpy works too, without gradients);
safe at degenerate poses (zero-length bones give finite values and gradients, never NaN).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import torch
from torch import nn

from ..handmodel import HandModel
from ..skeleton import REFERENCE_BONE
from . import _backend as B
from ._backend import Array
from .constraints import (
    FAMILIES,
    Limits,
    check_handedness,
    check_joints,
    evaluate_right,
    interval_excess,
    limits_for,
    to_right,
)
from .frames import bone_vectors, finger_angles_right, root_geometry_right

__all__ = [
    "DEFAULT_WEIGHTS",
    "interval_penalty",
    "bone_length_loss",
    "root_angle_loss",
    "root_curvature_loss",
    "palm_normal_loss",
    "joint_angle_loss",
    "biomech_loss",
    "BiomechLoss",
]

#: Weights of :func:`biomech_loss` per constraint family (choose; all 1 by default).
DEFAULT_WEIGHTS: Final[Mapping[str, float]] = {fam: 1.0 for fam, _ in FAMILIES}
_REDUCTIONS = ("mean", "sum", "none")


def interval_penalty(x: Array, lo: Array, hi: Array) -> Array:
    """I(x; lo, hi) = max(lo - x, 0) + max(x - hi, 0), elementwise with broadcasting."""
    return interval_excess(x, lo, hi)


def _reduce(per_pose: Array, reduction: str) -> Array:
    if reduction == "none":
        return per_pose
    if reduction == "sum":
        return per_pose.sum()
    return per_pose.mean() if per_pose.ndim else per_pose


def _prepare(joints: Array, reduction: str) -> Array:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")
    return check_joints(joints, finite=not B.is_torch(joints))


def _penalty(values: Array, limits: Limits, family: str) -> Array:
    lo, hi = limits.lo_hi(family, values)
    return interval_excess(values, lo, hi).sum(-1)


def bone_length_loss(
    joints: Array, model: HandModel | None = None, reduction: str = "mean"
) -> Array:
    """Bone length penalty on |b_k| / |b_ref| vs ``bone_length_range``.

    Args:
        joints: (..., 21, 3). model: hand model (default shipped).
        reduction: ``"mean"`` over poses (of the per-pose sum), ``"sum"`` or ``"none"`` (...,).
    """
    j = _prepare(joints, reduction)
    lengths = B.norm(bone_vectors(j))
    ratio = lengths / B.clip(lengths[..., REFERENCE_BONE[1] - 1 : REFERENCE_BONE[1]], B.EPS, 1e30)
    return _reduce(_penalty(ratio, limits_for(model), "bone_length"), reduction)


def root_angle_loss(
    joints: Array, model: HandModel | None = None, reduction: str = "mean"
) -> Array:
    """Angular distance between neighbouring root bones vs ``root_limits.angle_deg``."""
    j = _prepare(joints, reduction)
    angle = root_geometry_right(j)["angle"]
    return _reduce(_penalty(angle, limits_for(model), "root_angle"), reduction)


def palm_normal_loss(
    joints: Array, model: HandModel | None = None, reduction: str = "mean"
) -> Array:
    """Angle between consecutive palm normals vs ``root_limits.normal_angle_deg``."""
    j = _prepare(joints, reduction)
    angle = root_geometry_right(j)["normal_angle"]
    return _reduce(_penalty(angle, limits_for(model), "palm_normal_angle"), reduction)


def root_curvature_loss(
    joints: Array,
    handedness: str = "right",
    model: HandModel | None = None,
    reduction: str = "mean",
) -> Array:
    """Root bone curvature (bones / |b_ref|) vs ``root_limits.curvature``.
    ``handedness``: ``"right"``, ``"left"`` or ``"auto"`` (per pose, chosen without gradient)."""
    j = _prepare(joints, reduction)
    check_handedness(handedness)
    lim = limits_for(model)
    right, _ = to_right(j, handedness, lim)
    curv = root_geometry_right(right)["curvature"]
    return _reduce(_penalty(curv, lim, "root_curvature"), reduction)


def joint_angle_loss(
    joints: Array,
    handedness: str = "right",
    model: HandModel | None = None,
    reduction: str = "mean",
) -> Array:
    """Flexion and abduction of the 15 finger bones vs ``joint_limits`` (radians)."""
    j = _prepare(joints, reduction)
    check_handedness(handedness)
    lim = limits_for(model)
    right, _ = to_right(j, handedness, lim)
    flex, abd = finger_angles_right(right)
    lead = tuple(j.shape[:-2])
    per_pose = _penalty(flex.reshape(*lead, 15), lim, "flexion") + _penalty(
        abd.reshape(*lead, 15), lim, "abduction"
    )
    return _reduce(per_pose, reduction)


def biomech_loss(
    joints: Array,
    weights: Mapping[str, float] | None = None,
    handedness: str = "right",
    model: HandModel | None = None,
    reduction: str = "mean",
) -> Array:
    """Weighted sum of all constraint penalties.

    Args:
        joints: (..., 21, 3) (metres or scale-normalised).
        weights: per family (``bone_length``, ``root_angle``, ``root_curvature``,
            ``palm_normal_angle``, ``flexion``, ``abduction``); missing families take
            :data:`DEFAULT_WEIGHTS`, unknown names raise ``ValueError``.
        handedness: ``"right"``, ``"left"`` or ``"auto"``.
        model: hand model (default shipped). reduction: ``"mean"``, ``"sum"``, ``"none"``.

    Returns:
        scalar (or (...,) with ``reduction="none"``).
    """
    j = _prepare(joints, reduction)
    check_handedness(handedness)
    w = dict(DEFAULT_WEIGHTS)
    for k, v in (weights or {}).items():
        if k not in w:
            raise ValueError(f"weights has unknown family {k!r}; expected some of {sorted(w)}")
        w[k] = float(v)
    lim = limits_for(model)
    right, _ = to_right(j, handedness, lim)
    values = evaluate_right(right)
    total = sum(w[fam] * _penalty(values[fam], lim, fam) for fam, _ in FAMILIES if w[fam] != 0.0)
    if not hasattr(total, "shape"):  # every weight zero
        total = values["bone_length"][..., 0] * 0.0
    return _reduce(total, reduction)


class BiomechLoss(nn.Module):
    """``nn.Module`` wrapper of :func:`biomech_loss` with fixed weights and handedness."""

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        handedness: str = "right",
        model: HandModel | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        check_handedness(handedness)
        self.weights = dict(weights or {})
        self.handedness = handedness
        self.model = model
        self.reduction = reduction

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        """joints (B, 21, 3) -> scalar loss (or (B,) with reduction ``"none"``)."""
        out: torch.Tensor = biomech_loss(
            joints, self.weights, self.handedness, self.model, self.reduction
        )
        return out
