"""The data contracts of the runtime pipeline (DESIGN.md): Frame, Pose25D, HandPose, FrameResult.

All are frozen dataclasses; arrays are numpy (or torch for ``Pose25D``) with the shapes and
units documented per field. Construction validates shapes so a wrong producer fails early.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .skeleton import NUM_JOINTS

__all__ = ["Frame", "Pose25D", "HandPose", "FrameResult"]


def _check(name: str, a: Any, shape: tuple[int | None, ...]) -> None:
    got = tuple(getattr(a, "shape", ()))
    if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}; got {got}")


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        rgb: (H, W, 3) uint8, RGB channel order.
        K: (3, 3) float camera intrinsics in pixels.
        depth: (H, W) float32 metres aligned to ``rgb`` (0 or NaN = no reading), or None.
        timestamp: seconds (monotonic within a source).
        index: frame number within its source.
    """

    rgb: np.ndarray
    K: np.ndarray
    depth: np.ndarray | None = None
    timestamp: float = 0.0
    index: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.rgb, np.ndarray) or self.rgb.dtype != np.uint8:
            got = getattr(self.rgb, "dtype", type(self.rgb))
            raise ValueError(f"Frame.rgb must be a uint8 numpy array; got {got}")
        _check("Frame.rgb", self.rgb, (None, None, 3))
        _check("Frame.K", self.K, (3, 3))
        if self.depth is not None:
            _check("Frame.depth", self.depth, self.rgb.shape[:2])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


@dataclass(frozen=True)
class Pose25D:
    """A batch of 2.5D poses (Iqbal et al.), what the network predicts.

    Attributes:
        uv: (B, 21, 2) pixels in the image the network saw (the crop).
        z_rel: (B, 21) root-relative depth divided by the reference bone length.
        confidence: (B, 21) in [0, 1], or None.
    """

    uv: Any
    z_rel: Any
    confidence: Any = None

    def __post_init__(self) -> None:
        _check("Pose25D.uv", self.uv, (None, NUM_JOINTS, 2))
        _check("Pose25D.z_rel", self.z_rel, (self.uv.shape[0], NUM_JOINTS))
        if self.confidence is not None:
            _check("Pose25D.confidence", self.confidence, (self.uv.shape[0], NUM_JOINTS))


@dataclass(frozen=True)
class HandPose:
    """One tracked hand in one frame.

    Attributes:
        joints: (21, 3) metres, camera frame (OpenCV: x right, y down, z forward).
        uv: (21, 2) pixels in the full frame. From the estimator: the network's (smoothed)
            keypoints, before the biomechanical correction; ``joints`` is corrected, so its
            projection can differ from ``uv`` where the correction moved a joint.
        handedness: "left" or "right".
        handedness_score: in [0, 1].
        confidence: (21,) per-joint confidence in [0, 1].
        corrected: whether biomechanical correction was applied.
        track_id: stable identifier of the hand across frames.
        spheres: (41, 4) centres (metres) and radii (metres), or None.
    """

    joints: np.ndarray
    uv: np.ndarray
    handedness: str = "right"
    handedness_score: float = 0.5
    confidence: np.ndarray = field(default_factory=lambda: np.ones(NUM_JOINTS, np.float32))
    corrected: bool = False
    track_id: int = 0
    spheres: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check("HandPose.joints", self.joints, (NUM_JOINTS, 3))
        _check("HandPose.uv", self.uv, (NUM_JOINTS, 2))
        _check("HandPose.confidence", self.confidence, (NUM_JOINTS,))
        if self.handedness not in ("left", "right"):
            raise ValueError(
                f"HandPose.handedness must be 'left' or 'right'; got {self.handedness!r}"
            )
        if self.spheres is not None:
            _check("HandPose.spheres", self.spheres, (41, 4))


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline produced for one frame.

    Attributes:
        frame: the input :class:`Frame`.
        hands: the tracked hands (possibly empty).
        timings_ms: per-stage wall time in milliseconds (detect, crop, network, lift, correct,
            filter, fit, total).
    """

    frame: Frame
    hands: tuple[HandPose, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
