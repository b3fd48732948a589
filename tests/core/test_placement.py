"""Placing synthetic hands in front of cameras: exact fill in crop mode, frame mode, rigs."""

from __future__ import annotations

import numpy as np
import pytest

from handpose.core.data.synthetic.placement import (
    PlacementConfig,
    image_boxes,
    intrinsics_for_fovs,
    num_placement_uniforms,
    place,
    sphere_model,
)
from handpose.core.data.synthetic.sampler import HandSampler
from handpose.core.geometry import intrinsics_from_fov, project


@pytest.fixture(scope="module")
def hands():
    return HandSampler().sample(600, 4)


def _inside(box: np.ndarray, w: int, h: int, tol: float = 1e-6) -> np.ndarray:
    return ((box[..., 0] >= -0.5 - tol) & (box[..., 1] >= -0.5 - tol)
            & (box[..., 2] <= w - 0.5 + tol) & (box[..., 3] <= h - 0.5 + tol))


def test_crop_mode_fills_exactly_and_keeps_the_hand_inside(hands):
    rng = np.random.default_rng(0)
    u = rng.random((len(hands), num_placement_uniforms(1)))
    p = place(hands.oriented(), hands.hand_scale, u, 224, 224)
    np.testing.assert_allclose(p.fill[:, 0], 0.4 + 0.4 * u[:, 1], atol=1e-9)
    assert _inside(p.box, 224, 224).all()
    # the box is recomputed from the returned joints and K (independent path)
    c, r = sphere_model(p.joints[:, 0], hands.hand_scale)
    np.testing.assert_allclose(image_boxes(c, r, p.K[:, 0]), p.box[:, 0], atol=1e-9)
    # a crop of a real camera: realistic distances, off-centre principal points
    z = p.joints[:, 0, :, 2].mean(1)
    assert z.min() > 0.15 and 0.3 < np.median(z) < 0.7
    assert np.ptp(p.K[:, 0, 0, 2]) > 100
    np.testing.assert_array_equal(p.extrinsics[:, 0], np.broadcast_to(np.eye(4), (600, 4, 4)))
    # the orientation is kept (only translated)
    d = p.joints[:, 0] - p.joints[:, 0, :1]
    np.testing.assert_allclose(d, hands.oriented(), atol=1e-12)


def test_crop_intrinsics_are_the_frame_camera_cropped_and_scaled(hands):
    # with the hand centred in the frame (u5 = u6 = 0.5) and a fixed distance, K's focal
    # length is the frame's times the crop scale; projecting with K gives the box
    u = np.full((5, num_placement_uniforms(1)), 0.5)
    cfg = PlacementConfig(distance=(0.5, 0.5), fov_deg=(60.0, 60.0))
    p = place(hands.oriented()[:5], hands.hand_scale[:5], u, 128, 128, config=cfg)
    kf = intrinsics_from_fov(640, 480, 60.0)
    uv = project(p.joints[:, 0], p.K[:, 0])
    assert np.all((uv > -0.5) & (uv < 127.5))
    scale = p.K[:, 0, 0, 0] / kf[0, 0]
    mid = 0.5 * (p.box[:, 0, :2] + p.box[:, 0, 2:])
    np.testing.assert_allclose(mid, 63.5, atol=1e-9)
    assert np.all(scale > 0)


def test_frame_mode_reaches_the_requested_fill():
    hands = HandSampler().sample(400, 8)
    u = np.random.default_rng(1).random((400, num_placement_uniforms(1)))
    cfg = PlacementConfig(mode="frame", fill=(0.3, 0.6), fov_deg=(55.0, 65.0))
    p = place(hands.oriented(), hands.hand_scale, u, 640, 480, config=cfg)
    np.testing.assert_allclose(p.K[:, 0, 0, 2], 319.5)
    err = np.abs(p.fill[:, 0] - (0.3 + 0.3 * u[:, 1]))
    c, r = sphere_model(p.joints[:, 0], hands.hand_scale)
    near = (c[..., 2] - r).min(1) < 0.1 + 1e-6
    assert near.mean() < 0.02
    assert np.percentile(err[~near], 95) < 0.005 and err[~near].max() < 0.03
    assert (c[..., 2] - r).min() >= 0.1 - 1e-9  # never closer than 10 cm
    # a fixed K is used as given
    K = intrinsics_from_fov(640, 480, 70.0)
    q = place(hands.oriented(), hands.hand_scale, u, 640, 480, config=cfg, K=K)
    np.testing.assert_array_equal(q.K[:, 0], np.broadcast_to(K, (400, 3, 3)))


def test_rig_views_agree_through_the_extrinsics(hands):
    views = 4
    u = np.random.default_rng(2).random((len(hands), num_placement_uniforms(views)))
    p = place(hands.oriented(), hands.hand_scale, u, 128, 128, views=views)
    assert p.joints.shape == (len(hands), views, 21, 3)
    world = p.joints[:, 0]
    for v in range(views):
        E = p.extrinsics[:, v]
        R = E[:, :3, :3]
        np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape),
                                   atol=1e-12)
        np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
        cam = np.einsum("nij,nkj->nki", R, world) + E[:, None, :3, 3]
        np.testing.assert_allclose(cam, p.joints[:, v], atol=1e-9)
    assert _inside(p.box, 128, 128).all()
    assert p.fill.min() >= 0.4 - 1e-9 and p.fill.max() <= 0.8 + 1e-9
    # the rig cameras really look from other directions (optical axes spread out)
    axes = p.extrinsics[:, 1:, 2, :3]
    assert (axes[..., 2] < 0).mean() > 0.3  # some from behind camera 0's view of the hand


def test_intrinsics_for_fovs_matches_the_geometry_module():
    K = intrinsics_for_fovs(np.array([60.0, 75.0]), 320, 240)
    for k, fov in zip(K, (60.0, 75.0)):
        np.testing.assert_allclose(k, intrinsics_from_fov(320, 240, fov), atol=1e-12)


def test_bad_input(hands):
    j = hands.oriented()[:3]
    s = hands.hand_scale[:3]
    with pytest.raises(ValueError, match="u must have shape"):
        place(j, s, np.zeros((3, 2)), 64, 64)
    with pytest.raises(ValueError, match="joints must have shape"):
        place(j[:, :20], s, np.zeros((3, num_placement_uniforms(1))), 64, 64)
    with pytest.raises(ValueError, match="views"):
        num_placement_uniforms(0)
    with pytest.raises(ValueError, match="width and height"):
        place(j, s, np.zeros((3, num_placement_uniforms(1))), 0, 64)
    with pytest.raises(ValueError, match="mode"):
        PlacementConfig(mode="panorama")
    with pytest.raises(ValueError, match="fill"):
        PlacementConfig(fill=(0.8, 0.4))
    with pytest.raises(ValueError, match="fov_deg"):
        intrinsics_for_fovs(np.array([190.0]), 64, 64)
