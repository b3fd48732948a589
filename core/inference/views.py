"""Which view of each hand crop the network sees: left hands mirrored, both views on votes.

Once a track's handedness vote says left (p_right <= :data:`MIRROR_BELOW`), its crops are
mirrored before the network (it sees a right hand) and the keypoints mirrored back: the
shipped network reads right hands. On the frames a track votes on its handedness
(:meth:`~.handedness.HandednessVote.wants_vote`), its crop goes through the network both as it
is and mirrored and the more confident view is kept: the vote (the chirality of the lifted
pose) then sees the view the network reads best. A network trained on right hands only
predicts a right hand in either view, so the chirality of one view alone tells which view it
was shown, not which hand it is (on real_eval_hgc's left hand: 0.33 of ground-truth crops
right, the more confident view 0.92; for a network of both hands 0.87 and 0.90).

Mirroring is folded into the crop's affine (:func:`~handpose.core.geometry.crop.mirror_affine`),
so it costs nothing and uncropping through the same affine brings the keypoints back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..geometry.crop import mirror_affine

__all__ = ["MIRROR_BELOW", "crop_views", "keep_more_confident"]

#: A track is a left hand for the network once its vote's p_right is at most this (a new
#: track, 0.5, is not mirrored until its first poses have voted).
MIRROR_BELOW = 0.4


def _votes_this_frame(plan: Any) -> bool:
    """Whether the crop's track votes on its handedness this frame (a new track does)."""
    return plan.track is None or bool(plan.track.vote.wants_vote(plan.track.age + 1))


def crop_views(plans: Sequence[Any], size: int, mirror_left: bool
               ) -> tuple[np.ndarray, np.ndarray]:
    """The affines to crop with, and which crops also run in the other view.

    Args:
        plans: the tracker's crop plans (``affine`` (2, 3) full-image px -> crop px, ``track``
            or None for a new detection).
        size: crop side S in pixels.
        mirror_left: mirror left tracks and run both views on voting frames (else the plain
            affines, no second views).

    Returns:
        views: (N + V, 2, 3) the N crops' affines (mirrored for left tracks), then the other
        view of each of the V voting crops; both: (V,) int indices of those crops in 0..N-1.
    """
    affines = np.stack([p.affine for p in plans])
    if not mirror_left:
        return affines, np.zeros(0, dtype=np.int64)
    left = np.array([p.track is not None and p.track.vote.p_right <= MIRROR_BELOW
                     for p in plans])
    if left.any():
        affines[left] = mirror_affine(affines[left], size)
    both = np.flatnonzero([_votes_this_frame(p) for p in plans])
    if len(both) == 0:
        return affines, both
    return np.concatenate([affines, mirror_affine(affines[both], size)]), both


def keep_more_confident(confidence: np.ndarray, n: int, both: np.ndarray) -> np.ndarray:
    """Rows to keep of a batch from :func:`crop_views`: each crop's own row, or its other
    view's row (n + k for ``both[k]``) where that view's mean joint confidence is higher.

    Args:
        confidence: (N + V, 21) in [0, 1]. n: N. both: (V,) from :func:`crop_views`.

    Returns:
        (N,) int row indices.
    """
    rows = np.arange(n)
    if len(both):
        other = n + np.arange(len(both))
        better = confidence[other].mean(axis=1) > confidence[both].mean(axis=1)
        rows[both[better]] = other[better]
    return rows
