"""Crop-cube depth crops: round trips, a naive reference, analytic planes, agreement with the
orthographic renderer, point extraction, the label-free hand centre, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handpose.core.data.depth_crop import (
    CubeCrop,
    cube_points,
    depth_to_cube,
    from_cube,
    hand_centre_from_depth,
    to_cube,
)
from handpose.core.render import render_depth_orthographic, render_depth_perspective

K = torch.tensor([[120.0, 0.0, 31.5], [0.0, 118.0, 24.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _naive(depth: np.ndarray, k: np.ndarray, c: np.ndarray, side: float, size: int,
           band: float) -> np.ndarray:
    """Per-pixel loop: the mean of each cell's readings within band of its nearest one."""
    kinv = np.linalg.inv(k)
    cells: dict[tuple[int, int], list[float]] = {}
    for i, j in zip(*np.nonzero(depth > 0)):
        p = kinv @ np.array([j, i, 1.0]) * depth[i, j]
        col = int(np.floor((p[0] - c[0] + side / 2) / side * size))
        row = int(np.floor((p[1] - c[1] + side / 2) / side * size))
        if 0 <= col < size and 0 <= row < size and abs(p[2] - c[2]) <= side / 2:
            cells.setdefault((row, col), []).append(p[2])
    out = np.full((size, size), np.inf)
    for (r, cc), zs in cells.items():
        z = np.array(zs)
        out[r, cc] = z[z <= z.min() + band].mean()
    return out


def test_cube_coordinates_round_trip():
    pts = torch.randn(3, 5, 3, dtype=torch.float64)
    c = torch.randn(3, 3, dtype=torch.float64)
    side = torch.tensor([0.2, 0.3, 0.4], dtype=torch.float64)
    q = to_cube(pts, c, side)
    torch.testing.assert_close(from_cube(q, c, side), pts)
    torch.testing.assert_close(to_cube(c[:, None], c, side), torch.zeros(3, 1, 3,
                                                                         dtype=torch.float64))
    torch.testing.assert_close(to_cube(c[:, None] + side[:, None, None] / 2, c, side)[..., 0],
                               torch.ones(3, 1, dtype=torch.float64))


def test_depth_to_cube_matches_a_naive_loop(rng):
    h, w = 48, 64
    depth = 0.5 + 0.05 * rng.random((h, w))
    depth[rng.random((h, w)) < 0.2] = 0.0  # holes
    c = np.array([0.01, -0.02, 0.52])
    crop = depth_to_cube(torch.from_numpy(depth), K, torch.from_numpy(c), 0.2, 16,
                         fill_holes=False, surface_band=0.01)
    ref = _naive(depth, K.numpy(), c, 0.2, 16, 0.01)
    hand = np.isfinite(ref)
    np.testing.assert_array_equal(crop.hand[0].numpy(), hand)
    np.testing.assert_allclose(crop.depth[0].numpy()[hand], ref[hand], atol=1e-9)
    far = c[2] + 0.1
    np.testing.assert_allclose(crop.depth[0].numpy()[~hand], far)
    assert isinstance(crop, CubeCrop) and crop.valid.all()


def test_planes_inside_behind_and_missing():
    h, w = 48, 64
    c = torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64)
    # a fronto-parallel plane at 0.48 m covers the cube's face: every cell reads 0.48
    plane = torch.full((h, w), 0.48, dtype=torch.float64)
    crop = depth_to_cube(plane, K, c, 0.1, 8)
    assert crop.hand.all()
    torch.testing.assert_close(crop.depth, torch.full((1, 8, 8), 0.48, dtype=torch.float64))
    torch.testing.assert_close(crop.normalized(), torch.full((1, 1, 8, 8), -0.4,
                                                             dtype=torch.float64))
    # behind the cube: background (far = 0.55), valid, no hand
    crop = depth_to_cube(torch.full((h, w), 0.9, dtype=torch.float64), K, c, 0.1, 8,
                         empty="invalid")
    assert not crop.hand.any() and crop.valid.all()
    torch.testing.assert_close(crop.depth, torch.full((1, 8, 8), 0.55, dtype=torch.float64))
    torch.testing.assert_close(crop.normalized(), torch.ones(1, 1, 8, 8, dtype=torch.float64))
    # no reading at all: far and valid ("far") or invalid ("invalid")
    empty = torch.zeros(h, w, dtype=torch.float64)
    assert depth_to_cube(empty, K, c, 0.1, 8).valid.all()
    assert not depth_to_cube(empty, K, c, 0.1, 8, empty="invalid").valid.any()


def test_hole_filling_fills_holes_but_does_not_grow_edges():
    h, w = 48, 64
    c = torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64)
    plane = torch.full((h, w), 0.5, dtype=torch.float64)
    plane[:, : w // 2] = 0.0  # left half missing: an edge
    crop0 = depth_to_cube(plane, K, c, 0.2, 16, fill_holes=False)
    # punch a one-cell hole in the right half
    ys, xs = torch.nonzero(crop0.hand[0], as_tuple=True)
    r, cc = int(ys[len(ys) // 2]), int(xs.max()) - 3
    cell = 0.2 / 16
    u = lambda x: x / 0.5 * 120.0 + 31.5  # noqa: E731
    v = lambda y: y / 0.5 * 118.0 + 24.0  # noqa: E731
    x0, y0 = -0.1 + cc * cell, -0.1 + r * cell
    plane2 = plane.clone()
    plane2[int(np.ceil(v(y0))):int(np.floor(v(y0 + cell))) + 1,
           int(np.ceil(u(x0))):int(np.floor(u(x0 + cell))) + 1] = 0.0
    without = depth_to_cube(plane2, K, c, 0.2, 16, fill_holes=False)
    filled = depth_to_cube(plane2, K, c, 0.2, 16, fill_holes=True)
    assert not bool(without.hand[0, r, cc]) and bool(filled.hand[0, r, cc])
    assert float(filled.depth[0, r, cc]) == pytest.approx(0.5)
    assert int(filled.hand.sum()) == int(crop0.hand.sum())  # the edge did not grow


def test_perspective_depth_crops_like_the_orthographic_renderer():
    """A sphere seen by a pinhole camera, cropped: the orthographic render of the same sphere
    in the same cube, away from the silhouette edge."""
    sphere = torch.tensor([[[0.02, -0.01, 0.45]]], dtype=torch.float64)
    radius = torch.tensor([0.03], dtype=torch.float64)
    k = torch.tensor([[600.0, 0, 159.5], [0, 600.0, 119.5], [0, 0, 1]], dtype=torch.float64)
    d, m = render_depth_perspective(sphere, radius, k, (240, 320), far=0.0, tau=1e-4,
                                    sigma=0.5)
    d = torch.where(m > 0.5, d / m, torch.zeros_like(d))
    c = torch.tensor([0.0, 0.0, 0.46], dtype=torch.float64)
    crop = depth_to_cube(d[0], k, c, 0.16, 32)
    ortho, om = render_depth_orthographic(sphere, radius, (32, 32), c, 0.16, tau=1e-4,
                                          sigma=0.5)
    core = om[0] > 0.999
    inner = core & torch.roll(core, 1, 0) & torch.roll(core, -1, 0) & torch.roll(core, 1, 1) \
        & torch.roll(core, -1, 1)
    assert int(inner.sum()) > 20
    assert crop.hand[0][inner].all()
    err = (crop.depth[0] - ortho[0])[inner].abs()
    assert float(err.max()) < 2e-3  # cell-averaged surface vs the exact centre sample


def test_cube_points_and_subsets():
    c = torch.tensor([[0.0, 0.0, 0.5]])
    depth = torch.full((1, 4, 4), 0.55)
    hand = torch.zeros(1, 4, 4, dtype=torch.bool)
    hand[0, 1, 2] = True
    depth[0, 1, 2] = 0.47
    crop = CubeCrop(depth, hand, torch.ones_like(hand), c, torch.tensor([0.1]))
    pts, mask = cube_points(crop)
    assert pts.shape == (1, 16, 3) and int(mask.sum()) == 1
    torch.testing.assert_close(pts[0, 1 * 4 + 2], torch.tensor([0.0125, -0.0125, 0.47]))
    sub, smask = cube_points(crop, max_points=3, generator=torch.Generator().manual_seed(0))
    assert sub.shape == (1, 3, 3) and int(smask.sum()) == 1
    torch.testing.assert_close(sub[0][smask[0]][0], torch.tensor([0.0125, -0.0125, 0.47]))


def test_hand_centre_from_depth_finds_the_near_blob():
    sphere = torch.tensor([[[0.05, 0.02, 0.4], [0.0, 0.0, 1.5]]], dtype=torch.float64)
    radius = torch.tensor([0.04, 0.5], dtype=torch.float64)  # a hand and a big far wall
    k = torch.tensor([[300.0, 0, 79.5], [0, 300.0, 59.5], [0, 0, 1]], dtype=torch.float64)
    d, m = render_depth_perspective(sphere, radius, k, (120, 160), far=0.0, tau=1e-4,
                                    sigma=0.5)
    d = torch.where(m > 0.5, d / m, torch.zeros_like(d))[0]
    centre = hand_centre_from_depth(d, k)
    assert centre.shape == (3,)
    # the mean of the visible cap lies between the sphere's front (0.36) and its centre
    assert float((centre[:2] - sphere[0, 0, :2].float()).norm()) < 0.01
    assert 0.36 < float(centre[2]) < 0.4
    with pytest.raises(ValueError, match="no valid reading"):
        hand_centre_from_depth(torch.zeros(2, 10, 10), k)


def test_bad_inputs():
    with pytest.raises(ValueError, match="depth must be"):
        depth_to_cube(torch.zeros(10), K, torch.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        depth_to_cube(torch.zeros(4, 4), K, torch.zeros(3), empty="nothing")
    with pytest.raises(ValueError, match="side"):
        depth_to_cube(torch.zeros(4, 4), K, torch.zeros(3), side=-1.0)
    with pytest.raises(ValueError, match="centre"):
        depth_to_cube(torch.zeros(2, 4, 4), K, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="points"):
        to_cube(torch.zeros(3, 3), torch.zeros(3), 0.3)


def test_hand_centre_on_real_rgbd_frames(rgbd_dir):
    from handpose.core.data.rgbd import RGBDFolderDataset

    ds = RGBDFolderDataset(rgbd_dir)
    errors = []
    for i in range(0, len(ds), 3):
        s = ds[i]
        c = hand_centre_from_depth(s["depth"][0], s["K"])
        errors.append(float((c - s["joints3d"].mean(0)).norm()))
        crop = depth_to_cube(s["depth"][0], s["K"], c)
        # every joint falls inside the crop cube
        assert float(to_cube(s["joints3d"][None], c, 0.3).abs().max()) < 1.0
        assert 0.05 < float(crop.hand.double().mean()) < 0.6
    assert float(np.mean(errors)) < 0.02
