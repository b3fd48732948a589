"""handpose.core: geometry, hand models, renderers, models, losses, metrics, data, inference.

Never imports Qt, ``handpose.app`` or ``handpose.training`` (an import-linter contract).
Frame sources and the tracking pipeline load on first use (they pull in OpenCV/MediaPipe).
"""

from typing import Any

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

_LAZY = {
    "HandPoseEstimator": ".inference",
    "open_source": ".data.sources",
    "list_cameras": ".data.sources",
    "FrameSource": ".data.sources",
    "ArraySource": ".data.sources",
    "SourceError": ".data.sources",
    "SourceLost": ".data.sources",
}
__all__ += sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
