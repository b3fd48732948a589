"""Test helpers of the app tests: a tiny synthetic session, a stand-in estimator, a camera
that disappears, a tiny checkpoint.

The session is drawn, not rendered: a right hand (the hand model's rest pose, palm towards
the camera, fingers up) swaying left and right 0.5 m in front of a 320 x 240 camera, its bones
drawn as thick skin-coloured lines on a gradient, and a depth map (a wall at 0.9 m, the
bones at their depth). Its ``poses.jsonl`` holds the true hand of every frame, so a replay
can show them and :class:`StandInEstimator` can return them.

:class:`StandInEstimator` is a TEST DOUBLE of ``HandPoseEstimator`` (the app under test uses
whatever object it is given that has ``process(frame) -> FrameResult``): it returns the
session's true hand for the frame's index, optionally after a delay (a slow model), and
records the options it was given through ``with_options``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handpose.core.data.session_reader import SessionReader
from handpose.core.data.session_writer import SessionWriter
from handpose.core.data.sources import FrameSource, SourceLost
from handpose.core.geometry.camera import project
from handpose.core.handmodel import load_hand_model
from handpose.core.skeleton import BONES
from handpose.core.types import Frame, FrameResult, HandPose

W, H = 320, 240
K = np.array([[300.0, 0.0, 159.5], [0.0, 300.0, 119.5], [0.0, 0.0, 1.0]])


def hand_at(t: float) -> np.ndarray:
    """(21, 3) metres: the rest-pose right hand at time ``t`` s (sways +-4 cm at 0.5 Hz)."""
    rest = np.asarray(load_hand_model().rest_pose, np.float64)
    p = rest @ np.diag([1.0, -1.0, -1.0]).T  # fingers up in the image, palm to the camera
    centre = np.array([0.04 * np.sin(np.pi * t), 0.01, 0.5])
    return p - p[9] + centre


def draw_frame(joints: np.ndarray, index: int, with_depth: bool = True
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """The RGB image (H, W, 3) uint8 and depth (H, W) float32 metres of a hand."""
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[..., 0] = np.linspace(40, 90, W, dtype=np.float32)[None, :].astype(np.uint8)
    rgb[..., 1] = np.linspace(50, 110, H, dtype=np.float32)[:, None].astype(np.uint8)
    rgb[..., 2] = 120
    depth = np.full((H, W), 0.9, np.float32) if with_depth else None
    uv = np.asarray(project(joints, K))
    for a, b in BONES:
        pa, pb = tuple(int(round(v)) for v in uv[a]), tuple(int(round(v)) for v in uv[b])
        cv2.line(rgb, pa, pb, (225, 180, 150), 7)
        if depth is not None:
            cv2.line(depth, pa, pb, float((joints[a, 2] + joints[b, 2]) / 2), 7)
    cv2.putText(rgb, str(index), (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    return rgb, depth


def true_hand(joints: np.ndarray) -> HandPose:
    return HandPose(joints=joints, uv=np.asarray(project(joints, K)), handedness="right",
                    handedness_score=0.9, confidence=np.full(21, 0.8, np.float32),
                    corrected=True, track_id=1)


def make_session(path: Path, n: int = 30, fps: float = 30.0, with_depth: bool = True,
                 labels: bool = False, results: bool = True) -> Path:
    """Write the synthetic session (module docstring) to ``path``; returns it.

    ``labels``: every third frame gets a done label (true 2D + 3D joints); ``results``: the
    true hands are recorded as the frames' tracking results (else ``hands: null``)."""
    with SessionWriter(path, K=K, source="synthetic test hand", fsync="close") as w:
        for i in range(n):
            t = i / fps
            joints = hand_at(t)
            rgb, depth = draw_frame(joints, i, with_depth)
            frame = Frame(rgb=rgb, K=K, depth=depth, timestamp=t, index=i)
            w.append_frame(frame, FrameResult(frame, (true_hand(joints),), {"total": 1.0})
                           if results else None)
        if labels:
            for i in range(0, n, 3):
                j = hand_at(i / fps)
                w.append_label(i, uv=np.asarray(project(j, K)), joints3d=j,
                               handedness="right", author="test", method="manual", done=True)
    return path


class StandInEstimator:
    """Test double of ``HandPoseEstimator`` (module docstring).

    Args:
        session: the synthetic session whose true hands it returns.
        delay_s: time ``process`` takes (sleeps, releasing the GIL like a real network).
    """

    def __init__(self, session: Path, delay_s: float = 0.0, options: dict[str, Any] | None
                 = None, parent: StandInEstimator | None = None) -> None:
        self.session = Path(session)
        self.delay_s = delay_s
        self.options = dict(options or {})
        self._reader = parent._reader if parent is not None else SessionReader(session)
        self.calls = 0
        self.closed = False
        self.resets = 0
        self.lock = threading.Lock()

    def with_options(self, **options: Any) -> StandInEstimator:
        return StandInEstimator(self.session, self.delay_s, options, parent=self)

    def reset(self) -> None:
        self.resets += 1

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            self.calls += 1
        try:
            hands = self._reader.poses(self._reader.position(frame.index)) or ()
        except KeyError:
            hands = ()
        ms = (time.perf_counter() - t0) * 1000.0
        return FrameResult(frame=frame, hands=tuple(hands),
                           timings_ms={"network": ms, "total": ms})

    def close(self) -> None:
        self.closed = True


class LostCamera(FrameSource):
    """A live source that stops delivering after ``n`` frames, as an unplugged camera."""

    live = True

    def __init__(self, n: int) -> None:
        super().__init__()
        self._setup(name="camera 7", size=(64, 48), fps=30.0, K=None, has_depth=False)
        self.n, self.i = n, 0

    def _read(self) -> Frame | None:
        if self.i >= self.n:
            raise SourceLost("camera 7 stopped delivering frames (no frame for 2.0 s)")
        self.i += 1
        time.sleep(1 / 60)
        return Frame(rgb=np.zeros((48, 64, 3), np.uint8), K=self.K, timestamp=self.i / 30,
                     index=self.i)


def tiny_checkpoint(path: Path, training: dict | None = None) -> Path:
    """A random-weight width-8 ResNet-18 PoseNet checkpoint (64 px input; the tiny preset's
    shape) at ``path``, with ``training`` metadata."""
    from handpose.core.checkpoint import save_checkpoint
    from handpose.core.models import build_model

    model = build_model("posenet_resnet18", width=8)
    return save_checkpoint(path, model, input_size=64, training=training)
