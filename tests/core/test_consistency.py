"""SemiHand consistency: pose distance units, view consistency, confidence, update, 2.5D P."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from handpose.core.augment import affine_matrices, transform_points, warp_images
from handpose.core.biomech import count_violations
from handpose.core.geometry.lifting import to_25d
from handpose.core.losses.consistency import (
    LAMBDA_D,
    TAU,
    correct_pose_25d,
    pose_distance,
    pseudo_label_confidence,
    rescale_affine,
    transform_pose,
    update_pseudo_labels,
    view_consistency,
)

K128 = torch.tensor([[150.0, 0.0, 63.5], [0.0, 150.0, 63.5], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _rand_pose(b: int, g: torch.Generator, size: float = 128.0,
               dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    uv = torch.rand(b, 21, 2, generator=g, dtype=dtype) * size
    z = torch.randn(b, 21, generator=g, dtype=dtype)
    return uv, z


def _matrices(b: int, g: torch.Generator, size: int = 128) -> torch.Tensor:
    angle = (torch.rand(b, generator=g, dtype=torch.float64) - 0.5) * 1.2
    scale = 0.8 + 0.4 * torch.rand(b, generator=g, dtype=torch.float64)
    tr = (torch.rand(b, 2, generator=g, dtype=torch.float64) - 0.5) * 10
    c = torch.tensor([(size - 1) / 2] * 2, dtype=torch.float64)
    return affine_matrices(angle, scale, tr, torch.zeros(b, dtype=torch.bool), c, c)


def _feasible_hand(hand_model, b: int, seed: int = 0) -> torch.Tensor:
    """(B, 21, 3) metres: the rest pose, rotated and placed 0.4-0.6 m in front of K128."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(b):
        a = rng.normal(size=3)
        a *= rng.uniform(0.2, 1.2) / np.linalg.norm(a)
        k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]]) / np.linalg.norm(a)
        th = np.linalg.norm(a)
        r = np.eye(3) + math.sin(th) * k + (1 - math.cos(th)) * k @ k
        t = np.array([rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), rng.uniform(0.4, 0.6)])
        out.append(hand_model.rest_pose @ r.T + t)
    return torch.tensor(np.stack(out))


def test_pose_distance_units() -> None:
    g = torch.Generator().manual_seed(0)
    uv, z = _rand_pose(4, g)
    # 1 px on the 64 grid = 2 px on a 128 crop, on every joint: l = 1
    shifted = uv + torch.tensor([2.0, 0.0], dtype=uv.dtype)
    torch.testing.assert_close(pose_distance(uv, z, shifted, z, 128.0),
                               torch.ones(4, dtype=uv.dtype))
    torch.testing.assert_close(pose_distance(uv, z, uv + 1.0, z, 64.0),
                               torch.full((4,), 2.0, dtype=uv.dtype))
    # depth: lambda_d * dz^2
    torch.testing.assert_close(pose_distance(uv, z, uv, z + 0.1, 128.0),
                               torch.full((4,), LAMBDA_D * 0.01, dtype=uv.dtype))
    # a naive per-joint loop
    uv2, z2 = _rand_pose(4, g)
    naive = torch.zeros(4, dtype=uv.dtype)
    for i in range(4):
        for k in range(21):
            du = (uv[i, k] - uv2[i, k]) * 64 / 96
            naive[i] += (du @ du + 50 * (z[i, k] - z2[i, k]) ** 2) / 21
    torch.testing.assert_close(pose_distance(uv, z, uv2, z2, 96.0), naive)
    assert pose_distance(uv, z, uv2, z2, 96.0, reduction="mean") == pytest.approx(
        float(naive.mean()))
    # a joint mask averages over the masked joints only
    jm = torch.zeros(4, 21, dtype=torch.bool)
    jm[:, 3] = True
    one = pose_distance(uv[:, 3:4].expand(4, 21, 2), z[:, 3:4].expand(4, 21),
                        uv2[:, 3:4].expand(4, 21, 2), z2[:, 3:4].expand(4, 21), 96.0)
    torch.testing.assert_close(pose_distance(uv, z, uv2, z2, 96.0, joint_mask=jm), one)


def test_pose_distance_gradcheck_and_errors() -> None:
    g = torch.Generator().manual_seed(1)
    uv, z = _rand_pose(2, g)
    uv2, z2 = _rand_pose(2, g)
    uv.requires_grad_(True)
    z.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: pose_distance(a, b, uv2, z2, 128.0), (uv, z))
    with pytest.raises(ValueError, match=r"p1_uv must be a tensor \(B, 21, 2\)"):
        pose_distance(uv[:, :20], z, uv2, z2, 128.0)
    with pytest.raises(ValueError, match="p2_z"):
        pose_distance(uv, z, uv2, z2[:, :3], 128.0)
    with pytest.raises(ValueError, match="crop_size"):
        pose_distance(uv, z, uv2, z2, 0.0)
    with pytest.raises(ValueError, match="reduction"):
        pose_distance(uv, z, uv2, z2, 128.0, reduction="sum")


def test_rescale_affine_maps_the_same_points() -> None:
    g = torch.Generator().manual_seed(2)
    m = _matrices(3, g)
    p = torch.rand(3, 10, 2, generator=g, dtype=torch.float64) * 128

    def to32(x: torch.Tensor) -> torch.Tensor:
        return (x + 0.5) * 32 / 128 - 0.5

    got = transform_points(to32(p), rescale_affine(m, 128, 32))
    torch.testing.assert_close(got, to32(transform_points(p, m)))
    with pytest.raises(ValueError, match=r"\(B, 2, 3\)"):
        rescale_affine(m[:, :1], 128, 32)


def test_view_consistency_zero_for_equivariant_predictions_and_detached_target() -> None:
    g = torch.Generator().manual_seed(3)
    uv, z = _rand_pose(3, g)
    m = _matrices(3, g)
    mask = torch.zeros(3, 32, 32, dtype=torch.float64)
    mask[:, 10:22, 12:20] = 1.0
    mask_t = warp_images(mask[:, None], rescale_affine(m, 128, 32), (32, 32))[:, 0]
    out = view_consistency(transform_pose(uv, m), z, uv, z, m, 128.0, pred_t_mask=mask_t,
                           pred_mask=mask)
    assert float(out["pose"].abs().max()) < 1e-9 and float(out["mask"].abs().max()) < 1e-9
    # an offset of 2 crop px on the perturbed prediction costs exactly 1
    off = view_consistency(transform_pose(uv, m) + torch.tensor([0.0, 2.0], dtype=uv.dtype), z,
                           uv, z, m, 128.0)
    torch.testing.assert_close(off["pose"], torch.ones(3, dtype=uv.dtype))
    # detached target: no gradient into the un-perturbed prediction; otherwise some
    uv0 = uv.clone().requires_grad_(True)
    uv_t = (uv + 1.0).requires_grad_(True)
    view_consistency(uv_t, z, uv0, z, m, 128.0)["pose"].sum().backward()
    assert uv0.grad is None and uv_t.grad is not None
    view_consistency(uv_t, z, uv0, z, m, 128.0, detach_target=False)["pose"].sum().backward()
    assert uv0.grad is not None and float(uv0.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="both"):
        view_consistency(uv, z, uv, z, m, 128.0, pred_mask=mask)
    with pytest.raises(ValueError, match=r"matrix must be a tensor \(3, 2, 3\)"):
        view_consistency(uv, z, uv, z, m[:2], 128.0)


def test_view_consistency_gradcheck_with_masks() -> None:
    g = torch.Generator().manual_seed(4)
    uv, z = _rand_pose(2, g)
    m = _matrices(2, g)
    mask = torch.rand(2, 8, 8, generator=g, dtype=torch.float64)
    mask_t = torch.rand(2, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    uv_t = (uv + 1.0).requires_grad_(True)

    def f(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        o = view_consistency(a, z, uv, z, m, 128.0, pred_t_mask=w, pred_mask=mask)
        return o["pose"] + o["mask"]

    assert torch.autograd.gradcheck(f, (uv_t, mask_t))


def test_confidence_terms() -> None:
    g = torch.Generator().manual_seed(5)
    uv, z = _rand_pose(2, g)
    m = _matrices(2, g)
    # a stable, already-corrected label has confidence 0
    c0 = pseudo_label_confidence(uv, z, transform_pose(uv, m), z, m, uv, z, 128.0)
    assert float(c0.abs().max()) < 1e-9
    # stability term: the perturbed prediction off by 2 crop px; plausibility: z off by 0.1
    c = pseudo_label_confidence(uv, z, transform_pose(uv, m) + 2.0, z, m, uv, z + 0.1, 128.0)
    torch.testing.assert_close(c, torch.full((2,), 2.0 + 0.5, dtype=uv.dtype))
    assert TAU == 1.5


def test_update_is_the_argmin() -> None:
    g = torch.Generator().manual_seed(6)
    p_uv, p_z = _rand_pose(2, g)
    r_uv, r_z = _rand_pose(2, g)
    uv, z = update_pseudo_labels(p_uv, p_z, r_uv, r_z)
    x_uv, x_z = uv.clone().requires_grad_(True), z.clone().requires_grad_(True)
    obj = (pose_distance(p_uv, p_z, x_uv, x_z, 128.0) + pose_distance(r_uv, r_z, x_uv, x_z,
                                                                       128.0)).sum()
    gu, gz = torch.autograd.grad(obj, (x_uv, x_z))
    assert float(gu.abs().max()) < 1e-12 and float(gz.abs().max()) < 1e-12
    with pytest.raises(ValueError, match="same batch"):
        update_pseudo_labels(p_uv, p_z, r_uv[:1], r_z[:1])


def test_correct_25d_keeps_feasible_labels_and_fixes_infeasible(hand_model) -> None:
    joints = _feasible_hand(hand_model, 6)
    assert (count_violations(joints.numpy(), "right") == 0).all()
    uv, z, _ = to_25d(joints, K128)
    c = correct_pose_25d(uv, z, K128, "right")
    assert (c.violations_before == 0).all() and (c.violations_after == 0).all()
    torch.testing.assert_close(c.uv, uv, atol=1e-4, rtol=0)  # pixels
    torch.testing.assert_close(c.z_rel, z, atol=1e-5, rtol=0)
    # a left hand (mirrored) found by "auto" and by its code, unchanged as well
    left = joints * torch.tensor([-1.0, 1.0, 1.0], dtype=joints.dtype)
    luv, lz, _ = to_25d(left, K128)
    for hand in ("auto", torch.zeros(6, dtype=torch.int64)):
        cl = correct_pose_25d(luv, lz, K128, hand)
        assert cl.is_left.all() and (cl.violations_before == 0).all()
        torch.testing.assert_close(cl.uv, luv, atol=1e-4, rtol=0)
    # bend a finger backwards and stretch a bone: infeasible before, feasible after
    bad = joints.clone()
    bad[:, 8] = bad[:, 7] + 3.0 * (bad[:, 7] - bad[:, 6])
    bad[:, 12] = bad[:, 11] - (bad[:, 12] - bad[:, 11])
    buv, bz, _ = to_25d(bad, K128)
    cb = correct_pose_25d(buv.float(), bz.float(), K128.float(), torch.full((6,), -1))
    assert (cb.violations_before > 0).all() and (cb.violations_after == 0).all()
    assert cb.uv.dtype == torch.float32
    # the untouched joints keep their place (the wrist and the thumb chain)
    torch.testing.assert_close(cb.uv[:, :5].double(), buv[:, :5], atol=0.05, rtol=0)


def test_correct_25d_inputs_without_real_root_stay_in_front(hand_model) -> None:
    g = torch.Generator().manual_seed(7)
    uv = 64 + 30 * torch.randn(5, 21, 2, generator=g)
    z = 3.0 * torch.randn(5, 21, generator=g)  # wild depths: no consistent lifting
    c = correct_pose_25d(uv, z, K128.float())
    assert torch.isfinite(c.uv).all() and torch.isfinite(c.z_rel).all()
    assert (c.violations_after == 0).all()


def test_correct_25d_keeps_labels_inconsistent_with_K_in_front(hand_model, monkeypatch) -> None:
    import handpose.core.losses.pose_registration as consistency

    joints = _feasible_hand(hand_model, 64, seed=3)
    uv, z, _ = to_25d(joints, K128)
    k_short = K128.clone()
    k_short[0, 0] = k_short[1, 1] = 15.0  # a 10x too short focal length, depths x 3
    monkeypatch.setattr(consistency, "_FOCAL_DOUBLINGS", 0)
    stuck = correct_pose_25d(uv, 3 * z, k_short)
    assert (stuck.violations_after == -1).any()  # some corrected hands fell behind the camera
    torch.testing.assert_close(stuck.uv[stuck.violations_after == -1],
                               uv[stuck.violations_after == -1])  # returned as they were
    monkeypatch.undo()
    fixed = correct_pose_25d(uv, 3 * z, k_short)
    assert (fixed.violations_after == 0).all()
    assert torch.isfinite(fixed.uv).all() and torch.isfinite(fixed.z_rel).all()


def test_correct_25d_errors() -> None:
    uv = torch.zeros(2, 21, 2)
    z = torch.zeros(2, 21)
    with pytest.raises(ValueError, match="K must be a tensor"):
        correct_pose_25d(uv, z, torch.eye(3)[None].expand(3, 3, 3))
    with pytest.raises(ValueError, match="handedness"):
        correct_pose_25d(uv, z, K128.float(), "both")
    with pytest.raises(ValueError, match="handedness codes"):
        correct_pose_25d(uv, z, K128.float(), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="finite"):
        correct_pose_25d(uv, z * float("nan"), K128.float())
    with pytest.raises(ValueError, match="min_root_depth"):
        correct_pose_25d(uv, z, K128.float(), min_root_depth=0.0)
