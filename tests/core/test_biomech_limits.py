"""The constraint intervals and rest pose of hand_model.json, their derivation, real poses
being feasible, and the violation report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from handpose.core.biomech import (
    NUM_CONSTRAINTS,
    count_violations,
    forward_kinematics,
    is_feasible,
    is_left_hand,
    palm_normal_angles,
    root_curvature,
    violations,
)
from handpose.core.biomech.calibration import ANATOMICAL_PRIORS, calibrate_limits, make_rest_pose
from handpose.core.biomech.frames import mirror_x
from handpose.core.handmodel import HandModelError, default_hand_model_path, load_hand_model


def _real(hgc_dir: Path, rgbd_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    left = np.asarray(json.loads((hgc_dir / "training_xyz.json").read_text()))
    frames = json.loads((rgbd_dir / "frames.json").read_text())["frames"]
    return left, np.asarray([f["joints_m"] for f in frames])


def test_every_real_labelled_pose_is_feasible(hgc_dir, rgbd_dir) -> None:
    left, right = _real(hgc_dir, rgbd_dir)  # real_eval_hgc is a left hand, real_rgbd right
    assert left.shape == (400, 21, 3) and right.shape == (25, 21, 3)
    assert count_violations(left, handedness="left").max() == 0
    assert count_violations(right, handedness="right").max() == 0
    assert is_left_hand(left).all() and not is_left_hand(right).any()
    assert count_violations(np.concatenate([left, right]), handedness="auto").max() == 0
    # with the wrong chirality they are not feasible (the limits are not vacuous)
    assert (count_violations(left, handedness="right") > 0).mean() > 0.9


def test_shipped_limits_are_reproduced_by_the_calibration(hgc_dir, rgbd_dir, hand_model) -> None:
    left, right = _real(hgc_dir, rgbd_dir)
    c = calibrate_limits(np.concatenate([mirror_x(left), right]), hand_model.bone_lengths)
    m = hand_model
    np.testing.assert_allclose(np.rad2deg(m.flexion_limits), c["flexion_deg"], atol=1e-9)
    np.testing.assert_allclose(np.rad2deg(m.abduction_limits), c["abduction_deg"], atol=1e-9)
    np.testing.assert_allclose(np.rad2deg(m.root_angle_limits), c["root_angle_deg"], atol=1e-9)
    np.testing.assert_allclose(m.root_curvature_limits, c["root_curvature"], atol=1e-9)
    np.testing.assert_allclose(np.rad2deg(m.root_normal_angle_limits),
                               c["palm_normal_angle_deg"], atol=1e-9)
    np.testing.assert_allclose(m.bone_length_range, c["bone_length_range"], atol=1e-9)
    raw = json.loads(default_hand_model_path().read_text())
    angles = np.asarray(raw["rest_pose"]["root_angles_deg"])
    np.testing.assert_allclose(angles, np.round(c["median_root_angle_deg"]))
    np.testing.assert_allclose(m.rest_pose, make_rest_pose(m.bone_lengths, angles), atol=1e-6)


def test_limits_contain_the_anatomical_priors(hand_model) -> None:
    pri = np.asarray(ANATOMICAL_PRIORS["joints"])  # (15, 2, 2) degrees
    flex, abd = np.rad2deg(hand_model.flexion_limits), np.rad2deg(hand_model.abduction_limits)
    assert np.all(flex[:, 0] <= pri[:, 0, 0] + 1e-9) and np.all(flex[:, 1] >= pri[:, 0, 1] - 1e-9)
    assert np.all(abd[:, 0] <= pri[:, 1, 0] + 1e-9) and np.all(abd[:, 1] >= pri[:, 1, 1] - 1e-9)
    # still anatomically bounded: no finger bone bends back more than 35 deg or over 145 deg
    assert flex.min() >= -35 and flex.max() <= 145 and np.abs(abd).max() <= 60


def test_rest_pose_is_a_feasible_right_hand_in_the_hand_frame(hand_model) -> None:
    rest = hand_model.rest_pose
    assert count_violations(rest) == 0 and not is_left_hand(rest)
    assert np.allclose(rest[0], 0) and np.allclose(rest[[1, 5, 9, 13, 17], 2], 0)  # flat palm
    assert abs(rest[9, 0]) < 1e-9 and rest[9, 1] > 0  # middle root along +y
    assert rest[1, 0] > rest[5, 0] > 0 > rest[13, 0] > rest[17, 0]  # thumb side is +x
    assert np.all(rest[[8, 12, 16, 20], 2] > 0.01)  # fingers curl out of the palm (+z)
    np.testing.assert_allclose(root_curvature(rest), 0, atol=1e-12)
    np.testing.assert_allclose(palm_normal_angles(rest), 0, atol=1e-9)


def test_violation_report(hand_model) -> None:
    flex = np.deg2rad(np.full(15, 40.0))  # a curled hand: its mirror image is infeasible
    flex[4] = hand_model.flexion_limits[4, 1] + np.deg2rad(7.0)  # index PIP->DIP
    j = forward_kinematics(hand_model.rest_pose, flex, np.zeros(15), hand_model.bone_lengths)
    j[20] = j[19] + (j[20] - j[19]) * 2.0  # pinky DIP->TIP twice its length
    report = violations(j)
    by_family = {v.family: v for v in report}
    assert set(by_family) == {"flexion", "bone_length"}
    f = by_family["flexion"]
    assert f.name == "index PIP->DIP" and f.unit == "deg" and f.index == 4 and f.pose == ()
    assert f.excess == pytest.approx(7.0, abs=1e-9) and f.handedness == "right"
    length = by_family["bone_length"]
    ref_mm = 1000 * hand_model.bone_lengths[9]
    ratio = 2.0 * hand_model.bone_lengths[19] / hand_model.bone_lengths[9]
    assert length.name == "pinky_dip->pinky_tip" and length.unit == "ratio"
    assert length.excess == pytest.approx(ratio - hand_model.bone_length_range[19, 1], abs=1e-9)
    assert length.excess_mm == pytest.approx(length.excess * ref_mm, rel=1e-9)
    assert "pinky_dip->pinky_tip" in str(length)
    # batched: pose indices and counts
    batch = np.stack([hand_model.rest_pose, j, mirror_x(j)])
    assert [v.pose for v in violations(batch)] == [(1,), (1,)] + [(2,)] * len(violations(
        mirror_x(j), handedness="right"))
    counts = count_violations(batch)
    assert counts.tolist() == [0, 2, counts[2]] and counts[2] > 2
    assert count_violations(batch, handedness="auto").tolist() == [0, 2, 2]
    assert is_feasible(batch).tolist() == [True, False, False]
    assert 0 < counts.max() <= NUM_CONSTRAINTS == 61


def _write(tmp_path: Path, mutate) -> Path:
    data = json.loads(default_hand_model_path().read_text())
    mutate(data)
    p = tmp_path / "model.json"
    p.write_text(json.dumps(data))
    return p


def test_bad_limits_and_rest_pose_are_rejected(tmp_path: Path) -> None:
    def wide_flexion(d):
        d["joint_limits"]["values"][4]["flexion_deg"] = [-10, 180]

    with pytest.raises(HandModelError, match=r"flexion_deg must lie strictly inside \(-180, 180\)"):
        load_hand_model(_write(tmp_path, wide_flexion))

    def zero_root_angle(d):
        d["root_limits"]["angle_deg"][1] = [0, 30]

    with pytest.raises(HandModelError, match=r"angle_deg must lie strictly inside \(0, 180\)"):
        load_hand_model(_write(tmp_path, zero_root_angle))

    def no_rest(d):
        del d["rest_pose"]

    with pytest.raises(HandModelError, match="missing key 'rest_pose'"):
        load_hand_model(_write(tmp_path, no_rest))

    def stretched_rest(d):
        d["rest_pose"]["values"][8][1] += 0.01

    with pytest.raises(HandModelError, match=r"rest_pose bone \(7, 8\) is"):
        load_hand_model(_write(tmp_path, stretched_rest))

    def short_normals(d):
        d["root_limits"]["normal_angle_deg"] = d["root_limits"]["normal_angle_deg"][:2]

    with pytest.raises(HandModelError, match=r"normal_angle_deg must have shape \(3, 2\)"):
        load_hand_model(_write(tmp_path, short_normals))
