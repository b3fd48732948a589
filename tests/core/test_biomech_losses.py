"""Differentiable biomechanical losses: analytic values, gradcheck, degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handpose.core.biomech import (
    BiomechLoss,
    biomech_loss,
    bone_length_loss,
    forward_kinematics,
    interval_penalty,
    joint_angle_loss,
    palm_normal_loss,
    root_angle_loss,
    root_curvature_loss,
)
from handpose.core.biomech.frames import mirror_x

LOSSES = (bone_length_loss, root_angle_loss, root_curvature_loss, palm_normal_loss,
          joint_angle_loss, biomech_loss)


def _pose(hand_model, flex: np.ndarray | None = None, abd: np.ndarray | None = None) -> np.ndarray:
    f = np.deg2rad(np.full(15, 10.0)) if flex is None else flex
    a = np.zeros(15) if abd is None else abd
    return forward_kinematics(hand_model.rest_pose, f, a, hand_model.bone_lengths)


def test_interval_penalty_analytic() -> None:
    x = torch.tensor([-2.0, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(interval_penalty(x, 0.0, 1.0).numpy(), [2.0, 0.0, 0.0, 0.0, 2.0])


def test_feasible_pose_has_zero_loss(hand_model) -> None:
    j = torch.tensor(_pose(hand_model))
    for loss in LOSSES:
        assert float(loss(j)) == 0.0, loss.__name__


def test_losses_measure_the_excess(hand_model) -> None:
    # flex the index DIP 0.1 rad beyond its upper limit: joint-angle loss = 0.1 exactly
    flex = np.deg2rad(np.full(15, 10.0))
    flex[5] = hand_model.flexion_limits[5, 1] + 0.1
    j = _pose(hand_model, flex)
    assert float(joint_angle_loss(torch.tensor(j))) == pytest.approx(0.1, abs=1e-9)
    assert float(bone_length_loss(torch.tensor(j))) == 0.0
    # stretch the pinky tip bone to 0.05 beyond its max ratio
    j = _pose(hand_model)
    ref = hand_model.bone_lengths[9]
    hi = hand_model.bone_length_range[19, 1]
    d = (j[20] - j[19]) / np.linalg.norm(j[20] - j[19])
    j[20] = j[19] + d * (hi + 0.05) * ref
    assert float(bone_length_loss(torch.tensor(j))) == pytest.approx(0.05, abs=1e-9)
    # numpy in, numpy out, same value
    assert isinstance(bone_length_loss(j), np.floating | float)
    assert float(bone_length_loss(j)) == pytest.approx(0.05, abs=1e-9)


def test_left_hands_and_reductions(hand_model) -> None:
    flex = np.deg2rad(np.full(15, 10.0))
    flex[7] = hand_model.flexion_limits[7, 1] + 0.2
    j = torch.tensor(np.stack([_pose(hand_model), _pose(hand_model, flex)]))
    per = biomech_loss(j, reduction="none")
    assert per.shape == (2,) and float(per[0]) == 0.0 and float(per[1]) == pytest.approx(0.2)
    assert float(biomech_loss(j)) == pytest.approx(0.1)
    assert float(biomech_loss(j, reduction="sum")) == pytest.approx(0.2)
    left = mirror_x(j)
    assert float(biomech_loss(left, handedness="left", reduction="sum")) == pytest.approx(0.2)
    assert float(biomech_loss(left, handedness="auto", reduction="sum")) == pytest.approx(0.2)
    assert float(biomech_loss(left, handedness="right", reduction="sum")) > 1.0


def test_biomech_loss_is_the_weighted_sum(rng, hand_model) -> None:
    j = torch.tensor(_pose(hand_model) + rng.normal(0, 0.01, (3, 21, 3)))
    parts = {
        "bone_length": bone_length_loss(j), "root_angle": root_angle_loss(j),
        "root_curvature": root_curvature_loss(j), "palm_normal_angle": palm_normal_loss(j),
    }
    w = {"bone_length": 2.0, "root_angle": 0.5, "root_curvature": 3.0, "palm_normal_angle": 1.5,
         "flexion": 0.0, "abduction": 0.0}
    want = sum(w[k] * float(v) for k, v in parts.items())
    assert float(biomech_loss(j, weights=w)) == pytest.approx(want, rel=1e-10)
    both = biomech_loss(j, weights={k: (1.0 if k in ("flexion", "abduction") else 0.0) for k in w})
    assert float(both) == pytest.approx(float(joint_angle_loss(j)), rel=1e-10)
    assert float(BiomechLoss(weights=w)(j)) == pytest.approx(want, rel=1e-10)
    with pytest.raises(ValueError, match="weights has unknown family 'flex'"):
        biomech_loss(j, weights={"flex": 1.0})
    with pytest.raises(ValueError, match="reduction must be one of"):
        biomech_loss(j, reduction="avg")


@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
def test_gradcheck(loss, rng, hand_model) -> None:
    # an infeasible pose (every penalty active somewhere), generic so no value sits on a kink
    j = _pose(hand_model) + rng.normal(0, 0.012, (2, 21, 3))
    jt = torch.tensor(j, requires_grad=True)
    assert float(loss(jt.detach())) > 0.0
    assert torch.autograd.gradcheck(lambda x: loss(x, reduction="sum"), (jt,), eps=1e-7,
                                    atol=1e-5, rtol=1e-4)


def test_degenerate_inputs_never_give_nan_gradients(hand_model) -> None:
    rest = torch.tensor(hand_model.rest_pose)
    collapsed = rest.clone()
    collapsed[6:9] = collapsed[5]  # zero-length index bones
    colinear = rest.clone()
    along_y = torch.tensor([0, 1.0, 0], dtype=torch.float64)
    steps = torch.linspace(0.02, 0.1, 5, dtype=torch.float64)
    colinear[[1, 5, 9, 13, 17]] = steps[:, None] * along_y
    for j in (torch.zeros(21, 3), torch.full((21, 3), 0.4), collapsed, colinear):
        for dtype in (torch.float32, torch.float64):
            jt = j.to(dtype).clone().requires_grad_(True)
            value = biomech_loss(jt, handedness="auto")
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(jt.grad).all()
