"""Losses: contrastive (NT-Xent, PeCLR), pose, sphere-model fitting energies, consistency."""

from .contrastive import invert_latent_transform, nt_xent, peclr_loss
from .pose import (
    PoseLossWeights,
    PoseTarget,
    confidence_l1,
    lift_prediction,
    masked_l1,
    pose_loss,
    uv_l1,
    xyz_l1,
    z_rel_l1,
)

__all__ = [
    "invert_latent_transform",
    "nt_xent",
    "peclr_loss",
    "PoseLossWeights",
    "PoseTarget",
    "confidence_l1",
    "lift_prediction",
    "masked_l1",
    "pose_loss",
    "uv_l1",
    "xyz_l1",
    "z_rel_l1",
]
