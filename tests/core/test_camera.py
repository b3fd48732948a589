"""Pinhole camera: intrinsics from FOV, project/unproject round trips, depth back-projection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from handpose.core.geometry.camera import (
    DEFAULT_FOV_DEG,
    backproject_depth,
    check_intrinsics,
    default_intrinsics,
    intrinsics_from_fov,
    normalize_pixels,
    project,
    unproject,
)


def _random_K(rng: np.random.Generator, n: int) -> np.ndarray:
    K = np.zeros((n, 3, 3))
    K[:, 0, 0] = rng.uniform(300, 1500, n)
    K[:, 1, 1] = K[:, 0, 0] * rng.uniform(0.95, 1.05, n)
    K[:, 0, 1] = rng.uniform(-2, 2, n)  # skew: the functions must not assume it is zero
    K[:, 0, 2] = rng.uniform(100, 500, n)
    K[:, 1, 2] = rng.uniform(100, 400, n)
    K[:, 2, 2] = 1.0
    return K


def test_intrinsics_from_fov_analytic() -> None:
    K = intrinsics_from_fov(640, 480, 90.0, "horizontal")
    # tan(45 deg) = 1: the image half-width equals f.
    assert K[0, 0] == pytest.approx(320.0) and K[1, 1] == pytest.approx(320.0)
    assert (K[0, 2], K[1, 2]) == (319.5, 239.5)
    Kv = intrinsics_from_fov(640, 480, 60.0, "vertical")
    assert Kv[1, 1] == pytest.approx(240.0 / math.tan(math.radians(30.0)))
    # The projection of the image corner ray (-0.5 px edge) lies on the diagonal FOV cone.
    Kd = intrinsics_from_fov(640, 480, 80.0, "diagonal")
    half_diag = math.hypot(320, 240) / Kd[0, 0]
    assert math.degrees(2 * math.atan(half_diag)) == pytest.approx(80.0)
    Kdef = default_intrinsics(640, 480)
    half = math.hypot(320, 240) / Kdef[0, 0]
    assert math.degrees(2 * math.atan(half)) == pytest.approx(DEFAULT_FOV_DEG)
    with pytest.raises(ValueError, match="fov_deg"):
        intrinsics_from_fov(640, 480, 180.0)
    with pytest.raises(ValueError, match="axis"):
        intrinsics_from_fov(640, 480, 60.0, "sideways")


def test_project_matches_naive_and_unproject_round_trip(rng: np.random.Generator) -> None:
    n = 50
    K = _random_K(rng, n)
    P = np.stack([rng.uniform(-0.3, 0.3, (n, 21)), rng.uniform(-0.3, 0.3, (n, 21)),
                  rng.uniform(0.2, 2.0, (n, 21))], -1)
    uv = project(P, K)
    assert isinstance(uv, np.ndarray) and uv.shape == (n, 21, 2)
    hom = np.einsum("nij,nkj->nki", K, P)
    np.testing.assert_allclose(uv, hom[..., :2] / hom[..., 2:], atol=1e-9)
    back = unproject(uv, P[..., 2], K)
    np.testing.assert_allclose(back, P, atol=1e-12)
    xy = normalize_pixels(uv, K)
    np.testing.assert_allclose(xy, P[..., :2] / P[..., 2:], atol=1e-12)


def test_torch_batched_dtypes_and_broadcast_K(rng: np.random.Generator) -> None:
    K = torch.tensor(_random_K(rng, 1)[0])
    P = torch.tensor(rng.uniform(0.2, 1.0, (4, 5, 21, 3)))
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        p = P.to(dtype)
        uv = project(p, K.to(dtype))  # one K for all leading dims
        assert uv.dtype == dtype and uv.shape == (4, 5, 21, 2)
        back = unproject(uv, p[..., 2], K.to(dtype))
        assert torch.allclose(back, p, atol=tol * 10)


def test_project_gradcheck() -> None:
    g = torch.Generator().manual_seed(0)
    P = (torch.rand(2, 3, 3, generator=g, dtype=torch.float64) + 0.5).requires_grad_(True)
    K = torch.tensor([[500.0, 1.0, 320.0], [0.0, 510.0, 240.0], [0.0, 0.0, 1.0]],
                     dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(project, (P, K))
    uv = project(P, K).detach().requires_grad_(True)
    d = P[..., 2].detach().requires_grad_(True)
    assert torch.autograd.gradcheck(unproject, (uv, d, K))


def test_backproject_depth_matches_loop_and_projects_back(rng: np.random.Generator) -> None:
    H, W = 12, 16
    K = intrinsics_from_fov(W, H, 70.0)
    depth = rng.uniform(0.3, 1.2, (H, W))
    depth[2, 3] = 0.0
    depth[5, 7] = np.nan
    depth[6, 1] = -1.0
    depth[0, 0] = np.inf
    pts = backproject_depth(depth, K)
    assert pts.shape == (H * W - 4, 3)
    naive = []
    for i in range(H):
        for j in range(W):
            z = depth[i, j]
            if np.isfinite(z) and z > 0:
                naive.append(z * np.linalg.solve(K, [j, i, 1.0]))
    np.testing.assert_allclose(pts, np.array(naive), atol=1e-12)
    strided = backproject_depth(torch.tensor(depth), torch.tensor(K), stride=3)
    assert isinstance(strided, torch.Tensor)
    uv = project(strided[None], torch.tensor(K))[0].numpy()
    # Every point lies on a stride-3 pixel and carries that pixel's depth.
    np.testing.assert_allclose(uv, np.round(uv), atol=1e-9)
    cols, rows = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
    assert np.all(cols % 3 == 0) and np.all(rows % 3 == 0)
    sub = depth[::3, ::3]
    assert len(strided) == int(np.sum(np.isfinite(sub) & (sub > 0)))
    np.testing.assert_allclose(strided[:, 2].numpy(), depth[rows, cols])


def test_bad_inputs_raise_naming_the_argument() -> None:
    K = intrinsics_from_fov(640, 480)
    P = np.array([[0.0, 0.0, 0.5], [0.1, 0.0, 0.6]])
    bad = K.copy()
    bad[0, 0] = bad[1, 1] = 0.0
    with pytest.raises(ValueError, match="K has a zero focal length"):
        project(P, bad)
    with pytest.raises(ValueError, match=r"K must have shape \(\.\.\., 3, 3\)"):
        project(P, K[:2])
    with pytest.raises(ValueError, match="K must have bottom row"):
        check_intrinsics(K.T)
    with pytest.raises(ValueError, match="K must be finite"):
        check_intrinsics(np.where(np.eye(3) > 0, np.nan, K))
    with pytest.raises(ValueError, match=r"points must have shape \(\.\.\., N, 3\)"):
        project(P[:, :2], K)
    with pytest.raises(ValueError, match="points must be finite"):
        project(np.array([[np.nan, 0.0, 1.0]]), K)
    with pytest.raises(ValueError, match="in front of the camera"):
        project(np.array([[0.0, 0.0, -0.5]]), K)
    # Opt-in clamp instead of the error (for losses on raw predictions).
    clamped = project(np.array([[0.1, 0.0, -0.5]]), K, min_depth=0.01)
    assert clamped[0, 0] == pytest.approx(K[0, 0] * 10.0 + K[0, 2])
    with pytest.raises(ValueError, match="depth must have shape"):
        unproject(np.zeros((2, 2)), np.ones(3), K)
    with pytest.raises(ValueError, match="depth must be > 0"):
        unproject(np.zeros((1, 2)), np.zeros(1), K)
    with pytest.raises(ValueError, match="stride"):
        backproject_depth(np.ones((4, 4)), K, stride=0)
