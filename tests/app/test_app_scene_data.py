"""The 3D view's data: display frame, skeleton segments, sphere meshes, point clouds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from handpose.app.colors import FINGER_COLORS, bone_colors, confidence_colors
from handpose.app.scene_data import (
    backproject_pixels,
    build_scene,
    camera_to_display,
    hand_spheres,
    icosphere,
    point_cloud,
    skeleton_segments,
    sphere_mesh,
)
from handpose.core.geometry.camera import backproject_depth
from handpose.core.skeleton import BONES
from handpose.core.spheres import spheres_from_joints
from handpose.core.types import Frame, FrameResult, HandPose


def test_display_frame_is_a_rotation():
    basis = camera_to_display(np.eye(3)).astype(np.float64)  # rows: images of x, y, z
    assert np.allclose(basis @ basis.T, np.eye(3))
    assert np.linalg.det(basis) == pytest.approx(1.0)  # right-handed stays right-handed
    # forward (camera z) is the view's +y, image down (camera y) is the view's -z (down)
    assert np.allclose(camera_to_display(np.array([0.0, 1.0, 2.0])), [0.0, 2.0, -1.0])


def test_skeleton_segments_follow_bones(rng):
    j = rng.normal(size=(21, 3))
    seg, col = skeleton_segments(j)
    for k, (p, c) in enumerate(BONES):
        assert np.allclose(seg[2 * k], j[p]) and np.allclose(seg[2 * k + 1], j[c])
    assert np.allclose(col[0::2], bone_colors()) and np.allclose(col[1::2], bone_colors())
    assert np.allclose(col[0], FINGER_COLORS[0])  # wrist -> thumb CMC is a thumb bone
    with pytest.raises(ValueError, match="21, 3"):
        skeleton_segments(np.zeros((20, 3)))


@pytest.mark.parametrize("sub", [0, 1, 2])
def test_icosphere_is_a_closed_outward_unit_sphere(sub):
    v, f = icosphere(sub)
    assert v.shape[0] == 10 * 4 ** sub + 2 and f.shape[0] == 20 * 4 ** sub
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    outward = np.einsum("ij,ij->i", np.cross(b - a, c - a), (a + b + c) / 3)
    assert np.all(outward > 0)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert np.all(counts == 2)  # every edge shared by two faces: closed


def test_sphere_mesh_indexes_41_spheres():
    m = sphere_mesh()
    nv = m.unit.shape[0]
    assert m.normals.shape == (41 * nv, 3) and m.colors.shape == (41 * nv, 4)
    assert m.faces.min() == 0 and m.faces.max() == 41 * nv - 1


def _hand(joints: np.ndarray, spheres: np.ndarray | None = None) -> HandPose:
    return HandPose(joints=joints, uv=np.zeros((21, 2)), confidence=np.linspace(0, 1, 21),
                    spheres=spheres)


def test_hand_spheres_match_the_core_model(hand_model, rng):
    j = np.asarray(hand_model.rest_pose) * 1.1 + rng.normal(0, 0.002, (21, 3)) + [0, 0, 0.5]
    c, r = hand_spheres(_hand(j))
    ct, rt = spheres_from_joints(torch.from_numpy(j))
    assert np.allclose(c, ct.numpy(), atol=1e-12) and np.allclose(r, rt.numpy(), atol=1e-12)
    own = np.concatenate([c + 0.01, r[:, None] * 2], 1)  # a depth fit's spheres win
    c2, r2 = hand_spheres(_hand(j, own))
    assert np.allclose(c2, c + 0.01) and np.allclose(r2, 2 * r)


@pytest.mark.parametrize("stride", [1, 3])
def test_backprojection_matches_core(rng, stride):
    depth = rng.uniform(0.3, 2.0, (13, 17))
    depth[2, 3], depth[5, 6], depth[0, 0] = 0.0, np.nan, np.inf
    K = np.array([[50.0, 0.3, 8.0], [0.0, 55.0, 6.5], [0.0, 0.0, 1.0]])
    pts, valid = backproject_pixels(depth, K, stride)
    ref = np.asarray(backproject_depth(depth, K, stride=stride))
    assert pts.shape == ref.shape and np.allclose(pts, ref, atol=1e-12)
    assert valid.sum() == pts.shape[0]


def test_point_cloud_colours_and_depth_limit():
    depth = np.full((8, 10), 1.0, np.float32)
    depth[:, 5:] = 5.0  # beyond max_depth: dropped
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0] = np.arange(10, dtype=np.uint8)[None] * 20
    f = Frame(rgb=rgb, K=np.array([[10.0, 0, 5], [0, 10.0, 4], [0, 0, 1]]), depth=depth)
    pos, col = point_cloud(f, stride=1, max_depth=3.0)
    assert pos.shape == (40, 3) and col.shape == (40, 4)
    assert np.allclose(pos[:, 1], 1.0)  # every point 1 m ahead = display y
    assert np.allclose(col[:, 0] * 255, np.tile(np.arange(5) * 20, 8))
    empty, _ = point_cloud(Frame(rgb=rgb, K=f.K), stride=1)
    assert empty.shape == (0, 3)


@dataclass(frozen=True)
class _WithCloud(FrameResult):
    point_cloud: np.ndarray | None = None
    point_colors: np.ndarray | None = None


def test_build_scene_switches_and_a_result_carried_cloud(hand_model):
    j = np.asarray(hand_model.rest_pose) + [0.0, 0.0, 0.5]
    frame = Frame(rgb=np.zeros((6, 6, 3), np.uint8), K=np.eye(3) * [5, 5, 1] + [[0, 0, 3],
                  [0, 0, 3], [0, 0, 0]], depth=np.full((6, 6), 0.8, np.float32))
    r = FrameResult(frame, (_hand(j), _hand(j + 0.1)))
    s = build_scene(r)
    assert len(s.hands) == 2 and s.cloud.shape == (4, 3)  # 6 x 6 pixels, stride 4
    h = s.hands[0]
    assert np.allclose(h.joints, camera_to_display(j))
    assert np.allclose(h.joint_colors, confidence_colors(np.linspace(0, 1, 21)))
    assert h.sphere_vertices.shape == (41 * sphere_mesh().unit.shape[0], 3)
    off = build_scene(r, spheres=False, cloud=False)
    assert off.hands[0].sphere_vertices is None and off.cloud.shape == (0, 3)
    own = _WithCloud(frame, (), {}, point_cloud=np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0]]),
                     point_colors=np.array([[255, 0, 0], [0, 255, 0]], np.uint8))
    s2 = build_scene(own)
    assert np.allclose(s2.cloud, [[0, 1, 0], [0.1, 1, 0]])  # the result's cloud, not depth
    assert np.allclose(s2.cloud_colors[:, :3], [[1, 0, 0], [0, 1, 0]])


def test_confidence_colours_red_to_green():
    c = confidence_colors(np.array([0.0, 0.5, 1.0, np.nan, 2.0]))
    assert c[0, 0] == 1.0 and c[0, 1] == 0.0  # red
    assert c[2, 0] == 0.0 and c[2, 1] > 0.8  # green
    assert np.allclose(c[3], c[0]) and np.allclose(c[4], c[2])  # NaN -> 0, clipped
