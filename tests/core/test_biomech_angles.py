"""Local frames, joint angles, palm angles and forward kinematics (METHODS §3)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from handpose.core.biomech import (
    forward_kinematics,
    joint_angles,
    palm_normal_angles,
    root_angles,
    root_curvature,
)
from handpose.core.biomech.frames import mirror_x

DEG = np.pi / 180


def _random_angles(rng: np.random.Generator, hand_model, n: int) -> tuple[np.ndarray, np.ndarray]:
    flo, fhi = hand_model.flexion_limits.T
    alo, ahi = hand_model.abduction_limits.T
    return rng.uniform(flo, fhi, (n, 15)), rng.uniform(alo, ahi, (n, 15))


def _rigid(rng: np.random.Generator, joints: np.ndarray) -> np.ndarray:
    rot = Rotation.random(len(joints), random_state=int(rng.integers(1 << 30))).as_matrix()
    return np.einsum("nij,nkj->nki", rot, joints) + rng.normal(0, 0.3, (len(joints), 1, 3))


def test_straight_finger_has_zero_angles(hand_model) -> None:
    j = hand_model.rest_pose.copy()
    for f in range(1, 5):
        mcp = 4 * f + 1
        d = j[mcp] / np.linalg.norm(j[mcp])  # continue the root bone straight
        for k in range(1, 4):
            j[mcp + k] = j[mcp] + d * 0.02 * k
    flex, abd = joint_angles(j)
    np.testing.assert_allclose(flex[3:], 0.0, atol=1e-12)
    np.testing.assert_allclose(abd[3:], 0.0, atol=1e-12)


def test_bending_towards_the_palm_is_positive_flexion(hand_model) -> None:
    # The rest palm is planar (z = 0) and +z is volar: a bone along +z from the MCP is flexed
    # by +90 deg; the next bone pointing back to the wrist (-root direction) is flexed a
    # further +90 deg; a bone turned in the palm plane towards the thumb (+x) is abducted.
    j = hand_model.rest_pose.copy()
    mcp = j[9]  # middle MCP: root bone along +y
    j[10] = mcp + [0.0, 0.0, 0.04]
    j[11] = j[10] + [0.0, -0.03, 0.0]
    j[12] = j[11] + [0.0, 0.0, -0.02]  # back towards the back of the hand: +90 again
    idx = j[5]
    d = idx / np.linalg.norm(idx)
    side = np.cross(d, [0.0, 0.0, 1.0])  # in the palm plane, towards the thumb (+x)
    j[6] = idx + 0.04 * (np.cos(10 * DEG) * d + np.sin(10 * DEG) * side)
    flex, abd = joint_angles(j)
    np.testing.assert_allclose(np.rad2deg(flex[6:9]), [90.0, 90.0, 90.0], atol=1e-9)
    np.testing.assert_allclose(np.rad2deg(abd[6:9]), 0.0, atol=1e-9)
    assert np.rad2deg(abd[3]) == pytest.approx(10.0, abs=1e-9)
    assert np.rad2deg(flex[3]) == pytest.approx(0.0, abs=1e-9)


def test_angles_are_rigid_invariant_and_mirror_consistent(rng, hand_model) -> None:
    flex, abd = _random_angles(rng, hand_model, 50)
    j = forward_kinematics(hand_model.rest_pose, flex, abd, hand_model.bone_lengths)
    moved = _rigid(rng, j)
    f2, a2 = joint_angles(moved)
    np.testing.assert_allclose(f2, flex, atol=1e-9)
    np.testing.assert_allclose(a2, abd, atol=1e-9)
    # A left hand is the mirror image: measured as "left" it has the same angles.
    f3, a3 = joint_angles(mirror_x(moved), handedness="left")
    np.testing.assert_allclose(f3, flex, atol=1e-9)
    np.testing.assert_allclose(a3, abd, atol=1e-9)
    # Measured with the wrong chirality the flexion changes sign; "auto" finds the right one.
    f4, _ = joint_angles(mirror_x(moved), handedness="right")
    np.testing.assert_allclose(f4, -flex, atol=1e-9)
    f5, _ = joint_angles(mirror_x(moved), handedness="auto")
    np.testing.assert_allclose(f5, flex, atol=1e-9)


def test_forward_kinematics_round_trip_on_real_poses(hgc_dir, rgbd_dir) -> None:
    left = np.asarray(json.loads((hgc_dir / "training_xyz.json").read_text()))
    frames = json.loads((rgbd_dir / "frames.json").read_text())["frames"]
    right = np.asarray([f["joints_m"] for f in frames])
    for joints, hand in ((left, "left"), (right, "right")):
        flex, abd = joint_angles(joints, handedness=hand)
        lengths = np.linalg.norm(joints[:, 1:] - joints[:, [0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10,
                                                           11, 0, 13, 14, 15, 0, 17, 18, 19]],
                                 axis=-1)
        back = forward_kinematics(joints, flex, abd, lengths, handedness=hand)
        assert np.abs(back - joints).max() < 1e-9


def test_forward_kinematics_inverts_joint_angles_and_broadcasts(rng, hand_model) -> None:
    flex, abd = _random_angles(rng, hand_model, 64)
    palm = hand_model.rest_pose[[0, 1, 5, 9, 13, 17]]  # (6, 3), broadcast over the batch
    j = forward_kinematics(palm, flex.reshape(8, 8, 15), abd.reshape(8, 8, 15),
                           hand_model.bone_lengths)
    assert j.shape == (8, 8, 21, 3)
    f2, a2 = joint_angles(j)
    np.testing.assert_allclose(f2.reshape(64, 15), flex, atol=1e-10)
    np.testing.assert_allclose(a2.reshape(64, 15), abd, atol=1e-10)
    lengths = np.linalg.norm(j[..., 1:, :] - j[..., [0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13,
                                                     14, 15, 0, 17, 18, 19], :], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(hand_model.bone_lengths, (8, 8, 20)),
                               atol=1e-12)
    # torch gives the same joints
    jt = forward_kinematics(torch.tensor(palm), torch.tensor(flex), torch.tensor(abd),
                            torch.tensor(hand_model.bone_lengths))
    np.testing.assert_allclose(jt.numpy(), j.reshape(64, 21, 3), atol=1e-12)


def test_torch_matches_numpy_and_has_finite_gradients(rng, hand_model) -> None:
    flex, abd = _random_angles(rng, hand_model, 4)
    j = forward_kinematics(hand_model.rest_pose, flex, abd, hand_model.bone_lengths)
    jt = torch.tensor(j, requires_grad=True)
    ft, at = joint_angles(jt)
    np.testing.assert_allclose(ft.detach().numpy(), flex, atol=1e-10)
    (ft.sum() + at.sum()).backward()
    assert jt.grad is not None and torch.isfinite(jt.grad).all()


def test_degenerate_poses_give_finite_angles_and_gradients() -> None:
    for j in (torch.zeros(21, 3), torch.ones(2, 21, 3) * 0.3):
        jt = j.double().requires_grad_(True)
        f, a = joint_angles(jt)
        assert torch.isfinite(f).all() and torch.isfinite(a).all()
        (f.sum() + a.sum() + root_curvature(jt).sum() + root_angles(jt).sum()).backward()
        assert torch.isfinite(jt.grad).all()


def test_palm_angles_analytic(hand_model) -> None:
    rest = hand_model.rest_pose
    np.testing.assert_allclose(np.rad2deg(root_angles(rest)), [42, 16, 17, 15], atol=1e-4)
    np.testing.assert_allclose(root_curvature(rest), 0.0, atol=1e-12)  # planar palm
    np.testing.assert_allclose(palm_normal_angles(rest), 0.0, atol=1e-9)
    # Cup the palm: thumb and pinky MCPs move volar (+z) -> positive curvature, which flips
    # sign for the mirror image unless it is measured as a left hand.
    cup = rest.copy()
    cup[[1, 17], 2] += 0.01
    c = root_curvature(cup)
    assert c[0] > 0 and c[3] > 0
    np.testing.assert_allclose(root_curvature(mirror_x(cup)), -c, atol=1e-12)
    np.testing.assert_allclose(root_curvature(mirror_x(cup), handedness="left"), c, atol=1e-12)


def test_curvature_matches_a_naive_implementation(rng, hand_model) -> None:
    j = hand_model.rest_pose + rng.normal(0, 0.004, (21, 3))
    b = [(j[r] - j[0]) / np.linalg.norm(j[10] - j[9]) for r in (1, 5, 9, 13, 17)]
    n = [np.cross(b[i + 1], b[i]) / np.linalg.norm(np.cross(b[i + 1], b[i])) for i in range(4)]
    e = [n[0]] + [(n[i - 1] + n[i]) / np.linalg.norm(n[i - 1] + n[i]) for i in (1, 2, 3)] + [n[3]]
    want_c = [np.dot(e[i + 1] - e[i], b[i + 1] - b[i]) / np.dot(b[i + 1] - b[i], b[i + 1] - b[i])
              for i in range(4)]
    want_phi = [np.arccos(np.dot(b[i], b[i + 1]) / np.linalg.norm(b[i]) / np.linalg.norm(b[i + 1]))
                for i in range(4)]
    np.testing.assert_allclose(root_curvature(j), want_c, atol=1e-12)
    np.testing.assert_allclose(root_angles(j), want_phi, atol=1e-12)


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match=r"joints must have shape \(\.\.\., 21, 3\)"):
        joint_angles(np.zeros((20, 3)))
    with pytest.raises(ValueError, match="joints contains NaN"):
        joint_angles(np.full((21, 3), np.nan))
    with pytest.raises(ValueError, match="handedness must be one of"):
        joint_angles(np.zeros((21, 3)), handedness="both")
    with pytest.raises(ValueError, match=r"flexion must have shape \(\.\.\., 15\)"):
        forward_kinematics(np.zeros((6, 3)), np.zeros(14), np.zeros(15), np.ones(20))
    with pytest.raises(ValueError, match="palm must have shape"):
        forward_kinematics(np.zeros((5, 3)), np.zeros(15), np.zeros(15), np.ones(20))
    with pytest.raises(ValueError, match="handedness must be one of"):
        forward_kinematics(np.zeros((6, 3)), np.zeros(15), np.zeros(15), np.ones(20), "auto")
