from __future__ import annotations

import numpy as np
import pytest
import torch

from handpose.core.render import render_depth_orthographic, render_depth_perspective

F64 = torch.float64


def camera(f: float, cx: float, cy: float) -> torch.Tensor:
    return torch.tensor([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]], dtype=F64)


def hard_perspective(centres: np.ndarray, radii: np.ndarray, K: np.ndarray, h: int, w: int,
                     far: float) -> np.ndarray:
    """Naive z-buffer: per pixel, per sphere, the ray-sphere quadratic; (H, W) for one image."""
    out = np.full((h, w), far)
    kinv = np.linalg.inv(K)
    for i in range(h):
        for j in range(w):
            d = kinv @ np.array([j, i, 1.0])
            for c, r in zip(centres, radii):
                # |t d - c|^2 = r^2  ->  a t^2 - 2 b t + (|c|^2 - r^2) = 0
                a, b, cc = d @ d, d @ c, c @ c - r * r
                disc = b * b - a * cc
                if disc >= 0:
                    t = (b - np.sqrt(disc)) / a
                    out[i, j] = min(out[i, j], t * d[2])
    return out


def hand_like_spheres(rng: np.random.Generator, n: int, batch: int = 1) -> tuple:
    centres = np.stack([rng.uniform(-0.04, 0.04, (batch, n)), rng.uniform(-0.04, 0.04, (batch, n)),
                        rng.uniform(0.45, 0.55, (batch, n))], -1)
    radii = rng.uniform(0.006, 0.016, (batch, n))
    return torch.tensor(centres), torch.tensor(radii)


def test_single_sphere_perspective_analytic() -> None:
    K = camera(100.0, 15.0, 12.0)
    z, r = 0.5, 0.05
    # on the optical axis the centre pixel (15, 12) reads z - r
    d, m = render_depth_perspective(torch.tensor([[[0.0, 0.0, z]]], dtype=F64),
                                    torch.tensor([r], dtype=F64), K, (24, 30), far=3.0)
    assert d[0, 12, 15].item() == pytest.approx(z - r, abs=1e-6)
    assert m[0, 12, 15].item() == pytest.approx(1.0)
    # near the edge: pixel (24, 12) is 9 px off axis; its ray d = (0.09, 0, 1) passes the
    # centre at rho = z 0.09 / |d| = 0.0448 m, 1.04 px inside the silhouette (sigma 0.5 px:
    # fully covered): the exact ray-sphere depth
    ray = np.array([0.09, 0.0, 1.0])
    b, a, cc = ray @ np.array([0, 0, z]), ray @ ray, z * z - r * r
    t = (b - np.sqrt(b * b - a * cc)) / a
    assert 1.0 < (r - z * 0.09 / np.sqrt(a)) * 100 / z < 1.1
    d_edge, m_edge = render_depth_perspective(
        torch.tensor([[[0.0, 0.0, z]]], dtype=F64), torch.tensor([r], dtype=F64), K, (24, 30),
        far=3.0, sigma=0.5)
    assert m_edge[0, 12, 24].item() == pytest.approx(1.0)
    assert d_edge[0, 12, 24].item() == pytest.approx(t * ray[2], abs=1e-9)
    assert d_edge[0, 12, 24].item() > z - r + 0.02  # far from the centre's value: the edge
    # off axis: a sphere centred on the ray of pixel (3, 20) reads z (1 - r / |c|) there
    c = z * np.array([(3 - 15.0) / 100, (20 - 12.0) / 100, 1.0])
    d2, _ = render_depth_perspective(torch.tensor(c)[None, None], torch.tensor([0.02], dtype=F64),
                                     K, (24, 30), far=3.0)
    assert d2[0, 20, 3].item() == pytest.approx(z * (1 - 0.02 / np.linalg.norm(c)), abs=1e-6)
    # far from the sphere: the background
    assert d[0, 0, 0].item() == 3.0 and m[0, 0, 0].item() == 0.0


def test_single_sphere_orthographic_analytic() -> None:
    # cube of side 0.16 m on 16 px: 1 cm pixels; pixel (i, j) centre x = -0.08 + (j + 0.5) 0.01
    centre = torch.tensor([[[0.005, -0.015, 0.40]]], dtype=F64)  # on pixel (row 6, col 8)
    r = torch.tensor([0.045], dtype=F64)
    d, m = render_depth_orthographic(centre, r, (16, 16), torch.tensor([0.0, 0.0, 0.4]), 0.16,
                                     sigma=0.2)
    assert d[0, 6, 8].item() == pytest.approx(0.40 - 0.045, abs=1e-9)
    # pixel (6, 12): 4 cm from the centre, inside by 0.5 px: z - sqrt(r^2 - d^2)
    assert m[0, 6, 12].item() == pytest.approx(1.0)
    assert d[0, 6, 12].item() == pytest.approx(0.40 - np.sqrt(0.045**2 - 0.04**2), abs=1e-9)
    # background reads the cube's back face by default
    assert d[0, 15, 0].item() == pytest.approx(0.48) and m[0, 15, 0].item() == 0.0


def test_soft_converges_to_hard(rng) -> None:
    centres, radii = hand_like_spheres(rng, 5)
    K = camera(220.0, 11.5, 9.5)
    h, w = 20, 24
    hard = hard_perspective(centres[0].numpy(), radii[0].numpy(), K.numpy(), h, w, far=1.0)
    errors = []
    for tau, sigma in [(1e-2, 1.0), (1e-3, 0.1), (1e-5, 1e-3)]:
        soft, _ = render_depth_perspective(centres, radii, K, (h, w), far=1.0, tau=tau,
                                           sigma=sigma)
        errors.append(np.abs(soft[0].numpy() - hard))
    # the error shrinks everywhere as the softness goes, and vanishes at tau = 10 um
    assert errors[2].max() < 1e-4
    assert errors[0].mean() > errors[1].mean() > errors[2].mean()
    hit = hard < 1.0
    assert 0.05 < hit.mean() < 0.95  # the scene has both spheres and background


def test_nearer_sphere_wins_where_spheres_overlap() -> None:
    K = camera(200.0, 10.0, 10.0)
    centres = torch.tensor([[[0.0, 0.0, 0.5], [0.0, 0.0, 0.44]]], dtype=F64)
    radii = torch.tensor([0.03, 0.01], dtype=F64)
    d, _ = render_depth_perspective(centres, radii, K, (21, 21))
    # the small front sphere, 4 cm = 10 tau nearer: its depth within exp(-10) 4 cm = 2 um
    assert d[0, 10, 10].item() == pytest.approx(0.43, abs=3e-6)
    # 7 px off axis the ray misses the small sphere by 2.4 px: the big one's exact depth
    hard = hard_perspective(centres[0].numpy(), radii.numpy(), K.numpy(), 21, 21, far=2.0)
    assert d[0, 10, 17].item() == pytest.approx(hard[10, 17], abs=1e-9)
    assert hard[10, 17] > 0.47


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_culling_equals_dense(rng, projection) -> None:
    centres, radii = hand_like_spheres(rng, 41, batch=2)
    centres[0, 0] = torch.tensor([0.12, 0.0, 0.5], dtype=F64)  # partly off the image
    centres.requires_grad_()
    out = []
    for cull in (True, False):
        if projection == "perspective":
            d, m = render_depth_perspective(centres, radii, camera(300.0, 31.5, 27.5),
                                            (56, 64), far=0.8, cull=cull)
        else:
            d, m = render_depth_orthographic(centres, radii, (56, 64),
                                             torch.tensor([0.0, 0.0, 0.5], dtype=F64), 0.2,
                                             cull=cull)
        (grad,) = torch.autograd.grad((d * d).sum() + m.sum(), centres)
        out.append((d, m, grad))
    (d1, m1, g1), (d2, m2, g2) = out
    assert torch.allclose(d1, d2, rtol=0, atol=1e-12) and torch.allclose(m1, m2, rtol=0, atol=1e-12)
    assert torch.allclose(g1, g2, rtol=1e-9, atol=1e-9)
    assert 0.1 < float((m1 > 0.5).float().mean()) < 0.9


def test_sphere_behind_the_camera_is_not_rendered() -> None:
    K = camera(100.0, 8.0, 8.0)
    centres = torch.tensor([[[0.0, 0.0, 0.5], [0.0, 0.0, -0.2], [0.0, 0.0, 0.01]]], dtype=F64)
    radii = torch.tensor([0.02, 0.05, 0.02], dtype=F64)
    d, m = render_depth_perspective(centres, radii, K, (17, 17), far=2.0)
    d1, _ = render_depth_perspective(centres[:, :1], radii[:1], K, (17, 17), far=2.0)
    assert torch.allclose(d, d1) and torch.isfinite(d).all()


def test_gradcheck_perspective() -> None:
    K = camera(40.0, 2.5, 2.5)
    centres = torch.tensor([[[0.004, -0.003, 0.30], [-0.012, 0.01, 0.32]]], dtype=F64,
                           requires_grad=True)
    radii = torch.tensor([[0.021, 0.017]], dtype=F64, requires_grad=True)
    far = torch.tensor([0.4], dtype=F64, requires_grad=True)

    def fn(c, r, f):
        d, m = render_depth_perspective(c, r, K, (6, 6), far=f, tau=0.01, sigma=1.5)
        return d, m

    d, m = fn(centres, radii, far)
    assert 0.1 < float(m.detach().mean()) < 0.9  # edges inside the image: the edge band is tested
    assert torch.autograd.gradcheck(fn, (centres, radii, far), atol=1e-6)


def test_gradcheck_orthographic() -> None:
    centres = torch.tensor([[[0.01, -0.004, 0.40], [-0.015, 0.012, 0.41]]], dtype=F64,
                           requires_grad=True)
    radii = torch.tensor([0.018, 0.014], dtype=F64, requires_grad=True)

    def fn(c, r):
        return render_depth_orthographic(c, r, (6, 6), torch.tensor([0.0, 0.0, 0.4], dtype=F64),
                                         0.06, tau=0.01, sigma=1.5)

    assert torch.autograd.gradcheck(fn, (centres, radii), atol=1e-6)


def test_bad_inputs() -> None:
    K = camera(100.0, 8.0, 8.0)
    c = torch.zeros(1, 2, 3)
    with pytest.raises(ValueError, match=r"centres must have shape \(B, N, 3\)"):
        render_depth_perspective(torch.zeros(2, 3), torch.ones(2), K, (8, 8))
    with pytest.raises(ValueError, match=r"radii must have shape \(1, 2\) or \(2,\)"):
        render_depth_perspective(c, torch.ones(3), K, (8, 8))
    with pytest.raises(ValueError, match="radii must be positive"):
        render_depth_perspective(c, torch.tensor([0.01, 0.0]), K, (8, 8))
    with pytest.raises(ValueError, match=r"K must have shape \(1, 3, 3\) or \(3, 3\)"):
        render_depth_perspective(c, torch.ones(2), torch.eye(4), (8, 8))
    with pytest.raises(ValueError, match="tau and sigma must be positive"):
        render_depth_perspective(c, torch.ones(2), K, (8, 8), tau=0.0)
    with pytest.raises(ValueError, match="image_size must be"):
        render_depth_perspective(c, torch.ones(2), K, (8, 0))
    with pytest.raises(ValueError, match="cube_side must be positive"):
        render_depth_orthographic(c, torch.ones(2), (8, 8), torch.zeros(3), -1.0)
