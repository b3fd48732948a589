"""Tracker: crop rotation, boxes, chirality, handedness votes, detection schedule, association,
held tracks."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_oracle import K_TRUE, place_hand

from handpose.core.geometry import apply_affine, crop_from_keypoints, project
from handpose.core.inference.detector import HandDetection
from handpose.core.inference.handedness import HandednessVote, chirality_margin
from handpose.core.inference.tracker import HandTracker, box_iou, keypoint_box, upright_rotation


@pytest.mark.parametrize("roll", [-2.5, -1.0, 0.0, 0.4, 1.3, 3.0])
def test_upright_rotation_puts_middle_mcp_above_wrist(roll):
    uv = np.asarray(project(place_hand((320, 240), 0.5, roll=roll), K_TRUE))
    r = upright_rotation(uv)
    q = np.asarray(apply_affine(crop_from_keypoints(uv, rotation=r), uv))
    d = q[9] - q[0]
    assert abs(d[0]) < 1e-6 * np.linalg.norm(d) + 1e-6
    assert d[1] < 0  # up in the crop
    assert -np.pi <= r < np.pi


def test_upright_rotation_batched_and_bad_shape():
    uv = np.stack([np.asarray(project(place_hand((300, 200), 0.5, roll=a), K_TRUE))
                   for a in (0.0, 0.5)])
    r = upright_rotation(uv)
    assert r.shape == (2,)
    np.testing.assert_allclose(r, [0.0, 0.5], atol=0.2)  # roll turns the hand about its MCP
    with pytest.raises(ValueError, match="21, 2"):
        upright_rotation(np.zeros((20, 2)))


def test_keypoint_box_and_iou_analytic():
    box = keypoint_box(np.array([[1.0, 2.0], [5.0, 3.0], [2.0, 8.0]]))
    np.testing.assert_allclose(box, [1, 2, 4, 6])
    assert box_iou([0, 0, 2, 2], [1, 1, 2, 2]) == pytest.approx(1 / 7)
    assert box_iou([0, 0, 2, 2], [0, 0, 2, 2]) == pytest.approx(1.0)
    assert box_iou([0, 0, 1, 1], [5, 5, 1, 1]) == 0.0
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0


def test_chirality_margin_tells_right_from_left():
    right = place_hand((320, 240), 0.5, roll=0.3)
    left = place_hand((320, 240), 0.5, roll=0.3, left=True)
    m = chirality_margin(np.stack([right, left]))
    assert m[0] > 0.1 and m[1] < -0.1
    assert m[0] == pytest.approx(-m[1])  # the mirror image swaps the two totals
    with pytest.raises(ValueError, match="N, 21, 3"):
        chirality_margin(right)


def test_handedness_vote_accumulates_and_forgets():
    v = HandednessVote(margin_scale=0.2, decay=0.9)
    assert v.p_right == 0.5 and v.handedness == "right"
    for _ in range(5):
        v.update(-1.0)
    assert v.handedness == "left" and v.score > 0.95
    v.update(0.01)  # an unclear frame barely moves it
    assert v.handedness == "left"
    for _ in range(30):
        v.update(1.0)
    assert v.handedness == "right"
    v.update(float("nan"))
    assert v.handedness == "right"
    with pytest.raises(ValueError):
        HandednessVote(decay=0.0)


def test_a_settled_track_votes_every_few_frames():
    v = HandednessVote(warmup=3, every=4)
    assert [a for a in range(1, 16) if v.wants_vote(a)] == [1, 2, 3, 7, 11, 15]
    assert all(HandednessVote(every=1).wants_vote(a) for a in range(1, 50))
    with pytest.raises(ValueError, match="warmup and every"):
        HandednessVote(every=0)


def _det(uv, score=0.9):
    box = keypoint_box(uv)
    c = box[:2] + box[2:] / 2
    side = 1.43 * box[2:].max()
    return HandDetection((float(c[0]), float(c[1])), (side, side), upright_rotation(uv), score)


def _uv(x, y=240.0, roll=0.0):
    return np.asarray(project(place_hand((x, y), 0.5, roll=roll), K_TRUE))


def test_schedule_detects_only_when_needed():
    tr = HandTracker(max_hands=2, detect_every=4)
    assert tr.should_detect()  # nothing tracked
    plans = tr.plan([_det(_uv(200))])
    tr.update(plans, _uv(200)[None], np.full((1, 21), 0.9), (640, 480))
    runs = []
    for _ in range(12):  # one hand of two: look for another every 4th frame only
        d = tr.should_detect()
        runs.append(d)
        plans = tr.plan([] if d else None)
        tr.update(plans, _uv(200)[None], np.full((1, 21), 0.9), (640, 480))
    assert runs == [False, False, False, True] * 3
    tr1 = HandTracker(max_hands=1, detect_every=2)
    tr1.should_detect()
    tr1.update(tr1.plan([_det(_uv(200))]), _uv(200)[None], np.full((1, 21), 0.9), (640, 480))
    assert not any(tr1.should_detect() for _ in range(5))  # all slots full: never


def test_detections_overlapping_a_track_are_dropped_and_new_ones_start_tracks():
    tr = HandTracker(max_hands=2)
    tr.should_detect()
    a, b = _uv(200), _uv(450)
    plans = tr.plan([_det(a), _det(a + 2.0, 0.8)])  # a duplicate detection of the same hand
    assert len(plans) == 1
    alive = tr.update(plans, a[None], np.full((1, 21), 0.9), (640, 480))
    assert [t.track_id for _, t in alive] == [0]
    plans = tr.plan([_det(a + 3.0), _det(b)])  # the tracked hand again, and a new one
    assert len(plans) == 2 and plans[0].track is tr.tracks[0] and plans[1].track is None
    assert plans[0].detection is None  # a healthy track keeps its keypoint crop
    alive = tr.update(plans, np.stack([a, b]), np.full((2, 21), 0.9), (640, 480))
    assert [t.track_id for _, t in alive] == [0, 1]


def test_low_confidence_loses_track_and_weak_track_is_reseeded():
    tr = HandTracker(max_hands=1, min_confidence=0.3, redetect_confidence=0.6)
    tr.should_detect()
    a = _uv(300)
    tr.update(tr.plan([_det(a)]), a[None], np.full((1, 21), 0.9), (640, 480))
    tr.should_detect()
    plans = tr.plan(None)
    tr.update(plans, a[None], np.full((1, 21), 0.45), (640, 480))  # weak, still alive
    assert tr.tracks[0].weak and tr.should_detect()
    plans = tr.plan([_det(a, score=0.4)])  # a detection too weak to vouch for the hand
    assert plans[0].detection is not None and plans[0].track is tr.tracks[0]  # re-seeded
    alive = tr.update(plans, a[None], np.full((1, 21), 0.1), (640, 480))
    assert alive == [] and tr.tracks == [] and tr.should_detect()


def test_a_confident_detection_vouches_for_the_hand_on_its_frame():
    tr = HandTracker(max_hands=1, min_confidence=0.3, redetect_confidence=0.3,
                     detection_presence=0.5)
    tr.should_detect()
    a = _uv(300)
    low = np.full((1, 21), 0.1)  # the network doubts the crop; the detector (0.9) does not
    alive = tr.update(tr.plan([_det(a, score=0.9)]), a[None], low, (640, 480))
    assert [t.track_id for _, t in alive] == [0] and not tr.tracks[0].weak
    assert not tr.should_detect()  # no detector on the next frame: the keypoint crop decides
    off = HandTracker(max_hands=1, detection_presence=1.01)  # the network alone decides
    off.should_detect()
    assert off.update(off.plan([_det(a, score=0.9)]), a[None], low, (640, 480)) == []


def test_a_doubtful_track_is_held_and_reseeded_on_the_same_frame():
    tr = HandTracker(max_hands=2, min_confidence=0.3, redetect_confidence=0.3)
    tr.should_detect()
    a, b = _uv(200), _uv(450)
    tr.update(tr.plan([_det(a)]), a[None], np.full((1, 21), 0.9), (640, 480))
    track = tr.tracks[0]
    tr.should_detect()
    plans = tr.plan(None)
    alive = tr.update(plans, (a + 4.0)[None], np.full((1, 21), 0.1), (640, 480))
    assert alive == [] and tr.tracks == [track] and track.held and track.weak
    np.testing.assert_allclose(track.uv, a)  # the doubtful keypoints are not taken
    again = tr.reseed([_det(b, 0.8), _det(a + 2.0, 0.95)])  # its hand, and a new one
    assert [p.track for p in again] == [track, None]
    assert all(p.detection is not None for p in again)
    alive = tr.update(again, np.stack([a, b]), np.full((2, 21), 0.9), (640, 480))
    assert [t.track_id for _, t in alive] == [0, 1] and not track.held  # same ID kept
    assert not tr.should_detect()  # both slots full, nobody weak
    # held again, and this time the detector does not see it: lost
    tr.update(tr.plan(None), np.stack([a, b]), np.array([[0.1] * 21, [0.9] * 21]),
              (640, 480))
    assert [t.track_id for t in tr.tracks] == [1, 0] and tr.tracks[1].held
    assert tr.reseed([]) == [] and [t.track_id for t in tr.tracks] == [1]
    # a held track the next frame's detector does not find is dropped by plan too
    tr.update(tr.plan(None), b[None], np.full((1, 21), 0.1), (640, 480))
    assert tr.should_detect() and tr.plan([]) == [] and tr.tracks == []


def test_collapsed_or_outside_keypoints_lose_the_track_and_duplicates_merge():
    tr = HandTracker(max_hands=2)
    tr.should_detect()
    a = _uv(300)
    collapsed = np.full((21, 2), 300.0)
    outside = a + np.array([700.0, 0.0])
    plans = tr.plan([_det(a), _det(_uv(500))])
    alive = tr.update(plans, np.stack([collapsed, outside]), np.full((2, 21), 0.9), (640, 480))
    assert alive == []
    plans = tr.plan([_det(a), _det(_uv(500))])
    tr.update(plans, np.stack([a, _uv(500)]), np.full((2, 21), 0.9), (640, 480))
    ids = [t.track_id for t in tr.tracks]
    tr.should_detect()
    plans = tr.plan(None)  # both tracks converge on the first hand: the younger one goes
    alive = tr.update(plans, np.stack([a, a + 1.0]), np.full((2, 21), 0.9), (640, 480))
    assert [t.track_id for _, t in alive] == [ids[0]]


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_hands"):
        HandTracker(max_hands=0)
    with pytest.raises(ValueError, match="detect_every"):
        HandTracker(detect_every=0)
    with pytest.raises(ValueError, match="min_confidence"):
        HandTracker(min_confidence=0.8, redetect_confidence=0.5)
    with pytest.raises(ValueError, match="detection_presence"):
        HandTracker(detection_presence=-0.1)
    tr = HandTracker()
    with pytest.raises(ValueError, match="uv must be"):
        tr.update([], np.zeros((1, 21, 2)), np.zeros((1, 21)), (640, 480))
