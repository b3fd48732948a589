"""Losses of the ``dual`` recipe (dissertation ch. 7, METHODS §5).

- :func:`multimodal_loss`, eq. 7.1: ``M(y, y_gt) = l(p, p_gt) + lambda_m |m - m_gt|_1 +
  lambda_d |d - d_gt|_1``, with ``l`` SemiHand's pose distance
  (:func:`handpose.core.losses.consistency.pose_distance`: mean over joints of the squared 2D
  error on a 64-px grid plus ``lambda_d`` times the squared z_rel error) and per-pixel mean
  absolute errors of the mask (probabilities) and the normalised depth map.
- :func:`multimodal_contrastive`, eq. 7.4-7.5: ``L_c = eta(z_R, z_R+) + eta(z_D, z_D+) +
  eta(z_R, z_F) + eta(z_R+, z_F+)`` with NT-Xent ``eta`` (temperature 0.5).
- :func:`pseudo_labels`, section 7.3.5.1: the pseudo-label r is the mean of the RGB and fusion
  predictions on the weakly augmented crop, before and after the pose correction, and its
  confidence the variance of those four poses around r (mean pose distance); a label is used
  when that is at most epsilon (1.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from handpose.core.losses.consistency import correct_pose_25d, pose_distance
from handpose.core.losses.contrastive import nt_xent

__all__ = ["DualLossSpec", "multimodal_loss", "multimodal_contrastive", "PseudoLabels",
           "pseudo_labels"]


@dataclass(frozen=True)
class DualLossSpec:
    """Weights of the dual recipe (the dissertation's values, section 7.4.2).

    Attributes:
        lambda_m, lambda_d: mask and depth-map terms of M (100, 50).
        lambda_pose_d: weight of the z_rel term inside the pose distance l (SemiHand's 50).
        lambda_c: contrastive loss in pre-training (0.1).
        lambda_f: self-distillation M(y_RGB, y_F) in fine-tuning (0.2).
        lambda_l: pseudo-label loss in fine-tuning (1).
        epsilon: confidence threshold of the pseudo-labels (1.5, units of l).
        temperature: NT-Xent temperature (0.5).
        stop_gradient: no gradient from the fusion branch into the depth attention.
        depth_range: half-width of the normalised depth window in reference bones.
        default_scale_m: reference bone length for samples without one (measured RGB-D
            frames without labels) *(choose: 3 cm, an adult hand)*.
    """

    lambda_m: float = 100.0
    lambda_d: float = 50.0
    lambda_pose_d: float = 50.0
    lambda_c: float = 0.1
    lambda_f: float = 0.2
    lambda_l: float = 1.0
    epsilon: float = 1.5
    temperature: float = 0.5
    stop_gradient: bool = True
    depth_range: float = 5.0
    default_scale_m: float = 0.03

    def __post_init__(self) -> None:
        for name in ("lambda_m", "lambda_d", "lambda_pose_d", "lambda_c", "lambda_f",
                     "lambda_l", "epsilon"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss.{name} must be >= 0; got {getattr(self, name)}")
        if not (self.temperature > 0 and self.depth_range > 0 and self.default_scale_m > 0):
            raise ValueError("loss.temperature, depth_range and default_scale_m must be > 0")


def _side_check(pred: dict[str, Tensor], mask: Tensor | None, depth: Tensor | None) -> None:
    shape = tuple(pred["depth"].shape)
    for name, t in (("mask", mask), ("depth", depth)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"{name} target must have the decoder's shape {shape}; got "
                             f"{tuple(t.shape)}")


def multimodal_loss(pred: dict[str, Tensor], uv: Tensor, z_rel: Tensor, mask: Tensor | None,
                    depth: Tensor | None, crop_size: float, spec: DualLossSpec,
                    weights: Tensor | None = None) -> Tensor:
    """M(y, y_gt) averaged over the batch (eq. 7.1).

    Args:
        pred: decoder outputs ("uv", "z_rel", "mask", "depth").
        uv: (B, 21, 2) crop pixels; z_rel: (B, 21) targets.
        mask: (B, h, w) in [0, 1] or None (no mask term); depth: (B, h, w) normalised or None.
        crop_size: S in pixels.
        weights: optional (B,) per-sample weights (e.g. confident pseudo-labels); the mean
            divides by their sum (at least 1).
    Returns:
        scalar loss.
    """
    _side_check(pred, mask, depth)
    per = pose_distance(pred["uv"], pred["z_rel"], uv, z_rel, crop_size,
                        lambda_d=spec.lambda_pose_d)
    if mask is not None and spec.lambda_m > 0:
        per = per + spec.lambda_m * (pred["mask"] - mask).abs().mean(dim=(1, 2))
    if depth is not None and spec.lambda_d > 0:
        per = per + spec.lambda_d * (pred["depth"] - depth).abs().mean(dim=(1, 2))
    if weights is None:
        return per.mean()
    w = weights.to(per)
    return (per * w).sum() / w.sum().clamp_min(1.0)


def multimodal_contrastive(z_r: Tensor, z_r_pos: Tensor, z_d: Tensor, z_d_pos: Tensor,
                           z_f: Tensor, z_f_pos: Tensor, temperature: float = 0.5
                           ) -> dict[str, Tensor]:
    """L_c and its parts; every argument (B, D) projections (B >= 2)."""
    parts = {
        "contrast_rgb": nt_xent(z_r, z_r_pos, temperature),
        "contrast_depth": nt_xent(z_d, z_d_pos, temperature),
        "contrast_fusion": nt_xent(z_r, z_f, temperature) + nt_xent(z_r_pos, z_f_pos,
                                                                     temperature),
    }
    return {"contrast": sum(parts.values(), z_r.new_zeros(())), **parts}


@dataclass(frozen=True)
class PseudoLabels:
    """Pseudo-labels of B crops: ``uv`` (B, 21, 2) pixels of the crop they were made on,
    ``z_rel`` (B, 21), ``confidence`` (B,) in units of l (smaller = more certain),
    ``use`` (B,) bool."""

    uv: Tensor
    z_rel: Tensor
    confidence: Tensor
    use: Tensor


def pseudo_labels(rgb: dict[str, Tensor], fusion: dict[str, Tensor], K: Tensor,
                  handedness: Any, crop_size: float, spec: DualLossSpec) -> PseudoLabels:
    """r = mean(p_R, P(p_R), p_F, P(p_F)) and its confidence (module docstring).

    Args:
        rgb, fusion: predictions ("uv", "z_rel") of the two branches on the same crops.
        K: (B, 3, 3) of those crops (for the correction P, which lifts to 3D).
        handedness: (B,) codes 1 right / 0 left / -1 unknown, or "auto".
        crop_size: S; spec: epsilon and the pose distance's weight.
    """
    poses = [(rgb["uv"].detach(), rgb["z_rel"].detach()),
             (fusion["uv"].detach(), fusion["z_rel"].detach())]
    for uv, z in poses[:2]:
        c = correct_pose_25d(uv, z, K, handedness)
        poses.append((c.uv, c.z_rel))
    r_uv = torch.stack([p[0] for p in poses]).mean(0)
    r_z = torch.stack([p[1] for p in poses]).mean(0)
    conf = torch.stack([pose_distance(uv, z, r_uv, r_z, crop_size, lambda_d=spec.lambda_pose_d)
                        for uv, z in poses]).mean(0)
    return PseudoLabels(r_uv, r_z, conf, conf <= spec.epsilon)
