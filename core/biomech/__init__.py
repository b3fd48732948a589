"""Biomechanical constraints (METHODS §3): local joint frames and angles, forward kinematics,
differentiable constraint losses, ``violations`` and ``correct_pose``.

numpy in -> numpy out, torch in -> torch out; any leading batch dims; metres; radians.
Left hands are mirrored (x negated) into right hands, so one table of limits serves both.
"""

from .angles import (
    forward_kinematics,
    is_left_hand,
    joint_angles,
    palm_normal_angles,
    root_angles,
    root_curvature,
)
from .constraints import FAMILIES, constraint_names
from .correct import correct_pose
from .frames import FINGER_BONE_NAMES, PALM_JOINTS
from .losses import (
    DEFAULT_WEIGHTS,
    BiomechLoss,
    biomech_loss,
    bone_length_loss,
    interval_penalty,
    joint_angle_loss,
    palm_normal_loss,
    root_angle_loss,
    root_curvature_loss,
)
from .violations import (
    DEFAULT_TOL,
    NUM_CONSTRAINTS,
    Violation,
    count_violations,
    is_feasible,
    violations,
)

__all__ = [
    "joint_angles",
    "root_angles",
    "root_curvature",
    "palm_normal_angles",
    "forward_kinematics",
    "is_left_hand",
    "FINGER_BONE_NAMES",
    "PALM_JOINTS",
    "FAMILIES",
    "constraint_names",
    "interval_penalty",
    "bone_length_loss",
    "root_angle_loss",
    "root_curvature_loss",
    "palm_normal_loss",
    "joint_angle_loss",
    "biomech_loss",
    "BiomechLoss",
    "DEFAULT_WEIGHTS",
    "violations",
    "count_violations",
    "is_feasible",
    "Violation",
    "DEFAULT_TOL",
    "NUM_CONSTRAINTS",
    "correct_pose",
]
