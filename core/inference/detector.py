"""MediaPipe's palm detector, run on its own (no landmark model).

The pinned wheel (mediapipe 0.10.21) ships the ``PalmDetectionCpu`` subgraph inside its hand
tracking graph. We build a small graph of our own around it through MediaPipe's
``SolutionBase``: palm detection, clipped to ``max_hands``, then MediaPipe's own conversion of a
palm detection into a rotated hand region (``PalmDetectionDetectionToRoi``, which enlarges the
palm box to cover the whole hand). The landmark network of MediaPipe is never run: our own
pose network replaces it. Nothing is downloaded: the model files are inside the wheel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["HandDetection", "PalmDetector", "DetectorUnavailableError"]

_GRAPH = """
input_stream: "IMAGE:image"
output_stream: "DETECTIONS:palm_detections"
output_stream: "ROIS:hand_rects"
input_side_packet: "NUM_HANDS:num_hands"
input_side_packet: "MODEL_COMPLEXITY:model_complexity"
node {
  calculator: "PalmDetectionCpu"
  input_stream: "IMAGE:image"
  output_stream: "DETECTIONS:all_palm_detections"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
}
node {
  calculator: "ClipDetectionVectorSizeCalculator"
  input_stream: "all_palm_detections"
  output_stream: "palm_detections"
  input_side_packet: "num_hands"
}
node {
  calculator: "ImagePropertiesCalculator"
  input_stream: "IMAGE:image"
  output_stream: "SIZE:image_size"
}
node {
  calculator: "BeginLoopDetectionCalculator"
  input_stream: "ITERABLE:palm_detections"
  input_stream: "CLONE:image_size"
  output_stream: "ITEM:palm_detection"
  output_stream: "CLONE:image_size_for_palms"
  output_stream: "BATCH_END:palm_detections_timestamp"
}
node {
  calculator: "PalmDetectionDetectionToRoi"
  input_stream: "DETECTION:palm_detection"
  input_stream: "IMAGE_SIZE:image_size_for_palms"
  output_stream: "ROI:hand_rect"
}
node {
  calculator: "EndLoopNormalizedRectCalculator"
  input_stream: "ITEM:hand_rect"
  input_stream: "BATCH_END:palm_detections_timestamp"
  output_stream: "ITERABLE:hand_rects"
}
"""


class DetectorUnavailableError(RuntimeError):
    """MediaPipe (the pinned version with the palm model inside the wheel) cannot be used."""


@dataclass(frozen=True)
class HandDetection:
    """One detected hand region in full-image pixels.

    Attributes:
        center: (x, y) pixels.
        size: (width, height) pixels of the rotated hand region (MediaPipe's hand ROI, which
            covers the whole hand with a margin; usually square).
        rotation: radians, the region's rotation (MediaPipe's convention: the angle that
            brings the wrist -> middle-finger axis upright; positive is clockwise in the image).
        score: palm detection confidence in [0, 1].
    """

    center: tuple[float, float]
    size: tuple[float, float]
    rotation: float
    score: float

    def box(self) -> np.ndarray:
        """(4,) x, y, w, h pixels: the axis-aligned box enclosing the rotated region."""
        c, s = abs(math.cos(self.rotation)), abs(math.sin(self.rotation))
        w = self.size[0] * c + self.size[1] * s
        h = self.size[0] * s + self.size[1] * c
        return np.array([self.center[0] - w / 2, self.center[1] - h / 2, w, h])


class PalmDetector:
    """MediaPipe's palm detector without its landmark model.

    Args:
        max_hands: at most this many detections per frame (the strongest first).
        model_complexity: 0 (lite, faster) or 1 (full).

    ``detect(rgb)`` takes an (H, W, 3) uint8 RGB frame and returns a list of
    :class:`HandDetection`. Frames are fed to a MediaPipe graph with increasing timestamps;
    the detector is stateless between calls otherwise. Call ``close()`` (or use ``with``)
    to release the graph.
    """

    def __init__(self, max_hands: int = 2, model_complexity: int = 0) -> None:
        if not isinstance(max_hands, int) or max_hands < 1:
            raise ValueError(f"max_hands must be a positive integer; got {max_hands!r}")
        if model_complexity not in (0, 1):
            raise ValueError(f"model_complexity must be 0 or 1; got {model_complexity!r}")
        try:
            from google.protobuf import text_format
            from mediapipe.framework import calculator_pb2
            from mediapipe.python.solution_base import SolutionBase
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise DetectorUnavailableError(
                f"MediaPipe is not importable ({e}); install the pinned mediapipe==0.10.21"
            ) from e
        config = text_format.Parse(_GRAPH, calculator_pb2.CalculatorGraphConfig())
        try:
            self._graph: Any = SolutionBase(
                graph_config=config,
                side_inputs={"num_hands": max_hands, "model_complexity": model_complexity},
                outputs=["palm_detections", "hand_rects"],
            )
        except Exception as e:  # MediaPipe raises plain RuntimeErrors for graph problems
            raise DetectorUnavailableError(
                f"MediaPipe's palm detector could not start ({e}); this needs mediapipe==0.10.21"
            ) from e
        self.max_hands = max_hands

    def detect(self, rgb: np.ndarray) -> list[HandDetection]:
        """Detect hands in one frame.

        Args:
            rgb: (H, W, 3) uint8 RGB image.

        Returns:
            Up to ``max_hands`` detections, strongest first.
        """
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
            raise ValueError(
                f"rgb must be a uint8 numpy array; got {getattr(rgb, 'dtype', type(rgb))}"
            )
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 8 or rgb.shape[1] < 8:
            raise ValueError(f"rgb must have shape (H, W, 3) with H, W >= 8; got {rgb.shape}")
        h, w = rgb.shape[:2]
        out = self._graph.process(np.ascontiguousarray(rgb))
        rects = out.hand_rects or []
        dets = out.palm_detections or []
        result = []
        for rect, det in zip(rects, dets):
            result.append(
                HandDetection(
                    center=(rect.x_center * w, rect.y_center * h),
                    size=(rect.width * w, rect.height * h),
                    rotation=float(rect.rotation),
                    score=float(det.score[0]) if det.score else 0.0,
                )
            )
        result.sort(key=lambda d: -d.score)
        return result

    def close(self) -> None:
        """Release the MediaPipe graph (idempotent)."""
        graph = getattr(self, "_graph", None)
        if graph is not None:
            graph.close()
            self._graph = None

    def __enter__(self) -> PalmDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
