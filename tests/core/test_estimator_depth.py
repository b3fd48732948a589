"""RGB-D paths of the pipeline: depth sampling, root depth + scale from depth, the test-time
sphere fit, and per-user hand size calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pipeline_oracle import OracleBackend, Scene, ScriptedDetector, coordinate_image, place_hand

from handpose.core.geometry import to_25d
from handpose.core.handmodel import load_hand_model
from handpose.core.inference.calibration import (
    calibrate_hand_size,
    hand_scale_from_length,
    template_hand_length,
)
from handpose.core.inference.depth_lift import lift_with_depth, sample_depth
from handpose.core.inference.estimator import HandPoseEstimator
from handpose.core.inference.fitting import DepthFitParams, fit_to_depth
from handpose.core.render import render_depth_perspective
from handpose.core.skeleton import BONES
from handpose.core.spheres import spheres_from_joints

W, H = 320, 240
K = np.array([[300.0, 0.0, 159.5], [0.0, 300.0, 119.5], [0.0, 0.0, 1.0]])


def _depth_of(hands, size=1.0, far=1.2):
    """Depth map (H, W) float32 of the sphere model of each hand over a wall at ``far``."""
    j = torch.tensor(np.stack(hands))
    c, r = spheres_from_joints(j, size)
    d, _ = render_depth_perspective(c.reshape(1, -1, 3), r.reshape(1, -1),
                                    torch.tensor(K), (H, W), far=far)
    return d[0].numpy().astype(np.float32)


@pytest.fixture(scope="module")
def big_hand():
    """A hand 1.15x the default size at 0.45 m and its depth map."""
    joints = place_hand((170, 130), 0.45, roll=0.2, K=K) * 1.0
    joints = (joints - joints[9]) * 1.15 + joints[9]
    return joints, _depth_of([joints], 1.15)


def _scene():
    return Scene(K=K.copy(), image=coordinate_image(W, H))


def test_sample_depth_medians_valid_readings_and_marks_holes():
    d = np.full((20, 30), 0.5, np.float32)
    d[5:8, 5:8] = 0.0  # a hole
    d[12, 12] = np.nan
    d[12, 13] = 3.0  # an outlier among 25 readings
    out = sample_depth(d, np.array([[6.0, 6.0], [12.0, 12.0], [-10.0, 5.0], [29.4, 19.6]]))
    assert np.isnan(out[2])  # outside the image
    assert out[1] == pytest.approx(0.5)  # median ignores NaN and the outlier
    assert out[3] == pytest.approx(0.5)  # clipped window at the corner
    assert out[0] == pytest.approx(0.5)  # the 5x5 window reaches valid pixels around the hole
    assert np.isnan(sample_depth(d, np.array([[6.0, 6.0]]), window=1)[0])
    with pytest.raises(ValueError, match="odd"):
        sample_depth(d, np.zeros((1, 2)), window=4)


def test_lift_with_depth_recovers_scale_and_root(big_hand):
    joints, depth = big_hand
    uv, z_rel, s = to_25d(joints, K)
    lifted, scale, root = lift_with_depth(uv, z_rel, K, depth)
    assert scale == pytest.approx(s, rel=0.04)
    assert root == pytest.approx(joints[0, 2], abs=0.01)
    assert np.linalg.norm(lifted - joints, axis=-1).mean() < 0.01
    lifted2, scale2, root2 = lift_with_depth(uv, z_rel, K, depth, scale=s)
    assert scale2 == s and np.linalg.norm(lifted2 - joints, axis=-1).max() < 0.012
    assert lift_with_depth(uv, z_rel, K, np.zeros_like(depth)) is None  # no readings


def test_estimator_uses_depth_for_scale_and_falls_back_without(big_hand):
    joints, depth = big_hand
    scene = _scene()
    est = HandPoseEstimator(backend=OracleBackend(scene), detector=ScriptedDetector(scene),
                            max_hands=1, smoothing=None)
    with_depth = est.process(scene.frame([joints], depth)).hands[0].joints
    assert np.linalg.norm(with_depth - joints, axis=-1).mean() < 0.01
    est.reset()
    holes = est.process(scene.frame([joints], np.zeros_like(depth))).hands[0].joints
    est.reset()
    rgb_only = est.process(scene.frame([joints])).hands[0].joints
    np.testing.assert_allclose(holes, rgb_only, atol=1e-9)  # no readings: RGB-only lift
    # the default adult hand puts the 1.15x hand 1/1.15 as far away
    assert rgb_only[0, 2] == pytest.approx(joints[0, 2] / 1.15, rel=0.02)


def test_fit_to_depth_lowers_energy_and_error(big_hand):
    joints, depth = big_hand
    rng = np.random.default_rng(1)
    start = joints + np.array([0.0, 0.0, 0.012]) + rng.normal(0, 0.003, joints.shape)
    fit = fit_to_depth(start[None], depth, K, 1.15, DepthFitParams(steps=10))
    err0 = np.linalg.norm(start - joints, axis=-1).mean()
    err1 = np.linalg.norm(fit.joints[0] - joints, axis=-1).mean()
    assert fit.energy_end[0] < 0.8 * fit.energy_start[0]
    assert err1 < 0.75 * err0
    assert fit.spheres.shape == (1, 41, 4) and fit.points[0] > 50
    still = fit_to_depth(start[None], depth, K, 1.15, DepthFitParams(steps=0))
    np.testing.assert_allclose(still.joints, start[None], atol=1e-6)
    with pytest.raises(ValueError, match="N, 21, 3"):
        fit_to_depth(start, depth, K)


def test_fit_runs_only_when_enabled_and_is_timed(big_hand):
    joints, depth = big_hand
    scene = _scene()
    kw = dict(backend=OracleBackend(scene), detector=ScriptedDetector(scene), max_hands=1)
    on = HandPoseEstimator(fit_depth=True, **kw).process(scene.frame([joints], depth))
    assert on.timings_ms["fit"] > 0 and on.hands[0].spheres is not None
    off = HandPoseEstimator(fit_depth=False, **kw).process(scene.frame([joints], depth))
    assert off.timings_ms["fit"] == 0.0 and off.hands[0].spheres is None
    rgb = HandPoseEstimator(fit_depth=True, **kw).process(scene.frame([joints]))
    assert rgb.timings_ms["fit"] == 0.0  # no depth: nothing to fit


def test_calibrate_hand_size_from_depth_and_from_length(big_hand):
    joints, depth = big_hand
    scene = _scene()
    est = HandPoseEstimator(backend=OracleBackend(scene), detector=ScriptedDetector(scene))

    def frames(with_depth):
        for _ in range(4):
            yield scene.frame([joints], depth if with_depth else None)

    bones = calibrate_hand_size(frames(True), est)
    true = np.linalg.norm(joints[[c for _, c in BONES]] - joints[[p for p, _ in BONES]], axis=-1)
    np.testing.assert_allclose(bones, true, rtol=0.05)
    with pytest.raises(ValueError, match="hand_length_m"):
        calibrate_hand_size(frames(False), est)
    by_len = calibrate_hand_size(frames(False), est, hand_length_m=0.2)
    assert by_len[[8, 9, 10, 11]].sum() == pytest.approx(0.2, rel=0.01)
    np.testing.assert_allclose(by_len / by_len[9], true / true[9], rtol=0.03)  # proportions
    with pytest.raises(ValueError, match="found in 0 of 2"):
        calibrate_hand_size([scene.frame([]), scene.frame([])], est)
    # the calibration feeds the estimator: lifting a new frame gives the metric hand
    user = est.with_options(hand_scale=bones, smoothing=None, max_hands=1)
    lifted = user.process(scene.frame([joints])).hands[0].joints
    assert np.linalg.norm(lifted - joints, axis=-1).mean() < 0.01


def test_hand_scale_from_length():
    m = load_hand_model()
    bones = hand_scale_from_length(template_hand_length(m) * 1.1)
    np.testing.assert_allclose(bones, m.bone_lengths * 1.1)
    for bad in (0.05, 0.5, float("nan"), "18cm"):
        with pytest.raises(ValueError, match="hand_length_m"):
            hand_scale_from_length(bad)


def test_real_rgbd_lift_from_true_25d_and_real_depth(rgbd_dir):
    """Real sensor depth: root depth + scale from the depth map around the true 2D joints."""
    import cv2

    meta = json.loads((rgbd_dir / "frames.json").read_text())
    errs, scale_err = [], []
    for fr in meta["frames"]:
        depth = cv2.imread(str(rgbd_dir / fr["depth"]), cv2.IMREAD_UNCHANGED) / 1000.0
        k, j = np.asarray(fr["K"]), np.asarray(fr["joints_m"])
        uv, z_rel, s = to_25d(j, k)
        out = lift_with_depth(uv, z_rel, k, depth.astype(np.float32))
        assert out is not None
        errs.append(np.linalg.norm(out[0] - j, axis=-1).mean())
        scale_err.append(abs(out[1] / s - 1))
    assert np.median(errs) < 0.015  # metres
    assert np.median(scale_err) < 0.1
