"""Losses: contrastive (NT-Xent, PeCLR), pose, sphere-model fitting energies, consistency."""

from .consistency import (
    pose_distance,
    pseudo_label_confidence,
    update_pseudo_labels,
    view_consistency,
)
from .contrastive import invert_latent_transform, nt_xent, peclr_loss
from .fitting import (
    bone_length_band,
    circles_to_mask,
    collision,
    data_to_model,
    mask_to_circles,
    model_to_data,
    multiview_consistency,
)
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
from .pose_registration import Corrected25D, correct_pose_25d

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
    "model_to_data",
    "data_to_model",
    "collision",
    "bone_length_band",
    "multiview_consistency",
    "mask_to_circles",
    "circles_to_mask",
    "pose_distance",
    "view_consistency",
    "pseudo_label_confidence",
    "update_pseudo_labels",
    "correct_pose_25d",
    "Corrected25D",
]
