"""Template hand mesh, marching tetrahedra and skinning of the synthetic renderer (no OpenGL)."""

from __future__ import annotations

import json

import numpy as np
import open3d as o3d
import pytest
import torch

from handpose.core.data.synthetic.hand_sdf import _round_cone
from handpose.core.data.synthetic.marching import marching_tetrahedra
from handpose.core.data.synthetic.mesh import load_template_mesh, rest_signature
from handpose.core.data.synthetic.sampler import HandSampler
from handpose.core.data.synthetic.skinning import (
    arm_away_bend,
    bone_transforms,
    kabsch_rotation,
    minimal_rotation,
    pose_vertices,
)
from handpose.core.skeleton import BONES

TIPS = [4, 8, 12, 16, 20]


def _edges_shared_twice(faces: np.ndarray) -> bool:
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    return bool(np.all(counts == 2))


def _signed_distance(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor.from_numpy(np.ascontiguousarray(vertices, np.float32)),
                        o3d.core.Tensor.from_numpy(np.ascontiguousarray(faces, np.uint32)))
    q = o3d.core.Tensor.from_numpy(np.ascontiguousarray(points, np.float32))
    return scene.compute_signed_distance(q).numpy()


def test_marching_tetrahedra_sphere_is_closed_outward_and_on_the_surface():
    g = np.linspace(-1.3, 1.3, 27)
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    v, f = marching_tetrahedra(np.sqrt(x * x + y * y + z * z) - 1.0, np.full(3, -1.3), g[1] - g[0])
    assert _edges_shared_twice(f)
    normal = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert np.all((normal * v[f].mean(1)).sum(1) > 0)  # counter-clockwise from outside
    assert np.abs(np.linalg.norm(v, axis=1) - 1.0).max() < 0.02  # linear interpolation error
    volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
    assert volume == pytest.approx(4 / 3 * np.pi, rel=0.03)


def test_round_cone_distance_matches_a_dense_union_of_spheres():
    g = torch.Generator().manual_seed(0)
    cone = torch.tensor([0.0, 0, 0, 0.05, 0.01, 0, 0.012, 0.007], dtype=torch.float64)
    p = torch.randn(3000, 3, generator=g, dtype=torch.float64) * 0.03
    t = torch.linspace(0, 1, 2001, dtype=torch.float64)
    centres = cone[:3] + t[:, None] * (cone[3:6] - cone[:3])
    dense = (torch.cdist(p, centres) - (cone[6] + t * (cone[7] - cone[6]))).amin(1)
    d = _round_cone(p, cone)
    out = dense > 0  # outside, the union of spheres is the exact distance
    assert torch.allclose(d[out], dense[out], atol=1e-6)
    assert torch.equal(d < 0, dense < 0)


def test_shipped_template_matches_the_hand_model_and_is_a_closed_hand(hand_model):
    m = load_template_mesh()
    assert m.signature == rest_signature(hand_model.rest_pose), (
        "assets/hand_mesh.json is stale: run python -m handpose.core.data.synthetic.mesh")
    assert np.allclose(m.rest_joints, hand_model.rest_pose, atol=1e-6)
    assert _edges_shared_twice(m.faces)
    sd = _signed_distance(m.vertices, m.faces, m.rest_joints)
    inner = [j for j in range(21) if j not in TIPS]
    assert np.all(sd[inner] < -0.5 * m.joint_radii[inner])  # inside, about a radius deep
    assert np.all(np.abs(sd[TIPS]) < 3e-4)  # tips on the fingertip surface
    assert np.allclose(m.skin_weights.sum(1), 1.0, atol=1e-5)
    assert np.allclose(m.region.sum(1), 1.0, atol=1e-5)


def test_minimal_rotation_and_kabsch():
    g = torch.Generator().manual_seed(1)
    a = torch.nn.functional.normalize(torch.randn(50, 3, generator=g, dtype=torch.float64), dim=1)
    b = torch.nn.functional.normalize(torch.randn(50, 3, generator=g, dtype=torch.float64), dim=1)
    r = minimal_rotation(a, b)
    assert torch.allclose((r @ a[..., None])[..., 0], b, atol=1e-9)
    assert torch.allclose(torch.det(r), torch.ones(50, dtype=torch.float64), atol=1e-9)
    axis = torch.linalg.cross(a, b)  # a minimal rotation turns about a x b: no twist
    assert torch.allclose((r @ axis[..., None])[..., 0], axis, atol=1e-9)
    q, _ = torch.linalg.qr(torch.randn(4, 3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.det(q))[:, None, None]
    src = torch.randn(6, 3, generator=g, dtype=torch.float64)
    assert torch.allclose(kabsch_rotation(src, src @ q.transpose(1, 2) + 1.0), q, atol=1e-9)


def _sampled(n: int = 12, seed: int = 3) -> tuple[torch.Tensor, np.ndarray]:
    hands = HandSampler().sample(n, seed)
    j = hands.oriented() + np.array([0.0, 0.0, 0.5])
    return torch.as_tensor(j), np.asarray(hands.is_left)


def test_bone_transforms_carry_every_rest_joint_onto_the_posed_joint():
    m = load_template_mesh()
    j, left = _sampled()
    right = j.clone()
    right[torch.as_tensor(left), :, 0] *= -1
    rest = torch.as_tensor(m.rest_joints)
    mats = bone_transforms(right, rest, torch.zeros(len(j), 2, dtype=torch.float64),
                           torch.ones(len(j), dtype=torch.float64))
    for b, (p, c) in enumerate(BONES):
        for k in (p, c):
            moved = mats[:, b, :, :3] @ rest[k] + mats[:, b, :, 3]
            assert torch.allclose(moved, right[:, k], atol=1e-9)
    moved = mats[:, 20, :, :3] @ rest[0] + mats[:, 20, :, 3]  # the forearm pivots at the wrist
    assert torch.allclose(moved, right[:, 0], atol=1e-9)


def test_pose_vertices_identity_rigid_equivariance_and_mirror():
    m = load_template_mesh()
    n = 3
    ones = (torch.ones(n, 3), torch.zeros(n, 2), torch.ones(n))
    rest = torch.as_tensor(m.rest_joints).expand(n, 21, 3)
    v, _ = pose_vertices(m, rest, torch.zeros(n, dtype=torch.bool), *ones)
    assert torch.allclose(v, torch.as_tensor(m.vertices).expand(n, -1, -1), atol=1e-6)
    j, _ = _sampled(n)
    right = torch.zeros(n, dtype=torch.bool)
    v, _ = pose_vertices(m, j, right, *ones)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(2),
                                       dtype=torch.float64))
    q = q * torch.sign(torch.det(q))
    t = torch.tensor([0.01, -0.02, 0.1], dtype=torch.float64)
    v2, _ = pose_vertices(m, j @ q.T + t, right, *ones)
    assert torch.allclose(v2.double(), v.double() @ q.T + t, atol=2e-5)
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    vl, nl = pose_vertices(m, j * mirror, torch.ones(n, dtype=torch.bool), *ones)
    vr, nr = pose_vertices(m, j, right, *ones)
    assert torch.allclose(vl, vr * mirror.float(), atol=1e-6)
    assert torch.allclose(nl, nr * mirror.float(), atol=1e-6)


def _check_inside(m, joints: torch.Tensor, is_left: np.ndarray) -> None:
    n = len(joints)
    v, _ = pose_vertices(m, joints, torch.as_tensor(is_left), torch.ones(n, 3),
                         torch.zeros(n, 2), torch.ones(n))
    inner = [j for j in range(21) if j not in TIPS]
    for i in range(n):
        sd = _signed_distance(v[i].numpy(), m.faces, joints[i].numpy())
        assert np.all(sd[inner] < 0), f"hand {i}: joints {np.flatnonzero(sd >= 0)} outside"
        assert np.all(np.abs(sd[TIPS]) < 1.5e-3), f"hand {i}: tips off the surface {sd[TIPS]}"


def test_sampled_poses_keep_joints_inside_and_tips_on_the_surface():
    j, left = _sampled(16, seed=7)
    _check_inside(load_template_mesh(), j, left)


def test_real_poses_keep_joints_inside_and_tips_on_the_surface(hgc_dir):
    xyz = np.asarray(json.loads((hgc_dir / "training_xyz.json").read_text()))[::40]
    _check_inside(load_template_mesh(), torch.as_tensor(xyz), np.ones(len(xyz), bool))


def test_arm_away_bend_turns_the_forearm_from_the_camera():
    m = load_template_mesh()
    rest = torch.as_tensor(m.rest_joints)
    # fingers up, palm facing the camera: the forearm hangs down, no need to bend
    j = rest.clone() * torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64) + torch.tensor(
        [0.0, 0.0, 0.4], dtype=torch.float64)
    bend = torch.tensor([[0.1, 0.05]], dtype=torch.float64)
    assert torch.equal(arm_away_bend(j[None], rest, bend), bend)
    c, z = torch.tensor(0.0, dtype=torch.float64), torch.tensor([0.0, 0.0, 0.4],
                                                                 dtype=torch.float64)

    def rot_x(sign: float) -> torch.Tensor:  # +-90 degrees about x: fingers to +-z
        return torch.tensor([[1.0, 0, 0], [0, c, -sign], [0, sign, c]], dtype=torch.float64)

    # fingers pointing at the camera (-z): the straight arm points away already
    assert torch.equal(arm_away_bend((rest @ rot_x(-1.0).T + z)[None], rest, bend), bend)
    # fingers pointing away (+z): the straight arm comes towards the camera; it gets bent
    new = arm_away_bend((rest @ rot_x(1.0).T + z)[None], rest, bend)
    assert not torch.equal(new, bend)
    assert float(new.abs().max()) <= 1.2 + 1e-9
