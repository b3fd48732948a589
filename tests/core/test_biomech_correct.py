"""correct_pose: feasible by construction, identity on feasible poses, minimal changes."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from handpose.core.biomech import (
    correct_pose,
    count_violations,
    forward_kinematics,
    joint_angles,
    root_angles,
    violations,
)
from handpose.core.biomech.frames import mirror_x

PARENTS = [0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19]


def _lengths(j: np.ndarray) -> np.ndarray:
    return np.linalg.norm(j[..., 1:, :] - j[..., PARENTS, :], axis=-1)


def _feasible(rng: np.random.Generator, hand_model, n: int) -> np.ndarray:
    """n random feasible right hands (angles inside the limits, scaled template lengths,
    template palm), randomly rotated and placed about 0.5 m in front of a camera."""
    shrink = np.array([1e-3, -1e-3])
    flex = rng.uniform(*(hand_model.flexion_limits + shrink).T, (n, 15))
    abd = rng.uniform(*(hand_model.abduction_limits + shrink).T, (n, 15))
    lengths = hand_model.bone_lengths * rng.uniform(0.8, 1.2, (n, 1))
    j = forward_kinematics(hand_model.rest_pose, flex, abd, lengths)
    rot = Rotation.random(n, random_state=int(rng.integers(1 << 30))).as_matrix()
    return np.einsum("nij,nkj->nki", rot, j) + rng.normal([0, 0, 0.5], 0.1, (n, 1, 3))


def _hard_cases(rng: np.random.Generator, hand_model) -> np.ndarray:
    base = _feasible(rng, hand_model, 6000)
    noisy = base[:4000] + rng.normal(0, 0.015, (4000, 21, 3))
    wild = base[4000:6000] + rng.normal(0, 0.05, (2000, 21, 3))
    garbage = rng.uniform(-0.1, 0.1, (2000, 21, 3)) + [0, 0, 0.5]
    collapsed = _feasible(rng, hand_model, 1000)
    for f in range(5):  # collapse each finger in a random fifth of the poses, some all five
        pick = rng.random(1000) < 0.3
        mcp = 4 * f + 1
        collapsed[pick, mcp + 1 : mcp + 4] = collapsed[pick, mcp : mcp + 1]
    equal = np.repeat(rng.normal([0, 0, 0.5], 0.1, (500, 1, 3)), 21, axis=1)
    flat = _feasible(rng, hand_model, 500)
    t = rng.uniform(0.01, 0.1, (500, 5, 1))
    flat[:, [1, 5, 9, 13, 17]] = flat[:, :1] + t * rng.normal(0, 1, (500, 1, 3))  # colinear palm
    flat[:250, [1, 5]] = flat[:250, :1]  # thumb and index roots on the wrist
    return np.concatenate([noisy, wild, garbage, collapsed, equal, flat])


def test_output_is_always_feasible(rng, hand_model) -> None:
    poses = _hard_cases(rng, hand_model)
    assert poses.shape == (10000, 21, 3)
    assert (count_violations(poses) > 0).mean() > 0.95
    t0 = time.perf_counter()
    out = correct_pose(poses)
    elapsed = time.perf_counter() - t0
    assert np.isfinite(out).all()
    counts = count_violations(out)
    assert counts.max() == 0, violations(out[np.argmax(counts)])[:3]
    assert elapsed < 5.0  # about 0.3 s on 2 CPU cores; generous for a loaded machine


def test_feasible_poses_are_returned_unchanged(rng, hand_model) -> None:
    poses = _feasible(rng, hand_model, 1000)
    assert count_violations(poses).max() == 0
    assert np.abs(correct_pose(poses) - poses).max() < 1e-9
    single = correct_pose(poses[3])
    assert single.shape == (21, 3) and np.abs(single - poses[3]).max() < 1e-9


def test_real_labelled_poses_are_returned_unchanged(hgc_dir, rgbd_dir) -> None:
    left = np.asarray(json.loads((hgc_dir / "training_xyz.json").read_text()))
    frames = json.loads((rgbd_dir / "frames.json").read_text())["frames"]
    right = np.asarray([f["joints_m"] for f in frames])
    assert np.abs(correct_pose(left, handedness="left") - left).max() < 1e-6
    assert np.abs(correct_pose(right) - right).max() < 1e-6
    both = np.concatenate([left, right])
    assert np.abs(correct_pose(both, handedness="auto") - both).max() < 1e-6
    # real poses plus large noise: always feasible afterwards, and the wrist never moves
    rng = np.random.default_rng(1)
    noisy = left[rng.integers(0, 400, 2000)] + rng.normal(0, 0.02, (2000, 21, 3))
    out = correct_pose(noisy, handedness="left")
    assert count_violations(out, handedness="left").max() == 0
    np.testing.assert_allclose(out[:, 0], noisy[:, 0], atol=1e-15)


def test_left_hands_are_corrected_as_mirror_images(rng, hand_model) -> None:
    poses = _feasible(rng, hand_model, 200) + rng.normal(0, 0.015, (200, 21, 3))
    want = mirror_x(correct_pose(poses))
    np.testing.assert_allclose(correct_pose(mirror_x(poses), handedness="left"), want, atol=1e-12)
    assert count_violations(want, handedness="left").max() == 0
    feasible_left = mirror_x(_feasible(rng, hand_model, 100))
    assert np.abs(correct_pose(feasible_left, handedness="auto") - feasible_left).max() < 1e-9


def test_a_single_violation_moves_only_what_it_must(hand_model) -> None:
    flex = np.deg2rad(np.full(15, 10.0))
    flex[8] = hand_model.flexion_limits[8, 1] + 0.3  # middle DIP over-flexed by 0.3 rad
    j = forward_kinematics(hand_model.rest_pose, flex, np.zeros(15), hand_model.bone_lengths)
    out = correct_pose(j)
    moved = np.linalg.norm(out - j, axis=-1)
    assert moved[12] > 1e-3 and np.delete(moved, 12).max() < 1e-12  # only the middle tip
    f, _ = joint_angles(out)
    assert f[8] == pytest.approx(hand_model.flexion_limits[8, 1], abs=1e-12)  # on the limit
    # a too long bone gets exactly its maximum length, same direction
    j2 = forward_kinematics(hand_model.rest_pose, np.deg2rad(np.full(15, 10.0)), np.zeros(15),
                            hand_model.bone_lengths)
    d = j2[7] - j2[6]
    j2[7:9] += d * 0.8  # index PIP->DIP 1.8 times its length
    out2 = correct_pose(j2)
    ratio = _lengths(out2)[6] / _lengths(out2)[9]
    assert ratio == pytest.approx(hand_model.bone_length_range[6, 1], abs=1e-12)
    np.testing.assert_allclose(out2[:7], j2[:7], atol=1e-12)
    e = out2[7] - out2[6]
    assert np.dot(e, d) / np.linalg.norm(e) / np.linalg.norm(d) == pytest.approx(1.0, abs=1e-12)


def test_an_infeasible_palm_moves_a_little_towards_the_template(hand_model) -> None:
    j = forward_kinematics(hand_model.rest_pose, np.deg2rad(np.full(15, 10.0)), np.zeros(15),
                           hand_model.bone_lengths)
    # swing the pinky root bone in the palm plane: ring-pinky angle 4 deg above its maximum
    over = hand_model.root_angle_limits[3, 1] - root_angles(j)[3] + np.deg2rad(4.0)
    rot = Rotation.from_rotvec([0.0, 0.0, over]).as_matrix()  # towards -x, away from the ring
    j[17:21] = j[17:21] @ rot.T
    assert {v.family for v in violations(j)} == {"root_angle"}
    out = correct_pose(j)
    assert count_violations(out) == 0
    assert np.linalg.norm(out[[1, 5, 9, 13, 17]] - j[[1, 5, 9, 13, 17]], axis=-1).max() < 0.006
    angle = root_angles(out)[3]
    assert angle == pytest.approx(hand_model.root_angle_limits[3, 1], abs=np.deg2rad(0.05))


def test_scale_comes_from_the_bones_that_agree(rng, hand_model) -> None:
    j = _feasible(rng, hand_model, 1)[0]
    true_ref = _lengths(j)[9]
    j[10:13] = j[9]  # the middle finger (the reference bone) collapsed onto its MCP
    out = correct_pose(j)
    assert count_violations(out) == 0
    # the palm and the other fingers fix the scale: their lengths are kept
    np.testing.assert_allclose(_lengths(out)[[0, 4, 8, 12, 16]],
                               _lengths(j)[[0, 4, 8, 12, 16]], rtol=1e-12)
    assert 0.5 * true_ref < _lengths(out)[9] < 1.5 * true_ref


def test_per_user_bone_lengths_are_set_exactly(rng, hand_model) -> None:
    user = hand_model.bone_lengths * 0.9
    poses = _feasible(rng, hand_model, 300) + rng.normal(0, 0.01, (300, 21, 3))
    out = correct_pose(poses, bone_lengths=user)
    np.testing.assert_allclose(_lengths(out), np.broadcast_to(user, (300, 20)), rtol=1e-12)
    assert count_violations(out).max() == 0
    bad = user.copy()
    bad[19] *= 3.0
    with pytest.raises(ValueError, match="bone_lengths are infeasible: bones \\[19\\]"):
        correct_pose(poses, bone_lengths=bad)
    with pytest.raises(ValueError, match="bone_lengths must have shape"):
        correct_pose(poses, bone_lengths=user[:15])
    with pytest.raises(ValueError, match="bone_lengths must be finite and positive"):
        correct_pose(poses, bone_lengths=-user)


def test_torch_and_batch_shapes(rng, hand_model) -> None:
    poses = _feasible(rng, hand_model, 6).reshape(2, 3, 21, 3) + rng.normal(0, 0.02, (2, 3, 21, 3))
    out_np = correct_pose(poses)
    assert out_np.shape == (2, 3, 21, 3)
    out_t = correct_pose(torch.tensor(poses, dtype=torch.float32))
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.numpy(), out_np, atol=1e-6)
    assert count_violations(out_t).max() == 0  # float32 round-off stays within the tolerance


def test_degenerate_and_bad_input(hand_model) -> None:
    for j in (np.zeros((21, 3)), np.full((21, 3), 0.5)):
        out = correct_pose(j)
        assert np.isfinite(out).all() and count_violations(out) == 0
        assert np.allclose(out[0], j[0])  # the wrist stays
    nan = np.zeros((21, 3))
    nan[4, 1] = np.nan
    with pytest.raises(ValueError, match="joints contains NaN"):
        correct_pose(nan)
    with pytest.raises(ValueError, match="joints contains NaN"):
        correct_pose(torch.full((2, 21, 3), float("inf")))
    with pytest.raises(ValueError, match=r"joints must have shape \(\.\.\., 21, 3\)"):
        correct_pose(np.zeros((21, 2)))
    with pytest.raises(ValueError, match="handedness must be one of"):
        correct_pose(np.zeros((21, 3)), handedness="ambi")
