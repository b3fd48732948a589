"""Temporal smoothing of one tracked hand: One Euro filters, one per part of the pose.

A hand's camera-frame joints (21, 3) are split into parts whose noise and motion differ, and
each part gets its own :class:`~.filters.OneEuroFilter`. Four give the smoothed 3D joints:

* **root image position** — the wrist's projection (u, v) in pixels, with its speed measured in
  hand sizes per second (the side of the keypoints' image box), as MediaPipe does: a hand
  moving by its own width per second is filtered alike near and far from the camera.
* **root depth** — the wrist's Z in metres. It is solved from the 2D keypoints and is the
  noisiest coordinate; on its own, its jitter neither moves the hand in the image (the root is
  put back on the ray of the filtered wrist pixel) nor raises the cutoff of the other parts.
* **pose in the image plane** — root-relative X, Y of every joint (metres), one cutoff per
  joint from the norm of its in-plane velocity (the same for any direction of motion). They
  are taken with the wrist at the *smoothed* depth (each joint on its keypoint's ray, at that
  depth plus its own relative depth): the lifted X, Y scale with the solved root depth, whose
  noise would otherwise stretch the pose sideways (on real_eval_hgc, tracked: 3D jitter 28.3
  -> 24.6 mm, benchmarks/RESULTS.md).
* **pose depth** — root-relative Z of every joint (metres).

Filtering the 63 camera-frame coordinates one by one instead (the previous default, 1.5 Hz,
beta 10 s/m) mixed the root's depth noise into the hand's motion: on real_eval_hgc it lagged the
fast gestures (tracked 2D PCK@0.2 0.773, unfiltered 0.825; this split 0.817) and on both that
video and the demo it jittered more (benchmarks/RESULTS.md, "Smoothing", 2026-11-22).

A fifth gives the smoothed 2D keypoints, filtered where they were measured, in the image:

* **pose image** — every joint's pixel offset from the wrist's pixel, one cutoff per joint from
  its image speed in hand sizes per second; the keypoints are the filtered wrist pixel plus
  these offsets.

The 3D joints keep their metric size through the solved root depth's noise (the lift fixes the
hand's size, not its distance); projecting them with the smoothed root depth would let that
noise scale the hand in the image, and it lagged fast gestures: on real_eval_hgc, tracked,
keypoints filtered in the image scored PCK@0.2 0.848 against 0.828 for the projected 3D output
(unfiltered 0.841), with less 2D jitter (benchmarks/RESULTS.md, "Keypoints filtered in the
image").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ..skeleton import NUM_JOINTS
from .filters import OneEuroFilter, OneEuroParams

__all__ = ["HandSmoothing", "HandFilter", "SMOOTHING_LEVELS", "MIN_ROOT_DEPTH"]

#: Metres. A wrist closer to the camera plane is a failed lift: not filtered.
MIN_ROOT_DEPTH = 0.01

#: Named smoothing strengths (0 = no filter, 0.5 = the default settings).
SMOOTHING_LEVELS: dict[str, float] = {"off": 0.0, "light": 0.25, "medium": 0.5,
                                      "strong": 0.75, "maximum": 1.0}


@dataclass(frozen=True)
class HandSmoothing:
    """One Euro settings of the five parts of a hand (see the module docstring).

    Attributes:
        root_image: the wrist's pixel position; ``beta`` per (hand sizes / s).
        root_depth: the wrist's depth; ``beta`` per (m / s).
        pose_plane: root-relative in-plane joint positions; ``beta`` per (m / s) of each
            joint's in-plane speed.
        pose_depth: root-relative joint depths; ``beta`` per (m / s).
        pose_image: each joint's pixel offset from the wrist; ``beta`` per (hand sizes / s)
            of its image speed.

    The defaults were chosen on the shipped demo sequence (``assets/demo``, our own render):
    the least smoothing whose 2D and 3D jitter there are no higher than the previous
    per-coordinate filter's (1.5 Hz, beta 10 s/m).
    """

    root_image: OneEuroParams = OneEuroParams(min_cutoff=1.5, beta=2.0, d_cutoff=1.0)
    root_depth: OneEuroParams = OneEuroParams(min_cutoff=0.5, beta=5.0, d_cutoff=1.0)
    pose_plane: OneEuroParams = OneEuroParams(min_cutoff=1.0, beta=5.0, d_cutoff=1.0)
    pose_depth: OneEuroParams = OneEuroParams(min_cutoff=0.5, beta=5.0, d_cutoff=1.0)
    pose_image: OneEuroParams = OneEuroParams(min_cutoff=1.0, beta=2.0, d_cutoff=1.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            if not isinstance(getattr(self, f.name), OneEuroParams):
                raise ValueError(f"HandSmoothing.{f.name} must be OneEuroParams; "
                                 f"got {getattr(self, f.name)!r}")

    def scaled(self, factor: float) -> HandSmoothing:
        """Every ``min_cutoff`` x ``factor`` (> 0): above 1 smooths less, below 1 more."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor must be a positive number; got {factor!r}")
        return HandSmoothing(**{f.name: replace(getattr(self, f.name),
                                                min_cutoff=getattr(self, f.name).min_cutoff
                                                * factor) for f in fields(self)})

    @classmethod
    def at_strength(cls, strength: float) -> HandSmoothing | None:
        """The default settings at a strength in [0, 1] (0: no filter, None).

        Every ``min_cutoff`` is x ``4 ** (1 - 2 * strength)``: 4x (light) near 0, the defaults
        at 0.5, 1/4 (smoothest) at 1.
        """
        s = float(strength)
        if not (math.isfinite(s) and 0.0 <= s <= 1.0):
            raise ValueError(f"smoothing strength must be in [0, 1]; got {strength!r}")
        return None if s == 0.0 else cls().scaled(4.0 ** (1.0 - 2.0 * s))


class HandFilter:
    """Stateful smoothing of one hand's joints (one per track; see the module docstring).

    Example::

        f = HandFilter(HandSmoothing())
        smoothed = f(joints, K, timestamp)   # (21, 3) metres, camera frame; K (3, 3); seconds
        smoothed, uv = f.smooth(joints, K, timestamp)   # and the (21, 2) keypoints, pixels
        smoothed, uv = f.smooth(joints, K, timestamp, keypoints)   # measured (21, 2) given

    The first sample passes through unchanged; ``reset()`` forgets the past. A pose whose wrist
    is closer to the camera plane than :data:`MIN_ROOT_DEPTH` (a failed lift) passes through
    unchanged and restarts the filter.
    """

    def __init__(self, smoothing: HandSmoothing | None = None) -> None:
        self.smoothing = smoothing or HandSmoothing()
        if not isinstance(self.smoothing, HandSmoothing):
            raise ValueError(f"smoothing must be HandSmoothing; got {smoothing!r}")
        s = self.smoothing
        self._root_image = OneEuroFilter(s.root_image, vector_axis=-1)
        self._root_depth = OneEuroFilter(s.root_depth)
        self._pose_plane = OneEuroFilter(s.pose_plane, vector_axis=-1)
        self._pose_depth = OneEuroFilter(s.pose_depth)
        self._pose_image = OneEuroFilter(s.pose_image, vector_axis=-1)

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        for f in (self._root_image, self._root_depth, self._pose_plane, self._pose_depth,
                  self._pose_image):
            f.reset()

    def __call__(self, joints: Any, K: Any, timestamp: float) -> np.ndarray:
        """Filter one frame's joints: the first result of :meth:`smooth`."""
        return self.smooth(joints, K, timestamp)[0]

    def smooth(self, joints: Any, K: Any, timestamp: float, keypoints: Any = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Filter one frame.

        Args:
            joints: (21, 3) camera-frame joints, metres.
            K: (3, 3) the frame's camera intrinsics (pixels).
            timestamp: seconds, increasing from call to call.
            keypoints: (21, 2) the measured keypoints, pixels, that ``joints`` were lifted
                from (each joint on its keypoint's camera ray), or None to project
                ``joints``. Given, they are what is filtered in the image, also where a
                joint lies at or behind the camera plane and its projection means nothing.

        Returns:
            (21, 3) filtered joints, metres, float64, and (21, 2) filtered keypoints, pixels
            (the measured keypoints filtered in the image; not the projection of the
            filtered joints).
        """
        j = np.asarray(joints, dtype=np.float64)
        k = np.asarray(K, dtype=np.float64)
        if j.shape != (NUM_JOINTS, 3) or k.shape != (3, 3):
            raise ValueError(f"joints must be ({NUM_JOINTS}, 3) metres and K (3, 3); "
                             f"got {j.shape} and {k.shape}")
        if not np.all(np.isfinite(j)):
            raise ValueError("joints must be finite (metres)")
        # projected and lifted inline, not through geometry.camera's project / unproject:
        # their input checks (done once above) made this filter ~1.7x slower per frame
        if keypoints is None:
            pix = j @ k.T
            uv = pix[:, :2] / np.maximum(pix[:, 2:], MIN_ROOT_DEPTH)
        else:
            uv = np.array(keypoints, dtype=np.float64)
            if uv.shape != (NUM_JOINTS, 2) or not np.all(np.isfinite(uv)):
                raise ValueError(f"keypoints must be finite ({NUM_JOINTS}, 2) pixels; "
                                 f"got shape {uv.shape}")
        if j[0, 2] < MIN_ROOT_DEPTH:  # a failed lift, not a hand: pass it on, start afresh
            self.reset()
            return j.copy(), uv
        side = float(np.max(uv.max(0) - uv.min(0)))
        speed_scale = 1.0 / max(side, 1.0)
        root_uv = self._root_image(uv[0], timestamp, speed_scale=speed_scale)
        root_z = float(self._root_depth(j[:1, 2], timestamp)[0])
        k_inv = np.linalg.inv(k)  # pixels -> camera rays (x/z, y/z, 1)
        root = (k_inv[:, :2] @ root_uv + k_inv[:, 2]) * root_z
        rays = uv @ k_inv[:2, :2].T + k_inv[:2, 2]
        if keypoints is None:  # a joint at or behind the camera plane has no ray: left as is
            rays[j[:, 2] < MIN_ROOT_DEPTH] = rays[0]
        rel = j - j[:1]
        # the in-plane offsets as if the wrist stood at the smoothed depth: every joint moved
        # along its ray by the same depth change as the wrist (X = ray x Z), so the solved
        # root depth's noise does not stretch the pose sideways
        plane_in = rel[:, :2] + (rays - rays[:1]) * (root_z - j[0, 2])
        plane = self._pose_plane(plane_in, timestamp)
        depth = self._pose_depth(rel[:, 2], timestamp)
        keypoints = root_uv + self._pose_image(uv - uv[:1], timestamp, speed_scale=speed_scale)
        return np.concatenate([plane, depth[:, None]], axis=1) + root, keypoints
