from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from handpose.core.handmodel import HandModelError, default_hand_model_path, load_hand_model
from handpose.core.skeleton import REFERENCE_BONE


def test_shipped_model_is_consistent(hand_model) -> None:
    m = hand_model
    assert m.bone_lengths.shape == (20,) and np.all(m.bone_lengths > 0)
    # The reference bone's normalised range is exactly [1, 1]; every template ratio is in range.
    ratios = m.bone_lengths / m.reference_bone_length
    lo, hi = m.bone_length_range.T
    assert lo[REFERENCE_BONE[1] - 1] == hi[REFERENCE_BONE[1] - 1] == 1.0
    assert np.all((ratios >= lo) & (ratios <= hi))
    # Hand length wrist -> middle tip of an adult: 16-21 cm.
    assert 0.16 < m.bone_lengths[8:12].sum() < 0.21
    assert m.sphere_weights.shape == (41, 21) and np.allclose(m.sphere_weights.sum(1), 1)
    assert m.circle_weights.shape == (55, 21) and np.allclose(m.circle_weights.sum(1), 1)
    assert np.all(m.sphere_radii > 0.002) and np.all(m.sphere_radii < 0.02)
    assert m.flexion_limits.shape == (15, 2)
    assert np.all(m.flexion_limits[:, 0] < m.flexion_limits[:, 1])


def test_model_arrays_are_read_only(hand_model) -> None:
    with pytest.raises(ValueError):
        hand_model.bone_lengths[0] = 1.0


def _write(tmp_path: Path, mutate) -> Path:
    data = json.loads(default_hand_model_path().read_text())
    mutate(data)
    p = tmp_path / "model.json"
    p.write_text(json.dumps(data))
    return p


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(HandModelError, match="not found"):
        load_hand_model(tmp_path / "nope.json")
    torn = tmp_path / "torn.json"
    torn.write_text(default_hand_model_path().read_text()[:200])
    with pytest.raises(HandModelError, match="cannot read the hand model as JSON"):
        load_hand_model(torn)

    def short_lengths(d):
        d["bone_lengths_m"]["values"] = d["bone_lengths_m"]["values"][:19]

    with pytest.raises(HandModelError, match=r"bone_lengths_m must have shape \(20,\)"):
        load_hand_model(_write(tmp_path, short_lengths))

    def bad_weights(d):
        d["spheres"]["values"][3]["anchors"] = [[0, 0.2], [5, 0.2]]

    with pytest.raises(HandModelError, match=r"spheres\[3\] anchor weights must sum to 1"):
        load_hand_model(_write(tmp_path, bad_weights))

    def missing(d):
        del d["joint_limits"]

    with pytest.raises(HandModelError, match="missing key 'joint_limits'"):
        load_hand_model(_write(tmp_path, missing))

    def flipped(d):
        d["joint_limits"]["values"][0]["flexion_deg"] = [50, -50]

    with pytest.raises(HandModelError, match="flexion has a range with min > max"):
        load_hand_model(_write(tmp_path, flipped))
