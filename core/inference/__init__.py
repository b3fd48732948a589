"""Runtime: hand detection, tracking, the HandPoseEstimator pipeline, filters, test-time fitting."""

from .backends import PoseBackend, load_backend
from .calibration import calibrate_hand_size, hand_scale_from_length
from .estimator import STAGES, HandPoseEstimator
from .filters import OneEuroFilter, OneEuroParams
from .hand_filter import HandFilter, HandSmoothing

__all__ = [
    "HandPoseEstimator",
    "STAGES",
    "PoseBackend",
    "load_backend",
    "calibrate_hand_size",
    "hand_scale_from_length",
    "OneEuroFilter",
    "OneEuroParams",
    "HandFilter",
    "HandSmoothing",
]
