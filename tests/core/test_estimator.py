"""HandPoseEstimator pipeline logic with an oracle network and a scripted detector.

The oracle (tests/core/pipeline_oracle.py) sees only the crops and returns the ground-truth 2.5D
pose in them, so these tests check the pipeline itself: crops, one batch per frame, uncropping,
lifting, correction, filtering, track IDs, handedness and the detection schedule.
"""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_oracle import K_TRUE, OracleBackend, Scene, ScriptedDetector, place_hand

from handpose.core.inference.estimator import STAGES, HandPoseEstimator, default_checkpoint_path
from handpose.core.inference.hand_filter import HandSmoothing
from handpose.core.inference.handedness import HandednessVote
from handpose.core.safe_load import CheckpointError
from handpose.core.types import Frame


def _pipeline(max_hands=2, **kw):
    scene = Scene()
    backend = OracleBackend(scene)
    detector = ScriptedDetector(scene)
    est = HandPoseEstimator(backend=backend, detector=detector, max_hands=max_hands, **kw)
    return scene, backend, detector, est


def _views(frames, hands=1):
    """Crops per network batch when every track is as old as the frame: a crop goes through
    both as it is and mirrored on the frames its track votes on its handedness."""
    vote = HandednessVote()
    return [hands * (2 if vote.wants_vote(age) else 1) for age in range(1, frames + 1)]


def _match(hand, scene):
    """Index of the scene hand nearest a result hand, its max 2D (px) and 3D (m) errors."""
    errs = [(np.abs(hand.uv - scene.uv(i)).max(),
             np.linalg.norm(hand.joints - scene.hands[i], axis=-1).max())
            for i in range(len(scene.hands))]
    i = int(np.argmin([e[0] for e in errs]))
    return i, errs[i][0], errs[i][1]


def test_moving_hand_is_found_tracked_and_lifted_exactly():
    scene, backend, detector, est = _pipeline(max_hands=1, smoothing=None)
    found = 0
    for t in range(20):  # moves 6 px per frame, turns and comes closer
        joints = place_hand((180 + 6 * t, 250 - 2 * t), 0.55 - 0.005 * t, roll=0.02 * t - 0.2)
        r = est.process(scene.frame([joints]))
        assert set(r.timings_ms) == set(STAGES)
        assert r.timings_ms["total"] >= r.timings_ms["network"] > 0
        if r.hands:
            found += 1
            _, e2d, e3d = _match(r.hands[0], scene)
            assert e2d < 2.0  # pixels
            assert e3d < 0.01  # metres: true K and the true (default) scale
            assert r.hands[0].track_id == 0 and r.hands[0].handedness == "right"
    assert found == 20
    assert detector.calls == [1]  # detected once, then tracked from keypoints
    assert backend.batches == _views(20)
    assert r.timings_ms["detect"] == 0.0 and r.timings_ms["fit"] == 0.0


def test_two_hands_keep_their_ids_and_handedness_in_one_batch():
    scene, backend, detector, est = _pipeline(max_hands=2, smoothing=None)
    ids: dict[int, int] = {}
    for t in range(15):
        right = place_hand((170 + 3 * t, 240), 0.5, roll=0.3)
        left = place_hand((470 - 3 * t, 250), 0.6, roll=-0.3, left=True)
        r = est.process(scene.frame([right, left]))
        assert len(r.hands) == 2
        for h in r.hands:
            i, e2d, _ = _match(h, scene)
            assert e2d < 2.0
            assert ids.setdefault(i, h.track_id) == h.track_id  # the same ID every frame
            assert h.handedness == ("right" if i == 0 else "left")
            assert h.handedness_score > 0.9
    assert sorted(ids.values()) == [0, 1]
    assert backend.batches == _views(15, hands=2)  # both crops in one network batch
    assert detector.calls == [1]  # both hands tracked: no more detection


def test_left_hands_are_mirrored_for_the_network_once_voted():
    # The network sees a right hand in every crop of a left-hand track once its vote says
    # left, and the keypoints come back unmirrored: the oracle still gives the exact pose.
    for mirror in (True, False):
        scene, backend, _, est = _pipeline(max_hands=2, smoothing=None, mirror_left=mirror)
        for t in range(6):
            right = place_hand((170 + 3 * t, 240), 0.5, roll=0.3)
            left = place_hand((470 - 3 * t, 250), 0.6, roll=-0.3, left=True)
            r = est.process(scene.frame([right, left]))
            for h in r.hands:
                i, e2d, e3d = _match(h, scene)
                assert e2d < 2.0 and e3d < 0.01
        sides = [t.vote.handedness for t in est.tracker.tracks]  # the batch's crop order
        assert sorted(sides) == ["left", "right"]
        # first frame: no vote yet, nothing mirrored; then the left track's crop only (the
        # first two crops of a batch; on voting frames the other views follow, mirrored)
        assert backend.mirrored[0][:2] == [False, False]
        expected = [mirror and side == "left" for side in sides]
        assert all(m[:2] == expected for m in backend.mirrored[1:])
        if mirror:
            assert backend.mirrored[0][2:] == [True, True]
            vote = HandednessVote()
            assert all(m[2:] == ([not e for e in expected] if vote.wants_vote(age) else [])
                       for age, m in enumerate(backend.mirrored[1:], start=2))
        else:
            assert backend.batches == [2] * 6


def test_a_network_of_right_hands_only_is_shown_a_left_hand_mirrored():
    """A network that reads right hands only predicts a right hand in any crop: shown a left
    hand as it is, it returns the pose mirrored within the crop (a right hand, wrong), less
    confident. The chirality of that view alone would vote "right" for ever; the more
    confident of both views on voting frames finds the left hand and keeps it mirrored."""
    scene, backend, _, est = _pipeline(max_hands=1, smoothing=None)
    run, s = backend.run, backend.input_size

    def right_hands_only(crops):
        pose = run(crops)
        shows_left = ~np.array(backend.mirrored[-1])  # the scene's one hand is a left hand
        uv = pose.uv.copy()
        uv[shows_left, :, 0] = s - 1 - uv[shows_left, :, 0]
        conf = np.where(shows_left[:, None], 0.4 * pose.confidence, pose.confidence)
        return type(pose)(uv=uv, z_rel=pose.z_rel, confidence=conf)

    est.backend.run = right_hands_only
    for t in range(16):
        r = est.process(scene.frame([place_hand((300 + 2 * t, 240), 0.5, left=True)]))
        _, e2d, e3d = _match(r.hands[0], scene)
        assert e2d < 2.0 and e3d < 0.01  # the mirrored view's exact pose, from frame 1
        assert r.hands[0].handedness == "left"
    assert all(m[0] for m in backend.mirrored[1:])  # mirrored once the first vote is in
    assert backend.batches == _views(16)


def test_hand_leaving_and_reentering_gets_a_new_track():
    scene, _, detector, est = _pipeline(max_hands=1, detect_every=3)
    seen = []
    for t in range(30):
        x = 320 + 40 * t if t < 10 else (900 if t < 18 else 320)  # leaves right, comes back
        joints = place_hand((x, 240), 0.5)
        r = est.process(scene.frame([joints]))
        seen.append(r.hands[0].track_id if r.hands else None)
        if r.hands and t >= 18:
            assert _match(r.hands[0], scene)[1] < 3.0
    assert seen[0] == 0
    assert all(s is None for s in seen[11:18])  # gone while outside
    assert seen[-1] == 1  # re-found with a new ID (documented)
    assert all(s == 1 for s in seen[19:])
    assert 18 in detector.calls or 19 in detector.calls  # re-detected as soon as it is back


def test_a_doubtful_frame_redetects_at_once_and_keeps_the_track():
    scene, backend, detector, est = _pipeline(max_hands=1, smoothing=None)
    run = backend.run
    doubt = {6}  # the network's 6th batch says 0.1 everywhere (keypoints still right)

    def doubtful(crops):
        pose = run(crops)
        if len(backend.batches) in doubt:
            return type(pose)(uv=pose.uv, z_rel=pose.z_rel, confidence=np.full_like(
                pose.confidence, 0.1))
        return pose

    est.backend.run = doubtful
    ids = []
    for t in range(10):
        r = est.process(scene.frame([place_hand((250 + 5 * t, 240), 0.5)]))
        ids.append(r.hands[0].track_id if r.hands else None)
        if t == 5:  # the doubtful frame: detector and a second network pass on that frame
            assert r.timings_ms["detect"] > 0 and _match(r.hands[0], scene)[1] < 2.0
    assert ids == [0] * 10  # reported on every frame, under one ID
    assert detector.calls == [1, 6]
    # 10 frames, one extra batch on the doubtful one (the re-seeded track keeps its age)
    views = _views(10)
    assert backend.batches == views[:6] + [views[5]] + views[6:]


def test_detection_runs_every_few_frames_while_a_slot_is_free():
    scene, _, detector, est = _pipeline(max_hands=2, detect_every=5)
    for _ in range(16):
        est.process(scene.frame([place_hand((300, 240), 0.5)]))
    assert detector.calls == [1, 6, 11, 16]  # never on every frame


def test_smoothing_filters_jitter_and_restarts_on_a_new_track():
    rng = np.random.default_rng(0)
    _, _, _, raw = _pipeline(max_hands=1, smoothing=None)
    scene, _, _, smooth = _pipeline(max_hands=1, smoothing=HandSmoothing())
    raw.backend = OracleBackend(scene)
    raw.detector = ScriptedDetector(scene)
    jit_raw, jit_smooth = [], []
    base = place_hand((320, 240), 0.5)
    for _ in range(30):
        joints = base + rng.normal(0, 0.002, 3)  # the whole hand jitters by 2 mm
        frame = scene.frame([joints])
        jit_raw.append(raw.process(frame).hands[0].joints[9])
        jit_smooth.append(smooth.process(frame).hands[0].joints[9])
    assert np.std(np.diff(jit_smooth, axis=0)) < 0.5 * np.std(np.diff(jit_raw, axis=0))
    for _ in range(2):  # the hand leaves: the track and its filter are dropped
        assert smooth.process(scene.frame([place_hand((950, 240), 0.5)])).hands == ()
    back = place_hand((200, 300), 0.4)
    h = smooth.process(scene.frame([back])).hands[0]
    # a new track starts from the measurement, not gliding in from the old place
    assert h.track_id == 1 and np.abs(h.joints - back).max() < 2e-3


def test_correction_lowers_confidence_of_moved_joints():
    scene, _, _, est = _pipeline(max_hands=1, smoothing=None)
    bad = place_hand((320, 240), 0.5)
    bad[8] = bad[7] + 3.0 * (bad[7] - bad[6])  # index tip pulled far out (bone too long)
    r = est.process(scene.frame([bad]))
    h = r.hands[0]
    assert h.corrected
    assert h.confidence[8] < 0.5 * h.confidence[0]
    _, _, _, off = _pipeline(max_hands=1, smoothing=None, correct=False)
    off.backend = OracleBackend(scene)
    off.detector = ScriptedDetector(scene)
    h2 = off.process(scene.frame([bad])).hands[0]
    assert not h2.corrected and h2.confidence[8] > 0.9
    assert np.abs(h2.joints - bad).max() < 2e-3  # without correction: the measurement
    assert r.timings_ms["correct"] > 0


def test_uv_is_the_image_evidence_and_joints_are_feasible_after_smoothing():
    from handpose.core.biomech.violations import violations
    from handpose.core.geometry.camera import project

    scene, _, _, est = _pipeline(max_hands=1)  # default smoothing on
    _, _, _, off = _pipeline(max_hands=1, correct=False)
    off.backend, off.detector = OracleBackend(scene), ScriptedDetector(scene)
    for t in range(8):
        bad = place_hand((300 + 2 * t, 240), 0.5 + 0.002 * t, roll=0.01 * t)
        bad[8] = bad[7] + 3.0 * (bad[7] - bad[6])  # index tip far out: infeasible
        frame = scene.frame([bad])
        h, h_off = est.process(frame).hands[0], off.process(frame).hands[0]
        # smoothed, then corrected: the reported 3D pose itself is feasible
        assert violations(h.joints, handedness=h.handedness) == []
        # uv is the smoothed network keypoints, whatever the correction did to the joints
        np.testing.assert_allclose(h.uv, h_off.uv, atol=1e-9)
        # the corrected tip projects far from the image's tip; uv stays near it (filter lag)
        tip = np.asarray(project(h.joints, scene.K))[8]
        truth = scene.uv(0)[8]
        assert np.linalg.norm(h.uv[8] - truth) < 0.5 * np.linalg.norm(tip - truth)


def test_hand_scale_sets_the_metric_size():
    scene, _, _, est = _pipeline(max_hands=1, smoothing=None, hand_scale=1.2)
    joints = place_hand((320, 240), 0.5)
    r = est.process(scene.frame([joints]))
    # a 1.2x larger hand seen at the same place must be 1.2x farther away
    np.testing.assert_allclose(r.hands[0].joints, joints * 1.2, atol=2e-3)


def test_bad_frames_raise_value_error_and_bare_arrays_work():
    scene, _, _, est = _pipeline(max_hands=1)
    with pytest.raises(ValueError, match="uint8"):
        est.process(np.zeros((480, 640, 3), np.float32))
    with pytest.raises(ValueError, match="H, W, 3"):
        est.process(np.zeros((480, 640), np.uint8))
    with pytest.raises(ValueError, match="Frame"):
        est.process([[0]])
    with pytest.raises(ValueError, match="32 x 32"):
        est.process(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="depth"):
        est.process(Frame(rgb=scene.image, K=K_TRUE, depth=np.zeros((480, 640), np.uint16)))
    with pytest.raises(ValueError, match="uint8"):
        Frame(rgb=np.zeros((480, 640, 3), np.float64), K=K_TRUE)
    scene.hands = [place_hand((320, 240), 0.5)]
    r = est.process(scene.image)  # a bare RGB array: default K, still tracked
    assert r.frame.K.shape == (3, 3) and len(r.hands) == 1


def test_bad_options():
    scene = Scene()
    with pytest.raises(ValueError, match="hand_scale"):
        HandPoseEstimator(backend=OracleBackend(scene), detector=ScriptedDetector(scene),
                          hand_scale=np.ones(5))
    with pytest.raises(ValueError, match="backend"):
        HandPoseEstimator(backend=object(), detector=ScriptedDetector(scene))
    with pytest.raises(ValueError, match="detector"):
        HandPoseEstimator(backend=OracleBackend(scene), detector=object())
    with pytest.raises(ValueError, match="smoothing"):
        HandPoseEstimator(backend=OracleBackend(scene), detector=ScriptedDetector(scene),
                          smoothing=(1.0, 2.0))
    est = HandPoseEstimator(backend=OracleBackend(scene), detector=ScriptedDetector(scene))
    with pytest.raises(ValueError, match="unknown options"):
        est.with_options(colour="red")


def test_missing_default_checkpoint_names_path_and_command(monkeypatch, tmp_path):
    import handpose.core.inference.estimator as estimator_module

    missing = tmp_path / "assets" / "models" / "default.pt"  # e.g. a checkout without it
    monkeypatch.setattr(estimator_module, "default_checkpoint_path", lambda: missing)
    with pytest.raises(CheckpointError) as e:
        HandPoseEstimator(detector=ScriptedDetector(Scene()))
    msg = str(e.value)
    assert str(missing) in msg and "handpose-train recipe default" in msg


def test_the_shipped_default_checkpoint_loads_with_its_int8_model():
    path = default_checkpoint_path()
    est = HandPoseEstimator(detector=ScriptedDetector(Scene()), backend="onnx")
    assert est.backend.precision == "int8" and est.backend.path == path.with_name(
        "default.int8.onnx")
    assert path.stat().st_size < 25 * 2**20  # fp16 weights, under 25 MB
