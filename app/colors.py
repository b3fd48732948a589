"""Colours of the app's drawings (Qt-free): fingers, joint confidence, handedness.

Colours are RGBA floats in [0, 1] (pyqtgraph's OpenGL items take them as they are; the 2D
views scale them to 0-255 with :func:`to_255`).
"""

from __future__ import annotations

import numpy as np

from handpose.core.skeleton import BONES, NUM_JOINTS

__all__ = [
    "FINGER_COLORS",
    "PALM_COLOR",
    "bone_finger",
    "bone_colors",
    "joint_finger",
    "confidence_colors",
    "to_255",
    "HAND_LABEL_COLORS",
]

#: thumb, index, middle, ring, pinky (RGBA in [0, 1]).
FINGER_COLORS = np.array([
    [0.95, 0.30, 0.25, 1.0],  # thumb: red
    [1.00, 0.70, 0.10, 1.0],  # index: amber
    [0.35, 0.85, 0.30, 1.0],  # middle: green
    [0.20, 0.65, 1.00, 1.0],  # ring: blue
    [0.75, 0.40, 0.95, 1.0],  # pinky: violet
], np.float32)
#: Colour of the wrist and of palm parts that belong to no finger.
PALM_COLOR = np.array([0.92, 0.92, 0.92, 1.0], np.float32)
#: Label colour of a left and a right hand.
HAND_LABEL_COLORS = {"left": (120, 200, 255), "right": (255, 190, 90)}


def joint_finger(joint: int) -> int:
    """Finger of a joint: 0 thumb ... 4 pinky; -1 for the wrist."""
    if not 0 <= joint < NUM_JOINTS:
        raise ValueError(f"joint must be in [0, {NUM_JOINTS}); got {joint}")
    return -1 if joint == 0 else (joint - 1) // 4


def bone_finger() -> np.ndarray:
    """(20,) finger index of each bone of ``BONES`` (the finger of its child joint)."""
    return np.array([joint_finger(c) for _, c in BONES], np.int64)


def bone_colors() -> np.ndarray:
    """(20, 4) RGBA colour of each bone of ``BONES``, by finger."""
    return FINGER_COLORS[bone_finger()]


def confidence_colors(confidence: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Colours of per-joint confidences: red (0) through yellow (0.5) to green (1).

    Args:
        confidence: (N,) values; clipped to [0, 1], NaN counts as 0.
        alpha: opacity in [0, 1].
    Returns:
        (N, 4) float32 RGBA in [0, 1].
    """
    c = np.nan_to_num(np.asarray(confidence, np.float64).reshape(-1), nan=0.0)
    c = np.clip(c, 0.0, 1.0)
    out = np.empty((c.size, 4), np.float32)
    out[:, 0] = np.clip(2.0 * (1.0 - c), 0.0, 1.0)
    out[:, 1] = np.clip(2.0 * c, 0.0, 1.0) * 0.9
    out[:, 2] = 0.15
    out[:, 3] = alpha
    return out


def to_255(rgba: np.ndarray) -> np.ndarray:
    """RGBA floats in [0, 1] -> uint8 0-255 (same shape)."""
    return np.clip(np.rint(np.asarray(rgba, np.float64) * 255.0), 0, 255).astype(np.uint8)
