"""HandPoseEstimator: the real-time pipeline from a frame to metric 3D hands (DESIGN.md).

::

    Frame -> [palm detector, only when needed] -> crops (tracker) -> network (one batch)
          -> uncrop -> lift to metric 3D -> smoothing -> correct_pose -> [depth fit]
          -> FrameResult (hands with track IDs, handedness, per-joint confidence; timings)

Two answers per hand. ``HandPose.uv`` is the image evidence: the network's keypoints,
smoothed in the image (:meth:`~.hand_filter.HandFilter.smooth`). ``HandPose.joints`` is the 3D
pose after the biomechanical correction (and the depth fit), feasible by construction; where
the network's pose was infeasible its projection differs from ``uv`` (the correction moves
joints in the image too, away from what the image shows; benchmarks/RESULTS.md measures it),
and the per-joint confidence says by how much. Smoothing runs before the correction so the
reported 3D pose is itself feasible.

Scale. The metric size of a hand is not observable from one RGB image: a hand twice as large
twice as far away looks the same. The lift uses, in this order: the depth map (RGB-D frames;
root depth and, unless the user's size is known, the reference bone length, a running median
over the track); the user's hand size (``hand_scale``: bone lengths from
:func:`~handpose.core.inference.calibration.calibrate_hand_size`, or
:func:`~handpose.core.inference.calibration.hand_scale_from_length` for a measured hand
length); the default adult hand of the hand model (reference bone 4.6 cm). With a wrong scale
the 3D pose has the right shape and direction but the wrong distance (depth error in
proportion to the scale error).

Left hands. A hand voted left is shown to the network mirrored, as a right hand, and on the
frames a track votes on its handedness its crop runs in both views (``mirror_left``,
:mod:`.views`).

Timestamps. The smoothing needs increasing times: ``Frame.timestamp`` is used when it
increases; otherwise (e.g. all zero) the estimator advances its clock by 1/30 s per frame.

Per-joint confidence = the network's confidence x ``exp(-d / (0.5 s))``, d the distance the
correction moved the joint and s the reference bone length: a joint moved by half a bone
keeps 37 % of its confidence.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from functools import cached_property
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ..biomech.correct import correct_pose
from ..checkpoint import read_checkpoint_meta
from ..geometry.camera import default_intrinsics
from ..geometry.crop import apply_affine, crop_image, invert_affine
from ..geometry.lifting import lift_from_root_depth, lift_to_3d
from ..handmodel import load_hand_model
from ..safe_load import CheckpointError
from ..types import Frame, FrameResult, HandPose
from .backends import PoseBackend, load_backend
from .calibration import resolve_hand_scale
from .depth_lift import depth_scale_and_root
from .fitting import DepthFitParams, fit_to_depth
from .hand_filter import HandFilter, HandSmoothing
from .handedness import chirality_margin
from .tracker import HandTracker
from .views import MIRROR_BELOW, crop_views, keep_more_confident

__all__ = [
    "HandPoseEstimator",
    "STAGES",
    "DEFAULT_SMOOTHING",
    "default_checkpoint_path",
    "MAKE_DEFAULT_CHECKPOINT",
    "MIRROR_BELOW",
]

#: Keys of ``FrameResult.timings_ms`` (milliseconds; 0 for a stage that did not run).
#: "track" is the tracker's own work (crop planning, association, IDs).
STAGES: tuple[str, ...] = ("detect", "crop", "network", "track", "lift", "filter", "correct",
                           "fit", "total")
#: Smoothing of each hand (:mod:`.hand_filter`: wrist pixel, wrist depth, pose; the keypoints).
DEFAULT_SMOOTHING = HandSmoothing()
#: How the default checkpoint is made (named in the error when it is missing).
MAKE_DEFAULT_CHECKPOINT = (
    "it ships with handpose (assets/models); to make it again, render synthetic hands "
    "(handpose-data synth --n 60000 --size 224 --hands both --out SYNTH) and run "
    "handpose-train recipe default synthetic=SYNTH real=REAL_HAND_PHOTOS "
    "model_out=assets/models/default.pt (see assets/models/default.md for the exact run)"
)
_NOMINAL_DT = 1.0 / 30.0


def default_checkpoint_path() -> Path:
    """``assets/models/default.pt`` inside the installed ``handpose.assets`` package."""
    from handpose.assets import ASSETS_DIR

    return Path(ASSETS_DIR) / "models" / "default.pt"


class HandPoseEstimator:
    """Tracks hands in frames and returns metric 3D poses (see the module docstring).

    Args:
        checkpoint: a handpose checkpoint (``.pt``) or its ``.onnx`` export; None: the
            default ``assets/models/default.pt`` (:class:`CheckpointError` naming the path and
            how to make it when missing).
        device: "auto" (CUDA when present), "cpu", "cuda[:N]".
        backend: "auto" (torch on CUDA, ONNX Runtime on the CPU), "onnx", "torch", or a
            ready :class:`~handpose.core.inference.backends.PoseBackend` object.
        max_hands: at most this many hands.
        correct: apply :func:`~handpose.core.biomech.correct_pose`.
        smoothing: :class:`~.hand_filter.HandSmoothing` of each hand's joints (e.g.
            ``HandSmoothing.at_strength(0.75)``), None for no filtering.
        hand_scale: None (default adult hand), a size relative to it, or (20,) per-user bone
            lengths in metres (BONES order).
        fit_depth: refine poses against the frame's depth map (when it has one).
        detect_every: while fewer than ``max_hands`` hands are tracked, run the detector every
            this many frames.
        min_confidence, redetect_confidence: see
            :class:`~handpose.core.inference.tracker.HandTracker`. The default re-detects only
            when a track's confidence falls below min_confidence (0.3): then on that very
            frame, re-seeding the held track from the detection (a second network pass). With
            an earlier shipped model, whose median confidence on a real hand was ~0.4, 0.5
            re-ran the palm detector on 350 of 400 frames (64 vs 109 frames/s in
            benchmarks/pipeline.py).
        detection_presence: a palm detection scoring at least this vouches for its hand on
            that frame whatever the network's confidence (see the tracker).
        use_depth: lift with the depth map when a frame has one.
        detector: an object with ``detect(rgb) -> [HandDetection]`` (default: MediaPipe's
            palm detector, :class:`~handpose.core.inference.detector.PalmDetector`).
        threads: CPU threads of the network (None: the runtime's default).
        fit_params: :class:`~handpose.core.inference.fitting.DepthFitParams`.
        cache_dir: cache folder of ONNX exports.
        precision: "auto" (the int8 model shipped next to the checkpoint, e.g.
            ``default.int8.onnx`` beside ``default.pt``, when it was made from this
            checkpoint; else float32), "fp32" or "int8" (ONNX Runtime; quantized once with
            ``calibration`` and cached when no int8 model exists, else a
            :class:`CheckpointError` saying how to make one). See
            :func:`~handpose.core.inference.backends.load_backend`.
        calibration: hand crops for that one-time quantization (a Dataset of
            ``{"rgb": (3, S, S) uint8}`` samples, or normalised (B, 3, S, S) float32 batches).
        mirror_left: show the network a mirrored crop (a right hand) of every track whose
            handedness vote says left (p_right <= :data:`MIRROR_BELOW`), and mirror its
            keypoints back; on voting frames both views run and the more confident one is
            kept (module docstring). The shipped model's last stage saw right hands only: on
            the left hand of real_eval_hgc its ground-truth crops score PCK@0.2 0.925
            mirrored and 0.750 as they are (benchmarks/RESULTS.md, "Right hands only").

    Attributes:
        right_hands_only: the checkpoint's training saw right hands only (its metadata
            ``training.right_hands_only``, read on first use; False for an ONNX export or a
            given backend, whose training is not known): it needs ``mirror_left=True`` to read
            left hands.
    """

    def __init__(self, checkpoint: str | PathLike[str] | None = None, device: str = "auto",
                 backend: str | PoseBackend = "auto", max_hands: int = 2, correct: bool = True,
                 smoothing: HandSmoothing | None = DEFAULT_SMOOTHING, hand_scale: Any = None,
                 fit_depth: bool = False, detect_every: int = 10, min_confidence: float = 0.3,
                 redetect_confidence: float = 0.3, detection_presence: float = 0.8,
                 use_depth: bool = True,
                 detector: Any = None, threads: int | None = None,
                 fit_params: DepthFitParams | None = None,
                 cache_dir: str | PathLike[str] | None = None, precision: str = "auto",
                 calibration: Any = None, mirror_left: bool = True) -> None:
        if smoothing is not None and not isinstance(smoothing, HandSmoothing):
            raise ValueError("smoothing must be HandSmoothing (e.g. HandSmoothing.at_strength"
                             f"(0.5)) or None; got {smoothing!r}")
        self.bone_lengths, self.scale, self.size_factor = resolve_hand_scale(hand_scale)
        self._ref0 = load_hand_model().reference_bone_length
        self._options = dict(max_hands=max_hands, correct=correct, smoothing=smoothing,
                             hand_scale=hand_scale, fit_depth=fit_depth,
                             detect_every=detect_every, min_confidence=min_confidence,
                             redetect_confidence=redetect_confidence,
                             detection_presence=detection_presence, use_depth=use_depth,
                             fit_params=fit_params, mirror_left=mirror_left)
        self.correct = bool(correct)
        self.smoothing = smoothing
        self.fit_depth = bool(fit_depth)
        self.use_depth = bool(use_depth)
        self.mirror_left = bool(mirror_left)
        self.fit_params = fit_params or DepthFitParams()
        if isinstance(backend, str):
            path = Path(checkpoint) if checkpoint is not None else default_checkpoint_path()
            if checkpoint is None and not path.is_file():
                raise CheckpointError(f"no checkpoint given and the default checkpoint {path} "
                                      f"does not exist: {MAKE_DEFAULT_CHECKPOINT}; or pass a "
                                      "checkpoint (checkpoint=PATH, --checkpoint PATH)")
            self.backend: PoseBackend = load_backend(path, backend, device, threads, cache_dir,
                                                     precision, calibration)
            self._checkpoint = path if path.suffix.lower() == ".pt" else None
            if not self.mirror_left and self.right_hands_only:
                warnings.warn(f"{path.name} reads right hands only (its model card): with "
                              "mirror_left=False it reads left hands badly", stacklevel=2)
        else:
            if not callable(getattr(backend, "run", None)) or \
                    not isinstance(getattr(backend, "input_size", None), int):
                raise ValueError("backend must be 'auto', 'onnx', 'torch' or an object with "
                                 f"run(crops) and input_size; got {type(backend).__name__}")
            self.backend = backend
            self._checkpoint = None
        self.tracker = HandTracker(
            max_hands=max_hands, detect_every=detect_every, min_confidence=min_confidence,
            redetect_confidence=redetect_confidence, detection_presence=detection_presence,
            out_size=self.backend.input_size,
            filter_factory=(lambda: HandFilter(smoothing)) if smoothing else None)
        self._owns_detector = detector is None
        if detector is None:
            from .detector import PalmDetector

            detector = PalmDetector(max_hands=max_hands)
        if not callable(getattr(detector, "detect", None)):
            raise ValueError(f"detector must have a detect(rgb) method; got "
                             f"{type(detector).__name__}")
        self.detector = detector
        self._last_t: float | None = None
        self._count = 0

    # -- construction helpers ---------------------------------------------------------------

    def with_options(self, **options: Any) -> HandPoseEstimator:
        """A new estimator (fresh tracks) sharing this one's network and detector, with some
        options changed (``max_hands``, ``correct``, ``smoothing``, ``hand_scale``, ...)."""
        unknown = set(options) - set(self._options)
        if unknown:
            raise ValueError(f"unknown options {sorted(unknown)}; known: {sorted(self._options)}")
        merged = {**self._options, **options}
        twin = HandPoseEstimator(backend=self.backend, detector=self.detector, **merged)
        twin._owns_detector = False
        twin._checkpoint = self._checkpoint
        return twin

    @cached_property
    def right_hands_only(self) -> bool:
        """See the class docstring (the checkpoint's metadata is read only when asked: it loads
        the whole file, ~35 ms for the shipped one)."""
        return self._checkpoint is not None and \
            bool(read_checkpoint_meta(self._checkpoint).training.get("right_hands_only"))

    def reset(self) -> None:
        """Forget all tracks (e.g. when the source changes)."""
        self.tracker.reset()
        self._last_t = None

    def close(self) -> None:
        """Release the detector (if this estimator made it)."""
        if self._owns_detector and hasattr(self.detector, "close"):
            self.detector.close()

    def __enter__(self) -> HandPoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the pipeline ---------------------------------------------------------------------

    def _check_frame(self, frame: Any) -> Frame:
        if isinstance(frame, np.ndarray):
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frame must be a Frame or an (H, W, 3) uint8 RGB array; got "
                                 f"{frame.dtype} array of shape {frame.shape}")
            h, w = frame.shape[:2]
            frame = Frame(rgb=frame, K=default_intrinsics(w, h), index=self._count)
        if not isinstance(frame, Frame):
            raise ValueError(f"frame must be a handpose Frame or an (H, W, 3) uint8 array; got "
                             f"{type(frame).__name__}")
        h, w = frame.rgb.shape[:2]
        if h < 32 or w < 32:
            raise ValueError(f"frame.rgb must be at least 32 x 32 pixels; got {w} x {h}")
        if frame.depth is not None and not np.issubdtype(frame.depth.dtype, np.floating):
            raise ValueError(f"frame.depth must be float metres (H, W); got {frame.depth.dtype}")
        return frame

    def _clock(self, frame: Frame) -> float:
        t = float(frame.timestamp)
        if self._last_t is not None and not t > self._last_t:
            t = self._last_t + _NOMINAL_DT
        self._last_t = t
        return t

    def process(self, frame: Frame | np.ndarray) -> FrameResult:
        """Track the hands of one frame.

        Args:
            frame: a :class:`~handpose.core.types.Frame` (rgb (H, W, 3) uint8, K, optional
                depth (H, W) float metres), or a bare (H, W, 3) uint8 RGB array (default K).

        Returns:
            FrameResult with the hands (joints metres, uv pixels, track IDs, handedness,
            per-joint confidence) and ``timings_ms`` for every key of :data:`STAGES`.

        Raises:
            ValueError: a frame of the wrong type, dtype or shape.
        """
        t_start = time.perf_counter()
        frame = self._check_frame(frame)
        self._count += 1
        timings = dict.fromkeys(STAGES, 0.0)
        t_now = self._clock(frame)

        def lap(stage: str, t0: float) -> float:
            t1 = time.perf_counter()
            timings[stage] += (t1 - t0) * 1000.0
            return t1

        t0 = time.perf_counter()
        detections = self.detector.detect(frame.rgb) if self.tracker.should_detect() else None
        t0 = lap("detect", t0) if detections is not None else t0
        plans = self.tracker.plan(detections)
        t0 = lap("track", t0)
        if not plans:
            timings["total"] = (time.perf_counter() - t_start) * 1000.0
            return FrameResult(frame=frame, hands=(), timings_ms=timings)
        uv_all, z_all, conf_all, t0 = self._network(frame, plans, lap, t0)
        alive = self.tracker.update(plans, uv_all, conf_all, frame.size)
        t0 = lap("track", t0)
        if detections is None and any(t.held for t in self.tracker.tracks):
            # a track's confidence fell: look for its hand now rather than drop this frame
            detections = self.detector.detect(frame.rgb)
            t0 = lap("detect", t0)
            again = self.tracker.reseed(detections)
            if again:
                uv2, z2, conf2, t0 = self._network(frame, again, lap, t0)
                alive += [(r + len(plans), t) for r, t in
                          self.tracker.update(again, uv2, conf2, frame.size)]
                uv_all, z_all = np.concatenate([uv_all, uv2]), np.concatenate([z_all, z2])
                conf_all = np.concatenate([conf_all, conf2])
            t0 = lap("track", t0)
        if not alive:
            timings["total"] = (time.perf_counter() - t_start) * 1000.0
            return FrameResult(frame=frame, hands=(), timings_ms=timings)
        rows = [r for r, _ in alive]
        tracks = [t for _, t in alive]
        uv = uv_all[rows]
        z_rel = z_all[rows]
        conf = conf_all[rows]
        joints, scales = self._lift(frame, uv, z_rel, tracks)
        voters = [i for i, t in enumerate(tracks) if t.vote.wants_vote(t.age)]
        if voters:
            for i, m in zip(voters, chirality_margin(joints[voters])):
                tracks[i].vote.update(float(m))
        t0 = lap("lift", t0)
        # uv: the image evidence, before the correction moves joints to make the 3D pose
        # feasible; with smoothing, filtered in the image (HandFilter.smooth)
        uv_out = uv.astype(np.float64)
        if self.smoothing is not None:
            for i, t in enumerate(tracks):
                if t.joint_filter is not None:
                    joints[i], uv_out[i] = t.joint_filter.smooth(joints[i], frame.K, t_now,
                                                                 uv_out[i])
        t0 = lap("filter", t0)
        if self.correct:
            raw = joints
            joints = self._correct(joints, [t.vote.handedness for t in tracks])
            moved = np.linalg.norm(joints - raw, axis=-1)
            conf = conf * np.exp(-moved / (0.5 * scales[:, None]))
        t0 = lap("correct", t0)
        spheres: list[np.ndarray | None] = [None] * len(tracks)
        if self.fit_depth and frame.depth is not None:
            fit = fit_to_depth(joints, frame.depth, frame.K, scales / self._ref0,
                               self.fit_params)
            joints = fit.joints
            spheres = list(fit.spheres)
            t0 = lap("fit", t0)
        hands = tuple(
            HandPose(joints=joints[i], uv=uv_out[i], handedness=t.vote.handedness,
                     handedness_score=t.vote.score, confidence=conf[i].astype(np.float32),
                     corrected=self.correct, track_id=t.track_id, spheres=spheres[i])
            for i, t in enumerate(tracks))
        timings["total"] = (time.perf_counter() - t_start) * 1000.0
        return FrameResult(frame=frame, hands=hands, timings_ms=timings)

    def _network(self, frame: Frame, plans: Sequence[Any], lap: Any, t0: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """The crops of ``plans`` through the network in one batch (in their views,
        :mod:`.views`): (B, 21, 2) keypoints in full-image pixels, (B, 21) z_rel, (B, 21)
        confidence, and the lap clock."""
        s = self.backend.input_size
        views, both = crop_views(plans, s, self.mirror_left)
        crops = np.stack([crop_image(frame.rgb, a, s) for a in views])
        t0 = lap("crop", t0)
        pose = self.backend.run(crops)
        t0 = lap("network", t0)
        conf = np.asarray(pose.confidence)
        rows = keep_more_confident(conf, len(plans), both)
        uv = np.asarray(apply_affine(invert_affine(views[rows]), np.asarray(pose.uv)[rows]))
        return uv, np.asarray(pose.z_rel)[rows], conf[rows], t0

    def _lift(self, frame: Frame, uv: np.ndarray, z_rel: np.ndarray,
              tracks: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(N, 21, 3) metres and (N,) reference bone lengths used."""
        K = np.asarray(frame.K, np.float64)
        n = len(tracks)
        scales = np.full(n, self.scale)
        joints = np.empty((n, 21, 3))
        done = np.zeros(n, bool)
        if self.use_depth and frame.depth is not None:
            user = self.bone_lengths is not None
            for i, t in enumerate(tracks):
                if not user:
                    est = depth_scale_and_root(uv[i], z_rel[i], K, frame.depth)
                    if est is not None:
                        t.scales.append(est[0])
                    if not t.scales:
                        continue
                    scales[i] = float(np.median(t.scales))
                est = depth_scale_and_root(uv[i], z_rel[i], K, frame.depth, scale=scales[i])
                if est is None:
                    continue
                joints[i] = lift_from_root_depth(uv[i], z_rel[i], K, scales[i], est[1])
                done[i] = True
        todo = ~done
        if np.any(todo):
            # Z_root / s clamped to [2, 200]: 9 cm to 9 m for an adult hand, which keeps a raw
            # prediction without a real root (an untrained network) from lifting to infinity
            joints[todo] = np.asarray(lift_to_3d(uv[todo], z_rel[todo], K, scales[todo],
                                                 root_range=(2.0, 200.0)))
        return joints, scales

    def _correct(self, joints: np.ndarray, handedness: list[str]) -> np.ndarray:
        out = joints.copy()
        for side in ("right", "left"):
            idx = [i for i, h in enumerate(handedness) if h == side]
            if idx:
                out[idx] = correct_pose(joints[idx], self.bone_lengths, handedness=side)
        return out
