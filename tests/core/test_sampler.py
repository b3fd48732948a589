"""Synthetic pose and shape sampler: feasibility, recorded angles, shapes, determinism,
natural correlations, orientation coverage, key poses, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from handpose.core.biomech import count_violations, joint_angles
from handpose.core.biomech.frames import mirror_x
from handpose.core.data.synthetic.keyposes import (
    DIP_PIP_RATIO,
    KEY_POSE_NAMES,
    KEY_POSES_DEG,
    key_pose_angles,
)
from handpose.core.data.synthetic.sampler import NUM_UNIFORMS, HandSampler, SamplerConfig
from handpose.core.data.synthetic.seeding import indexed_uniforms, sample_rng
from handpose.core.skeleton import BONES, REFERENCE_BONE


@pytest.fixture(scope="module")
def sampler() -> HandSampler:
    return HandSampler()


@pytest.fixture(scope="module")
def many(sampler):
    return sampler.sample(4000, 123)


def _violations(h) -> np.ndarray:
    out = np.empty(len(h), np.int64)
    for side, sel in (("left", h.is_left), ("right", ~h.is_left)):
        if sel.any():
            out[sel] = count_violations(h.joints[sel], side)
    return out


def test_thousands_of_samples_are_feasible_without_correction(many):
    assert np.all(_violations(many) == 0)
    # feasible by construction: the correct_pose safety net never fired
    assert not many.corrected.any()
    # float32 storage (the dataset files) keeps them feasible
    f32 = many.joints.astype(np.float32)
    assert np.all(count_violations(f32[~many.is_left], "right") == 0)
    assert np.all(count_violations(f32[many.is_left], "left") == 0)


def test_recorded_angles_are_those_of_the_joints(many):
    for side, sel in (("left", many.is_left), ("right", ~many.is_left)):
        f, a = joint_angles(many.joints[sel], side)
        np.testing.assert_allclose(f, many.flexion[sel], atol=1e-9)
        np.testing.assert_allclose(a, many.abduction[sel], atol=1e-9)


def test_angles_bone_lengths_and_scale_inside_the_model(many, hand_model):
    fl, al = hand_model.flexion_limits, hand_model.abduction_limits
    assert np.all((many.flexion >= fl[:, 0]) & (many.flexion <= fl[:, 1]))
    assert np.all((many.abduction >= al[:, 0]) & (many.abduction <= al[:, 1]))
    bones = np.linalg.norm(many.joints[:, [c for _, c in BONES]]
                           - many.joints[:, [p for p, _ in BONES]], axis=-1)
    np.testing.assert_allclose(bones, many.bone_lengths, rtol=1e-9)
    ratio = bones / bones[:, REFERENCE_BONE[1] - 1:REFERENCE_BONE[1]]
    rng_ = hand_model.bone_length_range
    assert np.all((ratio >= rng_[:, 0] - 1e-9) & (ratio <= rng_[:, 1] + 1e-9))
    assert many.hand_scale.min() >= 0.8 and many.hand_scale.max() <= 1.2
    assert many.hand_scale.min() < 0.82 and many.hand_scale.max() > 1.18
    chain = [8, 9, 10, 11]  # wrist->middle MCP, MCP->PIP, PIP->DIP, DIP->TIP (BONES index)
    np.testing.assert_allclose(many.bone_lengths[:, chain].sum(1)
                               / hand_model.bone_lengths[chain].sum(), many.hand_scale,
                               rtol=1e-9)
    # bone lengths vary per hand around the template, not just by a global scale
    rel = many.bone_lengths / many.bone_lengths[:, REFERENCE_BONE[1] - 1:REFERENCE_BONE[1]]
    assert rel.std(0)[[0, 4, 7, 16]].min() > 0.02


def test_wrist_at_origin_and_left_hands_are_mirrors(sampler, many):
    assert np.abs(many.joints[:, 0]).max() == 0.0
    assert 0.4 < many.is_left.mean() < 0.6
    n = 50
    right = sampler.articulate(many.flexion[:n], many.abduction[:n], many.bone_lengths[:n],
                               many.cupping[:n], many.spread[:n], np.zeros(n, bool))
    want = np.where(many.is_left[:n, None, None], mirror_x(right), right)
    np.testing.assert_allclose(many.joints[:n], want, atol=1e-12)
    # right hands have the thumb at +x of the hand frame, left hands at -x
    assert np.all((many.joints[:, 1, 0] > 0) == ~many.is_left)


def test_deterministic_per_seed_and_per_index(sampler):
    a, b = sampler.sample(64, 5), sampler.sample(64, 5)
    np.testing.assert_array_equal(a.joints, b.joints)
    np.testing.assert_array_equal(a.rotation, b.rotation)
    assert not np.allclose(sampler.sample(64, 6).joints, a.joints)
    full = sampler.sample_indexed(9, range(12))
    part = sampler.sample_indexed(9, [3, 11, 7])
    np.testing.assert_array_equal(part.joints, full.joints[[3, 11, 7]])
    np.testing.assert_array_equal(part.rotation, full.rotation[[3, 11, 7]])
    u = indexed_uniforms(9, [4], NUM_UNIFORMS, 0)
    np.testing.assert_array_equal(u[0], sample_rng(9, 4, 0).random(NUM_UNIFORMS))


def test_finger_motion_is_correlated_not_independent_noise(sampler):
    uni = HandSampler(SamplerConfig(mode_probs=(0.0, 0.0, 1.0))).sample(3000, 1)
    pip, dip = uni.flexion[:, [4, 7, 10, 13]], uni.flexion[:, [5, 8, 11, 14]]
    # DIP follows 2/3 of the PIP
    for k in range(4):
        assert np.corrcoef(pip[:, k], dip[:, k])[0, 1] > 0.75
    slope = np.polyfit(pip.ravel(), dip.ravel(), 1)[0]
    assert abs(slope - DIP_PIP_RATIO) < 0.1
    # neighbouring fingers curl together (shared grip level)
    mcp = uni.flexion[:, [3, 6, 9, 12]]
    assert np.corrcoef(mcp[:, 1], mcp[:, 2])[0, 1] > 0.3
    # the key family stays near its key pose: median deviation of a few degrees
    key = HandSampler(SamplerConfig(mode_probs=(1.0, 0.0, 0.0))).sample(2000, 2)
    kf, _ = key_pose_angles()
    dev = np.rad2deg(np.abs(key.flexion - kf[key.key_a]))
    assert np.median(dev) < 7.0
    assert set(np.unique(key.key_a)) == set(range(len(KEY_POSE_NAMES)))


def test_mixture_families_all_present(many):
    frac = np.bincount(many.mode, minlength=3) / len(many)
    np.testing.assert_allclose(frac, SamplerConfig().mode_probs, atol=0.04)
    assert np.all(many.key_a[many.mode == 2] == -1)
    blend = many.mode == 1
    assert 0.3 < many.blend[blend].mean() < 0.7 and np.all(many.blend[~blend] == 0)


def test_orientation_covers_palm_back_and_every_direction(many):
    R = many.rotation
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    fingers = R[:, :, 1]  # hand +y (towards the fingers) in the camera frame
    palm = R[:, :, 2]  # hand +z (out of the palm)
    up = -fingers[:, 1]  # camera y points down
    assert (up > 0).mean() > 0.7  # wrist below the fingers more often ...
    assert (up < -0.5).mean() > 0.03  # ... but pointing down happens
    for axis in range(3):  # every direction is reached
        for sign in (-1, 1):
            assert (sign * fingers[:, axis] > 0.9).any()
    assert (palm[:, 2] < -0.5).mean() > 0.25  # palm towards the camera
    assert (palm[:, 2] > 0.5).mean() > 0.25  # back of the hand towards the camera
    o = many.oriented()
    np.testing.assert_allclose(o[5], many.joints[5] @ R[5].T, atol=1e-12)


def test_self_collisions_are_bounded(sampler, many):
    pen = sampler.penetration(many.joints, many.hand_scale)
    assert pen.max() <= SamplerConfig().max_penetration + 1e-9
    assert 0 < (many.relaxed > 0).mean() < 0.1  # relaxation is rare but exists
    # without the check, some poses do collide deeper (so the check does something)
    raw = HandSampler(SamplerConfig(max_penetration=None)).sample(4000, 123)
    assert (sampler.penetration(raw.joints, raw.hand_scale) > 1.0).any()


def test_key_poses_are_feasible_and_coupled(hand_model):
    from handpose.core.biomech import forward_kinematics

    fl, ab = key_pose_angles()
    assert fl.shape == ab.shape == (len(KEY_POSE_NAMES), 15)
    joints = forward_kinematics(hand_model.rest_pose, fl, ab, hand_model.bone_lengths)
    assert np.all(count_violations(joints) == 0)
    i = KEY_POSE_NAMES.index("open")  # a coupled DIP: 2/3 of its PIP
    assert fl[i, 5] == pytest.approx(DIP_PIP_RATIO * fl[i, 4])
    assert np.rad2deg(fl[KEY_POSE_NAMES.index("fist"), 3]) == pytest.approx(
        KEY_POSES_DEG["fist"][0][3])
    # pinch: the thumb and index tips are close, in the open hand far apart
    pinch = joints[KEY_POSE_NAMES.index("pinch")]
    assert np.linalg.norm(pinch[4] - pinch[8]) < 0.03
    assert np.linalg.norm(joints[i, 4] - joints[i, 8]) > 0.08
    with pytest.raises(ValueError, match="unknown"):
        key_pose_angles(["fist", "wave"])


def test_bad_input():
    s = HandSampler()
    with pytest.raises(ValueError, match="u must have shape"):
        s.from_uniforms(np.zeros((3, NUM_UNIFORMS - 1)))
    with pytest.raises(ValueError, match="uniforms in"):
        s.from_uniforms(np.full((1, NUM_UNIFORMS), 1.5))
    with pytest.raises(ValueError, match="n must be"):
        s.sample(-1)
    with pytest.raises(ValueError, match="mode_probs"):
        SamplerConfig(mode_probs=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="key_poses"):
        SamplerConfig(key_poses=("fist", "nope"))
    with pytest.raises(ValueError, match="hand_scale"):
        SamplerConfig(hand_scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="cupping_deg"):
        SamplerConfig(cupping_deg=(0.0, 45.0))
    with pytest.raises(ValueError, match="p_left"):
        SamplerConfig(p_left=1.5)
    with pytest.raises(ValueError, match="seed"):
        s.sample_indexed(-1, [0])
    with pytest.raises(ValueError, match="indices"):
        s.sample_indexed(0, [-2])
    assert len(s.sample(0)) == 0
