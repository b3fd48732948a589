"""Supervised 2.5D pose losses (METHODS §2 fine-tuning): L1 on 2D, on z_rel and on 3D.

All terms are masked means: missing labels (a joint outside the image, a sample without 3D)
contribute nothing, and a batch with no valid label gives 0 (not NaN). Units:

- 2D: pixel error divided by the crop side (so it does not depend on the input size);
- z_rel: unitless (root-relative depth / reference bone length s);
- 3D: the prediction is lifted with :func:`handpose.core.geometry.lifting.lift_to_3d`
  (the ground-truth s and the crop's K; optionally with the root-depth refiner) and compared
  to the ground-truth joints in units of s (metres / s): root-relative by default
  (``xyz_frame="root"``, the hand's 3D shape), or absolute camera-frame positions
  (``"camera"``), which also supervise the root-depth solve.

Weights: METHODS' known good start is 1 / 5 / 1 (2D / z_rel / 3D) with the 2D error in
pixels; our 2D term is in crop sides, so its weight is about the crop side: 100. Measured on
one fixed batch of 32 synthetic 96 px crops, ResNet-18 from scratch, 60 Adam steps (lr 1e-3),
2D error / z_rel error at the end: weights 1/5/1 -> 0.24 / 0.11 (the 2D stays at the mean
pose); 100/5/1 with the absolute 3D term: 0.18 / 0.98; 100/5/1 root-relative: 0.078 / 0.59;
100/5/0.1 root-relative: 0.025 / 0.18; 100/5/0: 0.020 / 0.14. The absolute 3D term's early
errors (hundreds of bone lengths from an ill-conditioned root solve) swamp the other terms,
hence root-relative 3D at weight 0.1 by default. The confidence term trains the regression
head's ``uv_error`` output to predict the (detached) 2D error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from ..geometry.camera import normalize_pixels
from ..geometry.lifting import lift_from_root_depth, lift_to_3d, normalized_root_depth
from ..skeleton import NUM_JOINTS

__all__ = [
    "PoseLossWeights",
    "PoseTarget",
    "masked_l1",
    "uv_l1",
    "z_rel_l1",
    "xyz_l1",
    "confidence_l1",
    "lift_prediction",
    "pose_loss",
]


@dataclass(frozen=True)
class PoseLossWeights:
    """Weights of the terms of :func:`pose_loss` (0 switches a term off)."""

    uv: float = 100.0
    z_rel: float = 5.0
    xyz: float = 0.1
    confidence: float = 1.0  # *(choose)*
    xyz_frame: str = "root"  # "root": root-relative 3D; "camera": absolute positions

    def __post_init__(self) -> None:
        if self.xyz_frame not in ("root", "camera"):
            raise ValueError(f"xyz_frame must be 'root' or 'camera'; got {self.xyz_frame!r}")


@dataclass(frozen=True)
class PoseTarget:
    """Labels of a batch of B crops (None = not available for the whole batch).

    Attributes:
        uv: (B, 21, 2) crop pixels.
        z_rel: (B, 21) root-relative depth / s.
        joints: (B, 21, 3) metres, camera frame.
        K: (B, 3, 3) intrinsics of the crop (``geometry.crop.crop_intrinsics``).
        scale: (B,) metres, reference bone length s.
        joint_mask: (B, 21) bool/float, 1 where the joint is labelled.
        has_3d: (B,) bool, samples with z_rel / joints / K / scale labels.
    """

    uv: Tensor
    z_rel: Tensor | None = None
    joints: Tensor | None = None
    K: Tensor | None = None
    scale: Tensor | None = None
    joint_mask: Tensor | None = None
    has_3d: Tensor | None = None

    @classmethod
    def from_batch(cls, batch: Mapping[str, Any]) -> PoseTarget:
        """Pick the fields above from a batch dict (other keys are ignored)."""
        if "uv" not in batch:
            raise ValueError(f"batch has no 'uv' labels; keys: {sorted(batch)}")
        kw: dict[str, Any] = {f.name: batch.get(f.name) for f in fields(cls)}
        return cls(**kw)


def _mask_like(mask: Tensor | None, ref: Tensor, lead: int) -> Tensor:
    """Mask broadcast to ``ref``'s shape; ``lead`` leading dims of ``ref`` are the mask's."""
    if mask is None:
        return torch.ones_like(ref)
    if tuple(mask.shape) != tuple(ref.shape[:lead]):
        raise ValueError(f"mask must have shape {tuple(ref.shape[:lead])}; got "
                         f"{tuple(mask.shape)}")
    m = mask.to(ref.dtype)
    return m.view(*m.shape, *([1] * (ref.dim() - lead))).expand_as(ref)


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean |pred - target| over the masked elements (0 when nothing is valid).

    Args:
        pred, target: same shape (B, J, ...) .
        mask: (B, J) or None.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape; got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    m = _mask_like(mask, pred, 2 if pred.dim() >= 2 else 1)
    return ((pred - target).abs() * m).sum() / m.sum().clamp(min=1.0)


def uv_l1(uv_pred: Tensor, uv_gt: Tensor, crop_size: float, mask: Tensor | None = None
          ) -> Tensor:
    """L1 of (B, 21, 2) pixel coordinates divided by the crop side ``crop_size`` (pixels)."""
    if crop_size <= 0:
        raise ValueError(f"crop_size must be > 0 pixels; got {crop_size}")
    return masked_l1(uv_pred / crop_size, uv_gt / crop_size, mask)


def z_rel_l1(z_pred: Tensor, z_gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """L1 of (B, 21) root-relative depths / s (unitless)."""
    return masked_l1(z_pred, z_gt, mask)


def xyz_l1(joints_pred: Tensor, joints_gt: Tensor, scale: Tensor, mask: Tensor | None = None
           ) -> Tensor:
    """L1 of (B, 21, 3) joints (metres) in units of the reference bone ``scale`` (B,)."""
    if scale.shape != joints_pred.shape[:1]:
        raise ValueError(f"scale must have shape ({joints_pred.shape[0]},); got "
                         f"{tuple(scale.shape)}")
    s = scale.to(joints_pred).view(-1, 1, 1)
    return masked_l1(joints_pred / s, joints_gt.to(joints_pred) / s, mask)


def confidence_l1(uv_error: Tensor, uv_pred: Tensor, uv_gt: Tensor, crop_size: float,
                  mask: Tensor | None = None) -> Tensor:
    """Train a predicted per-joint 2D error (B, 21), in crop sides, against the actual one.

    The target ``|uv_pred - uv_gt| / crop_size`` is detached: this term only teaches the
    error output, it never pulls the pose towards a "confident" answer.
    """
    err = (torch.linalg.vector_norm(uv_pred - uv_gt, dim=-1) / crop_size).detach()
    return masked_l1(uv_error, err, mask)


def lift_prediction(uv: Tensor, z_rel: Tensor, K: Tensor, scale: Tensor,
                    root_refiner: nn.Module | None = None) -> Tensor:
    """Lift a predicted 2.5D pose to 3D joints (B, 21, 3) metres.

    Args:
        uv: (B, 21, 2) pixels of the image ``K`` describes; z_rel: (B, 21); K: (B, 3, 3);
        scale: (B,) metres.
        root_refiner: optional :class:`~handpose.core.models.RootRefiner`: the closed-form
            root depth Z = Z_root / s is refined by it (METHODS §1) before lifting.
    """
    if root_refiner is None:
        return lift_to_3d(uv, z_rel, K, scale)  # type: ignore[no-any-return]
    z0 = normalized_root_depth(uv, z_rel, K)
    z = root_refiner(z_rel, normalize_pixels(uv, K), z0)
    return lift_from_root_depth(uv, z_rel, K, scale, scale * z)  # type: ignore[no-any-return]


def pose_loss(pred: Mapping[str, Tensor], target: PoseTarget, crop_size: float,
              weights: PoseLossWeights = PoseLossWeights(),
              root_refiner: nn.Module | None = None) -> dict[str, Tensor]:
    """The weighted fine-tuning loss.

    Args:
        pred: PoseNet output: "uv" (B, 21, 2) crop pixels, "z_rel" (B, 21), optional
            "uv_error" (B, 21).
        target: the labels (:class:`PoseTarget`); terms whose labels are None are skipped.
        crop_size: side of the network input in pixels.
        weights: :class:`PoseLossWeights`.
        root_refiner: passed to :func:`lift_prediction` for the 3D term.

    Returns:
        dict "total" (the weighted sum, differentiable) and each computed term
        ("uv", "z_rel", "xyz", "confidence") unweighted.
    """
    uv = pred["uv"]
    b = uv.shape[0]
    if uv.shape != (b, NUM_JOINTS, 2) or target.uv.shape != uv.shape:
        raise ValueError(f"pred['uv'] and target.uv must be (B, 21, 2); got {tuple(uv.shape)} "
                         f"and {tuple(target.uv.shape)}")
    jm = target.joint_mask
    jm = torch.ones(b, NUM_JOINTS, device=uv.device) if jm is None else jm.to(uv.device).float()
    has3 = torch.ones(b, device=uv.device) if target.has_3d is None else \
        target.has_3d.to(uv.device).float()
    m3 = jm * has3[:, None]
    terms: dict[str, Tensor] = {"uv": uv_l1(uv, target.uv.to(uv), crop_size, jm)}
    if target.z_rel is not None:
        terms["z_rel"] = z_rel_l1(pred["z_rel"], target.z_rel.to(uv), m3)
    if weights.xyz > 0 and target.joints is not None:
        if target.K is None or target.scale is None:
            raise ValueError("target.K and target.scale are needed for the 3D term "
                             "(or set weights.xyz = 0)")
        rows = has3 > 0
        if bool(rows.any()):
            k, s = target.K.to(uv)[rows], target.scale.to(uv)[rows]
            joints = lift_prediction(uv[rows], pred["z_rel"][rows], k, s, root_refiner)
            gt = target.joints.to(uv)[rows]
            if weights.xyz_frame == "root":
                joints, gt = joints - joints[:, :1], gt - gt[:, :1]
            terms["xyz"] = xyz_l1(joints, gt, s, jm[rows])
        else:
            terms["xyz"] = uv.sum() * 0.0
    if "uv_error" in pred and weights.confidence > 0:
        terms["confidence"] = confidence_l1(pred["uv_error"], uv, target.uv.to(uv), crop_size,
                                            jm)
    w: dict[str, float] = {"uv": weights.uv, "z_rel": weights.z_rel, "xyz": weights.xyz,
         "confidence": weights.confidence}
    total = sum((w[k] * v for k, v in terms.items()), uv.new_zeros(()))
    return {"total": total, **terms}
