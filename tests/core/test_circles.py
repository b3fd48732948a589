from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from handpose.core.circles import (
    circles_from_joints2d,
    reference_length_px_2d,
    reference_length_px_3d,
)
from handpose.core.skeleton import BONES


def planar_hand(hand_model, rng: np.random.Generator, batch: int) -> torch.Tensor:
    """Random hands with template bone lengths lying in the plane z = 0.5 m."""
    joints = np.zeros((batch, 21, 3))
    for i, (parent, child) in enumerate(BONES):
        a = rng.uniform(0, 2 * np.pi, size=batch)
        d = np.stack([np.cos(a), np.sin(a), np.zeros(batch)], -1)
        joints[:, child] = joints[:, parent] + hand_model.bone_lengths[i] * d
    joints[..., 2] = 0.5
    return torch.tensor(joints)


def project(joints: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    uvw = joints @ K.T
    return uvw[..., :2] / uvw[..., 2:]


K = torch.tensor([[600.0, 0.0, 128.0], [0.0, 600.0, 120.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def test_circles_follow_the_keypoints(hand_model, rng) -> None:
    uv = torch.tensor(rng.uniform(0, 200, size=(2, 21, 2)))
    centres, radii = circles_from_joints2d(uv, torch.tensor([10.0, 20.0]))
    assert centres.shape == (2, 55, 2) and radii.shape == (2, 55)
    # trisected finger bones: circle "index_1_2" sits 2/3 of the way from joint 6 to joint 7
    k = hand_model.circle_names.index("index_1_2")
    assert torch.allclose(centres[:, k], uv[:, 6] / 3 + 2 * uv[:, 7] / 3, atol=1e-5)
    # the palm: "palm_ring_1" is a third of the way from the wrist to the ring MCP
    k = hand_model.circle_names.index("palm_ring_1")
    assert torch.allclose(centres[:, k], 2 * uv[:, 0] / 3 + uv[:, 13] / 3, atol=1e-5)
    rel = torch.tensor(hand_model.circle_radii_rel)
    assert torch.allclose(radii, torch.stack([10 * rel, 20 * rel]).to(radii.dtype))
    _, r1 = circles_from_joints2d(uv, 15.0)
    assert torch.allclose(r1, 15 * rel[None].to(r1.dtype).expand(2, 55))


def test_scale_from_3d_is_the_unforeshortened_bone(hand_model, rng) -> None:
    joints = planar_hand(hand_model, rng, 4)
    want = 600.0 * hand_model.reference_bone_length / 0.5
    assert torch.allclose(reference_length_px_3d(joints, K), torch.full((4,), want).double())
    # turning the reference bone towards the camera shortens its image, not the scale
    j = joints.clone()
    j[:, 10] = j[:, 9] + torch.tensor([0.0, 0.0, hand_model.reference_bone_length])
    got = reference_length_px_3d(j, K)
    z_mid = 0.5 + hand_model.reference_bone_length / 2
    assert torch.allclose(got, torch.full((4,), 600 * hand_model.reference_bone_length / z_mid,
                                          dtype=torch.float64))


def test_scale_from_2d_on_a_flat_hand_is_exact(hand_model, rng) -> None:
    joints = planar_hand(hand_model, rng, 4)
    uv = project(joints, K)
    assert torch.allclose(reference_length_px_2d(uv), reference_length_px_3d(joints, K))


def test_scale_from_2d_resists_foreshortening(hand_model, rng) -> None:
    # far away (z = 5 m, f = 6000 px) so that only foreshortening changes bone images
    joints = planar_hand(hand_model, rng, 8) + torch.tensor([0.0, 0.0, 4.5], dtype=torch.float64)
    far_k = torch.tensor([[6000.0, 0, 128], [0, 6000.0, 120], [0, 0, 1]], dtype=torch.float64)
    # tilt the hand 60 deg about the x axis: lengths along y shrink to cos(60) = 0.5
    c, s = math.cos(math.pi / 3), math.sin(math.pi / 3)
    R = torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=torch.float64)
    centre = joints[:, 9:10]
    tilted = (joints - centre) @ R.T + centre
    uv = project(tilted, far_k)
    truth = reference_length_px_3d(tilted, far_k)
    est = reference_length_px_2d(uv)
    ref_only = torch.linalg.vector_norm(uv[:, 10] - uv[:, 9], dim=-1)
    assert torch.all(est / truth < 1.01) and torch.all(est / truth > 0.85)
    assert (est / truth - 1).abs().mean() < (ref_only / truth - 1).abs().mean()


def test_scale_from_2d_on_real_labels(hgc_dir) -> None:
    xyz = torch.tensor(json.loads((hgc_dir / "training_xyz.json").read_text()))[:200]
    Ks = torch.tensor(json.loads((hgc_dir / "training_K.json").read_text()))[:200]
    uvw = torch.einsum("nij,nkj->nki", Ks, xyz)
    ratio = reference_length_px_2d(uvw[..., :2] / uvw[..., 2:]) / reference_length_px_3d(xyz, Ks)
    assert 0.95 < float(ratio.median()) < 1.05
    assert float(((ratio > 0.85) & (ratio < 1.2)).double().mean()) > 0.85


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"uv must have shape \(\.\.\., 21, 2\)"):
        circles_from_joints2d(torch.zeros(2, 21, 3), 10.0)
    with pytest.raises(ValueError, match="scale_px must be positive"):
        circles_from_joints2d(torch.zeros(21, 2), 0.0)
    with pytest.raises(ValueError, match="scale_px must broadcast"):
        circles_from_joints2d(torch.zeros(2, 21, 2), torch.ones(3))
    with pytest.raises(ValueError, match=r"K must be a tensor \(\.\.\., 3, 3\)"):
        reference_length_px_3d(torch.ones(21, 3), torch.eye(2))
    with pytest.raises(ValueError, match="in front of the camera"):
        reference_length_px_3d(-torch.ones(21, 3), K)
