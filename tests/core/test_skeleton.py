from __future__ import annotations

import numpy as np
import pytest
import torch

from handpose.core.skeleton import (
    BONES,
    FINGERS,
    JOINT_ORDERS,
    PARENTS,
    Joint,
    convert_joint_order,
)


def test_bones_are_in_chain_order_and_cover_the_tree() -> None:
    assert len(BONES) == 20
    seen = {0}
    for parent, child in BONES:
        assert parent in seen, f"bone {parent}->{child} visited before its parent"
        seen.add(child)
    assert seen == set(range(21))
    assert all(PARENTS[c] == p for p, c in BONES)


def test_named_joints_match_the_freihand_order() -> None:
    assert Joint.THUMB_TIP == 4 and Joint.INDEX_MCP == 5 and Joint.PINKY_TIP == 20
    assert FINGERS[2] == (9, 10, 11, 12)
    assert PARENTS[Joint.MIDDLE_PIP] == Joint.MIDDLE_MCP


def test_rhd_order_is_tip_to_base_per_finger() -> None:
    ours = np.arange(21)[:, None].astype(float)
    rhd = convert_joint_order(ours, "handpose", "rhd")
    # RHD index 1 is the thumb tip, 4 the thumb base, 5 the index tip.
    assert rhd[1, 0] == Joint.THUMB_TIP and rhd[4, 0] == Joint.THUMB_CMC
    assert rhd[5, 0] == Joint.INDEX_TIP and rhd[20, 0] == Joint.PINKY_MCP


def test_interhand_order_puts_the_wrist_last() -> None:
    ours = np.arange(21)[:, None].astype(float)
    ih = convert_joint_order(ours, "handpose", "interhand")
    assert ih[20, 0] == Joint.WRIST and ih[0, 0] == Joint.THUMB_TIP and ih[3, 0] == Joint.THUMB_CMC


@pytest.mark.parametrize("order", sorted(JOINT_ORDERS))
def test_conversion_round_trips(order: str, rng: np.random.Generator) -> None:
    x = rng.normal(size=(4, 21, 3))
    there = convert_joint_order(x, "handpose", order)
    assert np.array_equal(convert_joint_order(there, order, "handpose"), x)


def test_conversion_keeps_torch_tensors() -> None:
    x = torch.randn(2, 21, 2)
    y = convert_joint_order(x, "rhd")
    assert isinstance(y, torch.Tensor) and y.shape == x.shape


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown joint order 'coco'"):
        convert_joint_order(np.zeros((21, 2)), "coco")
    with pytest.raises(ValueError, match=r"\(\.\.\., 21, D\); got \(20, 2\)"):
        convert_joint_order(np.zeros((20, 2)), "rhd")
