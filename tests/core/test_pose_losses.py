"""Pose losses: analytic values, masking, 3D after lifting, weights, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from handpose.core.geometry.lifting import to_25d
from handpose.core.losses.pose import (
    PoseLossWeights,
    PoseTarget,
    confidence_l1,
    lift_prediction,
    pose_loss,
    uv_l1,
)
from handpose.core.models import RootRefiner

CROP = 128.0


def _hands(hand_model, b: int = 3, dtype=torch.float64):  # type: ignore[no-untyped-def]
    """b rest-pose hands turned about the vertical axis, 0.45 m in front of a crop camera."""
    rest = hand_model.rest_pose - hand_model.rest_pose.mean(axis=0)
    K = np.array([[220.0, 0, 63.5], [0, 220.0, 63.5], [0, 0, 1]])
    joints = []
    for a in np.linspace(-0.6, 0.6, b):
        c, s = math.cos(a), math.sin(a)
        rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        joints.append(rest @ rot.T + np.array([0.0, 0.0, 0.45]))
    j = torch.tensor(np.stack(joints), dtype=dtype)
    k = torch.tensor(K, dtype=dtype).expand(b, 3, 3).clone()
    uv, z, s = to_25d(j, k)
    return PoseTarget(uv=uv, z_rel=z, joints=j, K=k, scale=s)


def test_uv_l1_analytic_and_masked() -> None:
    gt = torch.rand(2, 21, 2) * CROP
    pred = gt.clone()
    pred[0, 3, 0] += 6.0
    assert math.isclose(float(uv_l1(pred, gt, CROP)), 6.0 / CROP / (2 * 21 * 2), rel_tol=1e-5)
    pred[1, 5] += 100.0  # an unlabelled joint
    mask = torch.ones(2, 21, dtype=torch.bool)
    mask[1, 5] = False
    assert math.isclose(float(uv_l1(pred, gt, CROP, mask)), 6.0 / CROP / (41 * 2), rel_tol=1e-5)
    none = torch.zeros(2, 21, dtype=torch.bool)
    p = pred.clone().requires_grad_(True)
    loss = uv_l1(p, gt, CROP, none)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.all(p.grad == 0)
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 21\)"):
        uv_l1(pred, gt, CROP, torch.ones(2, 20))


def test_exact_prediction_has_zero_loss_and_terms_are_weighted(hand_model) -> None:
    tgt = _hands(hand_model)
    pred = {"uv": tgt.uv.clone(), "z_rel": tgt.z_rel.clone()}
    out = pose_loss(pred, tgt, CROP)
    assert float(out["total"]) < 1e-10 and set(out) == {"total", "uv", "z_rel", "xyz"}
    pred["z_rel"] = pred["z_rel"] + 0.0
    pred["z_rel"][:, 12] += 0.5  # middle fingertip 0.5 bone lengths further
    out = pose_loss(pred, tgt, CROP)
    assert math.isclose(float(out["z_rel"]), 0.5 / 21, rel_tol=1e-9)
    # the root is unaffected (joint 12 is not on the reference bone): only joint 12 moves,
    # along its ray, by 0.5 s in depth -> |dP| / s = 0.5 * (|x| + |y| + 1) / (21 * 3)
    xy = tgt.joints[:, 12, :2] / tgt.joints[:, 12, 2:]
    expected = (0.5 * (xy.abs().sum(-1) + 1.0)).mean() / (21 * 3)
    assert math.isclose(float(out["xyz"]), float(expected), rel_tol=1e-6)
    w = PoseLossWeights()
    assert math.isclose(float(out["total"]), float(w.uv * out["uv"] + w.z_rel * out["z_rel"]
                                                   + w.xyz * out["xyz"]), rel_tol=1e-9)
    out0 = pose_loss(pred, tgt, CROP, PoseLossWeights(xyz=0.0, z_rel=2.0))
    assert "xyz" not in out0 and math.isclose(float(out0["total"]), 2 * float(out["z_rel"]))


def test_samples_without_3d_are_skipped(hand_model) -> None:
    tgt = _hands(hand_model, b=3)
    k = tgt.K.clone()
    k[1] = 0.0  # no camera for the 2D-only sample
    s = tgt.scale.clone()
    s[1] = 0.0
    has3 = torch.tensor([True, False, True])
    tgt2 = PoseTarget(uv=tgt.uv, z_rel=tgt.z_rel, joints=tgt.joints, K=k, scale=s,
                      has_3d=has3)
    z = tgt.z_rel.clone()
    z[1] += 3.0  # wrong depth on the 2D-only sample must not count
    out = pose_loss({"uv": tgt.uv, "z_rel": z}, tgt2, CROP)
    assert float(out["z_rel"]) < 1e-12 and float(out["xyz"]) < 1e-10
    none = PoseTarget(uv=tgt.uv, z_rel=tgt.z_rel, joints=tgt.joints, K=k, scale=s,
                      has_3d=torch.zeros(3, dtype=torch.bool))
    assert float(pose_loss({"uv": tgt.uv, "z_rel": z}, none, CROP)["xyz"]) == 0.0


def test_confidence_target_is_detached() -> None:
    gt = torch.zeros(1, 21, 2)
    uv = torch.full((1, 21, 2), 3.0, requires_grad=True)
    err = torch.zeros(1, 21, requires_grad=True)
    loss = confidence_l1(err, uv, gt, CROP)
    loss.backward()
    assert math.isclose(float(loss.detach()), 3 * math.sqrt(2) / CROP, rel_tol=1e-5)
    assert uv.grad is None or torch.all(uv.grad == 0)
    assert err.grad is not None and torch.all(err.grad < 0)


def test_root_refiner_path_and_gradcheck(hand_model) -> None:
    tgt = _hands(hand_model, b=2)
    ref = RootRefiner().double().eval()
    torch.nn.init.zeros_(ref.mlp[-1].weight)
    torch.nn.init.zeros_(ref.mlp[-1].bias)
    plain = lift_prediction(tgt.uv, tgt.z_rel, tgt.K, tgt.scale)
    refined = lift_prediction(tgt.uv, tgt.z_rel, tgt.K, tgt.scale, ref)
    assert torch.allclose(plain, tgt.joints, atol=1e-12)
    assert torch.allclose(refined, plain, atol=1e-12)  # zero correction, Z inside [4, 50]
    torch.nn.init.constant_(ref.mlp[-1].bias, 1.0)  # +1 bone length of root depth
    moved = lift_prediction(tgt.uv, tgt.z_rel, tgt.K, tgt.scale, ref)
    dz = (moved[..., 2] - plain[..., 2]) / tgt.scale[:, None]
    assert torch.allclose(dz, torch.ones_like(dz), atol=1e-9)

    one = _hands(hand_model, b=1)
    uv0 = (one.uv + 0.7).requires_grad_(True)
    z0 = (one.z_rel + 0.05).requires_grad_(True)

    def f(uv: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return pose_loss({"uv": uv, "z_rel": z}, one, CROP)["total"]

    assert torch.autograd.gradcheck(f, (uv0, z0))


def test_root_relative_3d_ignores_the_root_depth_and_the_camera_frame_does_not(hand_model
                                                                               ) -> None:
    tgt = _hands(hand_model)
    pred = {"uv": tgt.uv.clone(), "z_rel": tgt.z_rel.clone()}
    # 1.01 x the true scale lifts the same 2.5D pose to exactly 1.01 x the hand (1 % bigger
    # and 1 % further): the root-relative term sees only the size change, the camera-frame
    # one the ~4.5 mm shift of every joint too
    tgt2 = PoseTarget(uv=tgt.uv, z_rel=tgt.z_rel, joints=tgt.joints, K=tgt.K,
                      scale=tgt.scale * 1.01)
    root = pose_loss(pred, tgt2, CROP, PoseLossWeights(xyz_frame="root"))["xyz"]
    cam = pose_loss(pred, tgt2, CROP, PoseLossWeights(xyz_frame="camera"))["xyz"]
    rel = tgt.joints - tgt.joints[:, :1]
    expected_root = (0.01 * rel.abs() / tgt2.scale.view(-1, 1, 1)).mean()
    assert math.isclose(float(root), float(expected_root), rel_tol=1e-6)
    expected_cam = (0.01 * tgt.joints.abs() / tgt2.scale.view(-1, 1, 1)).mean()
    assert math.isclose(float(cam), float(expected_cam), rel_tol=1e-6)
    assert float(cam) > 3 * float(root)
    with pytest.raises(ValueError, match="xyz_frame"):
        PoseLossWeights(xyz_frame="world")
