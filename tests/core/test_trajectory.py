"""Smooth synthetic hand trajectories: feasibility, smoothness, determinism, exits."""

from __future__ import annotations

import numpy as np
import pytest

from handpose.core.biomech import count_violations
from handpose.core.data.synthetic.trajectory import (
    TrajectoryConfig,
    min_jerk,
    sample_trajectory,
)
from handpose.core.geometry import intrinsics_from_fov, project

K = intrinsics_from_fov(320, 240, 60.0)


def test_min_jerk_analytic_values():
    s = np.array([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(min_jerk(s), [0.0, 0.0, 0.103515625, 0.5, 1.0, 1.0])
    h = 1e-6  # zero velocity at both ends, peak 15/8 in the middle
    assert min_jerk(np.array([h]))[0] / h < 1e-9
    assert (1 - min_jerk(np.array([1 - h]))[0]) / h < 1e-9
    mid = (min_jerk(np.array([0.5 + h])) - min_jerk(np.array([0.5 - h])))[0] / (2 * h)
    assert mid == pytest.approx(15 / 8, rel=1e-6)


def test_every_frame_feasible_and_motion_smooth():
    tr = sample_trajectory(150, K, 320, 240, 7)
    side = "left" if tr.is_left else "right"
    assert np.all(count_violations(tr.joints, side) == 0)
    step = np.linalg.norm(np.diff(tr.joints, axis=0), axis=-1).max(-1)  # metres per frame
    assert step.max() < 0.04  # < 1.2 m/s at 30 fps
    acc = np.linalg.norm(np.diff(tr.joints, 2, axis=0), axis=-1).max(-1)
    assert np.median(acc) < 0.002
    # bone lengths fixed over the video
    bones = np.linalg.norm(tr.joints[:, 9] - tr.joints[:, 10], axis=-1)
    np.testing.assert_allclose(bones, tr.bone_lengths[9], rtol=1e-9)
    # hand in front of the camera, mostly inside the image
    assert tr.joints[..., 2].min() > 0.15
    assert tr.present.all()
    uv = project(tr.joints, K)
    inside = ((uv >= -0.5) & (uv <= [319.5, 239.5])).all(-1).mean()
    assert inside > 0.9


def test_deterministic_per_seed_and_keys_honoured():
    a = sample_trajectory(120, K, 320, 240, 3, keys=["fist", "open"], handedness="left")
    b = sample_trajectory(120, K, 320, 240, 3, keys=["fist", "open"], handedness="left")
    np.testing.assert_array_equal(a.joints, b.joints)
    assert a.is_left and [k for k, _ in a.keys][:3] == ["fist", "open", "fist"]
    c = sample_trajectory(120, K, 320, 240, 4, keys=["fist", "open"], handedness="left")
    assert not np.allclose(a.joints, c.joints)
    # during the first hold the fingers are curled (fist) and later open
    first_hold_end = a.keys[1][1] - 1
    tips = a.joints[:, [8, 12, 16, 20]] - a.joints[:, :1]
    assert np.linalg.norm(tips[0], axis=-1).mean() < 0.8 * np.linalg.norm(
        tips[a.keys[1][1] + 1], axis=-1).mean()
    assert first_hold_end >= 0


def test_exit_leaves_and_reenters_the_frame():
    cfg = TrajectoryConfig()
    tr = sample_trajectory(240, K, 320, 240, 11, exits=[(3.0, 5.0)], config=cfg)
    t = np.arange(240) / cfg.fps
    absent = ~tr.present
    assert absent.any()
    assert np.all((t[absent] > 3.0) & (t[absent] < 5.0))
    assert tr.present[t <= 3.0].all() and tr.present[t >= 5.0].all()
    # absent frames: the whole silhouette box is outside the image
    box = tr.box[absent]
    assert np.all((box[:, 2] < -0.5) | (box[:, 0] > 319.5) | (box[:, 3] < -0.5)
                  | (box[:, 1] > 239.5))


def test_bad_input():
    with pytest.raises(ValueError, match="num_frames"):
        sample_trajectory(0, K, 320, 240)
    with pytest.raises(ValueError, match="K must"):
        sample_trajectory(10, np.eye(2), 320, 240)
    with pytest.raises(ValueError, match="keys"):
        sample_trajectory(10, K, 320, 240, keys=["wave"])
    with pytest.raises(ValueError, match="exits"):
        sample_trajectory(30, K, 320, 240, exits=[(0.5, 3.0)])
    with pytest.raises(ValueError, match="handedness"):
        sample_trajectory(10, K, 320, 240, handedness="both")
    with pytest.raises(ValueError, match="hold_s"):
        TrajectoryConfig(hold_s=(1.0, 0.5))
