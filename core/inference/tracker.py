"""Hand tracks across frames: detection scheduling, crops, association, IDs, handedness votes.

The tracker decides, frame by frame, where the pose network looks (MediaPipe's scheme):

* **Crops.** A tracked hand is cropped around its keypoints of the previous frame
  (:func:`~handpose.core.geometry.crop_from_keypoints`, side ``margin`` x the keypoint box),
  turned so that the wrist -> middle-MCP axis points up (:func:`upright_rotation`); a new hand
  is cropped from the palm detector's rotated region (already upright and about 1.4x the
  keypoint box, measured on ``real_eval_hgc``).
* **Detection schedule** (:meth:`HandTracker.should_detect`): the detector runs when no hand
  is tracked, on the frame after a track's confidence fell below ``redetect_confidence``, and,
  while fewer hands than ``max_hands`` are tracked, once every ``detect_every`` frames, never on
  every frame.
* **Association.** A detection that overlaps a track (box IoU above ``iou_threshold`` or its
  centre inside the track's keypoint box) belongs to that track: it is dropped, or, for a weak
  track, re-seeds its crop (same ID). The remaining detections (non-maximum suppressed) start
  new tracks in the free slots. After the network, a track whose keypoints collapsed or whose
  centre left the image is lost; of two tracks that converged on one hand, the younger is
  dropped. A track whose mean joint confidence fell below ``min_confidence`` is *held*: the
  detector looks again (on the same frame through :meth:`HandTracker.reseed` when it had not
  run yet, else on the next) and an overlapping detection re-seeds the track, keeping its ID,
  vote and filter; without one it is lost. A crop seeded by a detection scoring at least
  ``detection_presence`` holds a hand whatever the network's confidence.
* **IDs.** Each new track gets the next integer. A hand that leaves the image and comes back
  gets a NEW ID: without an appearance model a re-entering hand cannot be told from another one.
* **Handedness** is voted over the track (:class:`~.handedness.HandednessVote`) from the
  chirality of each frame's 3D pose (:func:`~.handedness.chirality_margin`): how much less the
  pose violates the biomechanical constraints as a right hand than as its mirror image, a left
  hand.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..geometry.crop import (
    DEFAULT_CROP_SIZE,
    DEFAULT_MARGIN,
    crop_from_keypoints,
    square_crop_affine,
    upright_rotation,
)
from ..skeleton import NUM_JOINTS
from .detector import HandDetection
from .hand_filter import HandFilter
from .handedness import HandednessVote

__all__ = [
    "upright_rotation",
    "keypoint_box",
    "box_iou",
    "Track",
    "CropPlan",
    "HandTracker",
]



def keypoint_box(uv: Any) -> np.ndarray:
    """(..., N, 2) pixels -> (..., 4) axis-aligned box (x, y, w, h) of the keypoints."""
    q = np.asarray(uv, dtype=np.float64)
    if q.ndim < 2 or q.shape[-1] != 2:
        raise ValueError(f"uv must have shape (..., N, 2) pixels; got {q.shape}")
    lo, hi = q.min(-2), q.max(-2)
    return np.concatenate([lo, hi - lo], -1)


def box_iou(a: Any, b: Any) -> float:
    """Intersection over union of two (4,) boxes (x, y, w, h) in pixels (0 if either is empty)."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = max(aw, 0.0) * max(ah, 0.0) + max(bw, 0.0) * max(bh, 0.0) - inter
    return inter / union if union > 0 else 0.0


def _contains(box: np.ndarray, point: Any) -> bool:
    x, y = float(point[0]), float(point[1])
    return bool(box[0] <= x <= box[0] + box[2] and box[1] <= y <= box[1] + box[3])


@dataclass
class Track:
    """One tracked hand (mutable state, owned by :class:`HandTracker`).

    Attributes:
        track_id: stable ID.
        uv: (21, 2) the network's keypoints of the last frame, full-image pixels (raw, not
            filtered: the next crop follows the hand without the filter's lag).
        confidence: mean joint confidence of the last frame.
        age: frames tracked.
        weak: the last confidence was below ``redetect_confidence`` on a crop no detection
            vouched for: re-detect next frame.
        vote: the handedness vote.
        joint_filter: the smoothing of the 3D joints and 2D keypoints (None when filtering is off).
        scales: recent reference-bone lengths measured from depth (metres).
        held: the last confidence was below ``min_confidence``: not reported; the next
            detection (same frame through :meth:`HandTracker.reseed`, or the next frame)
            re-seeds it if it overlaps, else it is lost.
    """

    track_id: int
    uv: np.ndarray
    confidence: float = 1.0
    age: int = 0
    weak: bool = False
    vote: HandednessVote = field(default_factory=HandednessVote)
    joint_filter: HandFilter | None = None
    scales: deque[float] = field(default_factory=lambda: deque(maxlen=30))
    held: bool = False

    @property
    def box(self) -> np.ndarray:
        """(4,) keypoint box (x, y, w, h) of the last frame, pixels."""
        return keypoint_box(self.uv)


@dataclass(frozen=True)
class CropPlan:
    """One crop of the frame's network batch.

    Attributes:
        affine: (2, 3) full-image pixels -> crop pixels.
        track: the track it continues, or None for a new hand.
        detection: the detection it comes from, or None (a crop from keypoints).
    """

    affine: np.ndarray
    track: Track | None
    detection: HandDetection | None


class HandTracker:
    """Tracks of up to ``max_hands`` hands (see the module docstring).

    Args:
        max_hands: at most this many hands.
        detect_every: while fewer than ``max_hands`` hands are tracked, look for new ones every
            this many frames (>= 1).
        min_confidence: mean joint confidence below which a track is lost.
        redetect_confidence: below it (but above ``min_confidence``) the next frame runs the
            detector and re-seeds the track's crop from an overlapping detection.
        iou_threshold: box IoU above which a detection is the same hand as a track.
        duplicate_iou: keypoint-box IoU above which two tracks are one hand.
        margin: crop side / keypoint-box side of tracking crops.
        out_size: crop side in pixels (the network input size).
        detection_scale: crop side / the detector region's side.
        min_box_px: a keypoint box smaller than this (pixels) is lost.
        detection_presence: a crop seeded on this frame by a palm detection scoring at least
            this holds a hand even when the network's confidence is below ``min_confidence``
            (the detector vouches for the hand on the frame it ran; the next frame's keypoint
            crop must convince the network, else the track is held). Above 1: the network's
            confidence alone decides.
            0.8: on real_eval_hgc the palm detector scored 0.84-0.98 on most hands the shipped
            network doubted; its false positives score lower.
        filter_factory: makes a :class:`~.hand_filter.HandFilter` for a new track's joints
            (None: no filtering).
    """

    def __init__(self, max_hands: int = 2, detect_every: int = 10, min_confidence: float = 0.3,
                 redetect_confidence: float = 0.5, iou_threshold: float = 0.3,
                 duplicate_iou: float = 0.5, margin: float = DEFAULT_MARGIN,
                 out_size: int = DEFAULT_CROP_SIZE, detection_scale: float = 1.0,
                 min_box_px: float = 8.0, detection_presence: float = 0.8,
                 filter_factory: Any = None) -> None:
        if not isinstance(max_hands, int) or isinstance(max_hands, bool) or max_hands < 1:
            raise ValueError(f"max_hands must be an int >= 1; got {max_hands!r}")
        if not isinstance(detect_every, int) or detect_every < 1:
            raise ValueError(f"detect_every must be an int >= 1 (frames); got {detect_every!r}")
        if not 0 <= min_confidence <= redetect_confidence <= 1:
            raise ValueError("need 0 <= min_confidence <= redetect_confidence <= 1; got "
                             f"{min_confidence}, {redetect_confidence}")
        for name, v in (("iou_threshold", iou_threshold), ("duplicate_iou", duplicate_iou)):
            if not 0 < v <= 1:
                raise ValueError(f"{name} must be in (0, 1]; got {v}")
        if not margin > 0 or not detection_scale > 0 or not min_box_px > 0:
            raise ValueError("margin, detection_scale and min_box_px must be > 0")
        if not detection_presence >= 0:
            raise ValueError(f"detection_presence must be >= 0 (a detector score; > 1 turns "
                             f"it off); got {detection_presence}")
        self.max_hands = max_hands
        self.detect_every = detect_every
        self.min_confidence = float(min_confidence)
        self.redetect_confidence = float(redetect_confidence)
        self.iou_threshold = float(iou_threshold)
        self.duplicate_iou = float(duplicate_iou)
        self.margin = float(margin)
        self.out_size = int(out_size)
        self.detection_scale = float(detection_scale)
        self.min_box_px = float(min_box_px)
        self.detection_presence = float(detection_presence)
        self.filter_factory = filter_factory
        self.tracks: list[Track] = []
        self._next_id = 0
        self._since_detect = 0
        self._force_detect = True

    def reset(self) -> None:
        """Forget every track (IDs keep counting up)."""
        self.tracks = []
        self._since_detect = 0
        self._force_detect = True

    def should_detect(self) -> bool:
        """Whether the detector runs on this frame (call once per frame, before :meth:`plan`)."""
        self._since_detect += 1
        if not self.tracks or self._force_detect or any(t.weak for t in self.tracks):
            return True
        return len(self.tracks) < self.max_hands and self._since_detect >= self.detect_every

    def detection_affine(self, det: HandDetection) -> np.ndarray:
        """(2, 3) crop of a detection: its rotated region, side x ``detection_scale``."""
        side = max(det.size) * self.detection_scale
        return np.asarray(square_crop_affine(np.asarray(det.center, np.float64), side,
                                             self.out_size, det.rotation))

    def track_affine(self, track: Track) -> np.ndarray:
        """(2, 3) crop around a track's last keypoints, turned upright."""
        return np.asarray(crop_from_keypoints(track.uv, self.margin, self.out_size,
                                              upright_rotation(track.uv)))

    def _matches(self, det: HandDetection, box: np.ndarray) -> bool:
        return box_iou(det.box(), box) > self.iou_threshold or _contains(box, det.center)

    def plan(self, detections: list[HandDetection] | None) -> list[CropPlan]:
        """The crops of this frame: one per track, then one per new hand.

        Args:
            detections: the detector's output on this frame, or None if it did not run.

        Returns:
            the crops, tracks first (in track order), new hands after.
        """
        fresh: list[HandDetection] = []
        seeds: dict[int, HandDetection] = {}  # track ID -> the detection re-seeding it
        if detections is not None:
            self._since_detect = 0
            self._force_detect = False
            ranked = sorted(detections, key=lambda d: -d.score)
            for t in self.tracks:
                det = self._best_detection(t, ranked) if t.weak else None
                if det is not None:
                    seeds[t.track_id] = det
            fresh = self._new_hands(ranked)
        self.tracks = [t for t in self.tracks if not t.held or t.track_id in seeds]
        plans = []
        for t in self.tracks:
            det = seeds.get(t.track_id)
            plans.append(CropPlan(self.track_affine(t), t, None) if det is None
                         else CropPlan(self.detection_affine(det), t, det))
        return plans + self._new_hand_plans(fresh)

    def _best_detection(self, track: Track, ranked: list[HandDetection]
                        ) -> HandDetection | None:
        """The best-scoring detection of ``ranked`` (best first) overlapping the track."""
        return next((d for d in ranked if self._matches(d, track.box)), None)

    def _new_hands(self, ranked: list[HandDetection]) -> list[HandDetection]:
        """The detections (best first) that overlap no track nor a better detection."""
        fresh: list[HandDetection] = []
        for det in ranked:
            if not any(self._matches(det, t.box) for t in self.tracks) and not any(
                    box_iou(det.box(), f.box()) > self.iou_threshold for f in fresh):
                fresh.append(det)
        return fresh

    def _new_hand_plans(self, fresh: list[HandDetection]) -> list[CropPlan]:
        free = max(self.max_hands - len(self.tracks), 0)
        return [CropPlan(self.detection_affine(d), None, d) for d in fresh[:free]]

    def reseed(self, detections: list[HandDetection]) -> list[CropPlan]:
        """A second pass on the same frame for the tracks held by :meth:`update`.

        Call after :meth:`update` left held tracks on a frame the detector had not run on, with
        the detector's output on that frame: each held track overlapping a detection (the
        highest-scoring one) gets a crop from it, keeping its ID; the others are lost, and
        detections overlapping no track start new hands in the free slots. Tracks that are
        not held are left alone. Feed the network's keypoints of these crops back through
        :meth:`update`.

        Returns:
            the crops of the re-seeded tracks, then of the new hands (possibly none).
        """
        self._since_detect = 0
        self._force_detect = False
        ranked = sorted(detections, key=lambda d: -d.score)
        plans, keep = [], []
        for t in self.tracks:
            if t.held:
                det = self._best_detection(t, ranked)
                if det is None:
                    continue
                plans.append(CropPlan(self.detection_affine(det), t, det))
            keep.append(t)
        self.tracks = keep
        return plans + self._new_hand_plans(self._new_hands(ranked))

    def _in_view(self, uv: np.ndarray, frame_size: tuple[int, int]) -> bool:
        """Finite keypoints, a box of at least ``min_box_px``, its centre in the image."""
        if not np.all(np.isfinite(uv)):
            return False
        box = keypoint_box(uv)
        if max(box[2], box[3]) < self.min_box_px:
            return False
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        w, h = frame_size
        return bool(-0.5 <= cx <= w - 0.5 and -0.5 <= cy <= h - 0.5)

    def update(self, plans: list[CropPlan], uv: np.ndarray, confidence: np.ndarray,
               frame_size: tuple[int, int]) -> list[tuple[int, Track]]:
        """Take the network's keypoints of this frame's crops.

        Args:
            plans: the crops of :meth:`plan`, in batch order.
            uv: (B, 21, 2) keypoints in full-image pixels.
            confidence: (B, 21) per-joint confidence in [0, 1].
            frame_size: (width, height) pixels.

        Returns:
            (batch row, track) of every hand alive after this frame, tracks first; new tracks
            have their new IDs. Lost tracks are gone from :attr:`tracks`.
        """
        if uv.shape != (len(plans), NUM_JOINTS, 2) or confidence.shape != uv.shape[:2]:
            raise ValueError(f"uv must be ({len(plans)}, 21, 2) and confidence "
                             f"({len(plans)}, 21); got {uv.shape} and {confidence.shape}")
        alive: list[tuple[int, Track]] = []
        held: list[Track] = []
        for row, plan in enumerate(plans):
            conf = float(np.mean(confidence[row]))
            vouched = plan.detection is not None and \
                plan.detection.score >= self.detection_presence
            seen = self._in_view(uv[row], frame_size)
            confident = vouched or conf >= self.min_confidence
            if plan.track is None:
                if not (seen and confident):
                    continue
                flt = self.filter_factory() if self.filter_factory else None
                track = Track(self._next_id, uv[row].copy(), conf, joint_filter=flt)
                self._next_id += 1
            else:
                track = plan.track
                if not (seen and confident):
                    self._force_detect = True  # look for the hand again at once
                    if seen and plan.detection is None:
                        track.held = track.weak = True  # the detector may re-seed it
                        held.append(track)
                    continue
                track.uv = uv[row].copy()
                track.confidence = conf
                track.held = False
            track.age += 1
            track.weak = conf < self.redetect_confidence and not vouched
            alive.append((row, track))
        alive = self._drop_duplicates(alive)
        planned = {id(p.track) for p in plans if p.track is not None}
        rest = [t for t in self.tracks if id(t) not in planned]  # not in this batch (reseed)
        self.tracks = [t for _, t in alive] + held + rest
        return alive

    def _drop_duplicates(self, alive: list[tuple[int, Track]]) -> list[tuple[int, Track]]:
        keep: list[tuple[int, Track]] = []
        for row, t in sorted(alive, key=lambda rt: rt[1].track_id):  # older first
            if any(box_iou(t.box, k.box) > self.duplicate_iou for _, k in keep):
                continue
            keep.append((row, t))
        return sorted(keep, key=lambda rt: rt[0])
