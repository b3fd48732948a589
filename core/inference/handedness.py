"""Handedness of a tracked hand: the chirality of each frame's 3D pose, voted over the track.

:func:`chirality_margin` measures how much less a pose violates the biomechanical constraints
as a right hand than as its mirror image (a left hand); :class:`HandednessVote` accumulates
those margins over a track with forgetting.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..biomech.constraints import limits_for, total_excess_right
from ..biomech.frames import mirror_x
from ..handmodel import HandModel
from ..skeleton import NUM_JOINTS

__all__ = ["chirality_margin", "HandednessVote"]


def chirality_margin(joints: Any, model: HandModel | None = None) -> np.ndarray:
    """How much more plausible each pose is as a right hand than as a left hand.

    ``total violation as a left hand - total violation as a right hand`` (the sum of all
    biomechanical interval excesses, radians and ratios mixed, of the pose and of its mirror
    image): positive = right hand. A flat hand is its own mirror image up to a rotation, so its
    margin is near 0; flexed fingers make the chirality clear.

    Args:
        joints: (N, 21, 3) metres (any rigid frame; the camera frame).
        model: hand model (default: the shipped one).

    Returns:
        (N,) float64.
    """
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (N, 21, 3) metres; got {j.shape}")
    if len(j) == 0:
        return np.zeros(0)
    both = np.asarray(total_excess_right(np.concatenate([j, mirror_x(j)]), limits_for(model)))
    return np.asarray(both[len(j):] - both[:len(j)], dtype=np.float64)


class HandednessVote:
    """Handedness voted over a track.

    Each frame votes ``tanh(margin / margin_scale)`` in (-1, 1) (positive = right), so frames
    whose chirality is unclear (a flat hand, a noisy pose) count little. Votes are summed with
    an exponential forgetting ``decay`` per frame (a long track can still flip if the evidence
    changes, e.g. after an early mistake). ``p_right = (1 + S / W) / 2`` with S the decayed sum
    of votes and W the decayed number of votes.

    The chirality test costs about as much as the biomechanical correction, and a settled vote
    changes slowly, so a track votes on each of its first ``warmup`` frames and then on every
    ``every``-th (:meth:`wants_vote`); ``decay`` applies per vote. The estimator runs a voting
    frame's crop through the network twice (as it is and mirrored), so the schedule is also
    the cost: 4 and 15 add ~7 % crops to a long track (10 and 4 added ~30 %, about 1 ms a
    frame on the tracked real_eval_hgc video); one clear vote already moves p_right past the
    estimator's mirroring threshold.

    Args:
        margin_scale: margin (see :func:`chirality_margin`) of a confident vote (*choose*:
            0.2, about 11 degrees of joint-limit excess).
        decay: forgetting factor per vote in (0, 1].
        warmup: frames of a new track that all vote (>= 1).
        every: after the warm-up, one frame in ``every`` votes (>= 1; 1 = every frame).
    """

    def __init__(self, margin_scale: float = 0.2, decay: float = 0.97, warmup: int = 4,
                 every: int = 15) -> None:
        if not margin_scale > 0:
            raise ValueError(f"margin_scale must be > 0; got {margin_scale}")
        if not 0 < decay <= 1:
            raise ValueError(f"decay must be in (0, 1]; got {decay}")
        if warmup < 1 or every < 1:
            raise ValueError(f"warmup and every must be >= 1; got {warmup}, {every}")
        self.margin_scale = float(margin_scale)
        self.decay = float(decay)
        self.warmup, self.every = int(warmup), int(every)
        self._sum = 0.0
        self._weight = 0.0

    def wants_vote(self, age: int) -> bool:
        """Whether frame ``age`` (1 = the track's first frame) of the track votes."""
        return age <= self.warmup or (age - self.warmup) % self.every == 0

    def update(self, margin: float) -> None:
        """Add one frame's chirality margin (NaN is ignored)."""
        if not math.isfinite(margin):
            return
        self._sum = self.decay * self._sum + math.tanh(margin / self.margin_scale)
        self._weight = self.decay * self._weight + 1.0

    @property
    def p_right(self) -> float:
        """Probability-like score in [0, 1] that the hand is a right hand (0.5: no evidence)."""
        return 0.5 if self._weight == 0 else 0.5 * (1.0 + self._sum / self._weight)

    @property
    def handedness(self) -> str:
        """"right" or "left" (ties: "right")."""
        return "right" if self.p_right >= 0.5 else "left"

    @property
    def score(self) -> float:
        """Confidence of :attr:`handedness` in [0.5, 1]."""
        p = self.p_right
        return max(p, 1.0 - p)
