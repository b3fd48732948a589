"""Which view of a crop the network sees (core/inference/views.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from handpose.core.geometry.crop import mirror_affine
from handpose.core.inference.handedness import HandednessVote
from handpose.core.inference.views import MIRROR_BELOW, crop_views, keep_more_confident


def _plan(shift: float, p_right: float | None, age: int = 20) -> SimpleNamespace:
    track = None
    if p_right is not None:
        vote = HandednessVote()
        vote.update(np.arctanh(2 * p_right - 1) * vote.margin_scale)  # one vote: p_right
        track = SimpleNamespace(vote=vote, age=age)
    return SimpleNamespace(affine=np.array([[1.0, 0.0, shift], [0.0, 1.0, 0.0]]), track=track)


def test_left_tracks_are_mirrored_and_voting_crops_get_both_views() -> None:
    vote = HandednessVote()
    settled = next(a for a in range(20, 60) if not vote.wants_vote(a + 1))
    plans = [_plan(1.0, 0.9, settled), _plan(2.0, 0.1, settled), _plan(3.0, None)]
    assert plans[1].track.vote.p_right <= MIRROR_BELOW < plans[0].track.vote.p_right
    views, both = crop_views(plans, 64, mirror_left=True)
    assert both.tolist() == [2]  # only the new track votes this frame
    np.testing.assert_allclose(views[0], plans[0].affine)
    np.testing.assert_allclose(views[1], mirror_affine(plans[1].affine, 64))
    np.testing.assert_allclose(views[3], mirror_affine(plans[2].affine, 64))
    plain, none = crop_views(plans, 64, mirror_left=False)
    assert len(none) == 0 and np.allclose(plain, np.stack([p.affine for p in plans]))


def test_the_more_confident_view_is_kept_and_ties_keep_the_first() -> None:
    conf = np.full((5, 21), 0.5)
    conf[3] = 0.9  # crop 0's other view is surer
    conf[4] = 0.5  # crop 2's other view ties
    assert keep_more_confident(conf, 3, np.array([0, 2])).tolist() == [3, 1, 2]
    assert keep_more_confident(conf[:3], 3, np.zeros(0, dtype=np.int64)).tolist() == [0, 1, 2]
