"""handpose.core: geometry, hand models, renderers, models, losses, metrics, data, inference.

Never imports Qt, ``handpose.app`` or ``handpose.training`` (an import-linter contract).
"""

from .checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    load_checkpoint,
    model_card,
    save_checkpoint,
)
from .handmodel import HandModel, HandModelError, load_hand_model
from .skeleton import (
    BONES,
    FINGERS,
    NUM_JOINTS,
    PARENTS,
    REFERENCE_BONE,
    Joint,
    convert_joint_order,
)
from .types import Frame, FrameResult, HandPose, Pose25D

__all__ = [
    "CheckpointError",
    "LoadedCheckpoint",
    "load_checkpoint",
    "model_card",
    "save_checkpoint",
    "BONES",
    "FINGERS",
    "NUM_JOINTS",
    "PARENTS",
    "REFERENCE_BONE",
    "Joint",
    "convert_joint_order",
    "HandModel",
    "HandModelError",
    "load_hand_model",
    "Frame",
    "FrameResult",
    "HandPose",
    "Pose25D",
]
