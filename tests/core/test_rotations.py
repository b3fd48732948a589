"""Rotations against scipy.spatial.transform.Rotation, uniformity on SO(3), minimal rotations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.transform import Rotation

from handpose.core.geometry.camera import intrinsics_from_fov, project
from handpose.core.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    random_rotation,
    rotation_2d,
    rotation_between,
    rotation_z,
)


def test_axis_angle_matches_scipy(rng: np.random.Generator) -> None:
    rv = Rotation.random(200, rng=rng).as_rotvec()
    axes = rv / np.linalg.norm(rv, axis=-1, keepdims=True)
    rv = np.concatenate([rv, axes[:5] * (math.pi - 1e-6), axes[5:10] * 1e-9, np.zeros((1, 3))])
    R = axis_angle_to_matrix(rv.reshape(-1, 1, 3))  # any leading dims
    assert R.shape == (len(rv), 1, 3, 3)
    np.testing.assert_allclose(R[:, 0], Rotation.from_rotvec(rv).as_matrix(), atol=1e-12)
    back = matrix_to_axis_angle(R)[:, 0]
    # Compare as rotations (the vector of an angle near pi may flip sign).
    np.testing.assert_allclose(Rotation.from_rotvec(back).as_matrix(),
                               Rotation.from_rotvec(rv).as_matrix(), atol=1e-9)
    np.testing.assert_allclose(back[:200], rv[:200], atol=1e-9)
    R32 = axis_angle_to_matrix(torch.tensor(rv[:200], dtype=torch.float32))
    assert R32.dtype == torch.float32
    np.testing.assert_allclose(R32.numpy(), Rotation.from_rotvec(rv[:200]).as_matrix(),
                               atol=1e-6)


def test_axis_angle_gradcheck() -> None:
    aa = torch.tensor([[0.3, -0.2, 0.5], [1e-4, 0.0, 2e-4]], dtype=torch.float64,
                      requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,))


def test_random_rotation_is_uniform_on_so3() -> None:
    g = torch.Generator().manual_seed(0)
    R = random_rotation(20000, generator=g, dtype=torch.float64).numpy()
    assert R.shape == (20000, 3, 3)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-12)
    # Haar measure: E[R] = 0 and the angle has density (1 - cos t) / pi, CDF (t - sin t) / pi.
    assert np.abs(R.mean(0)).max() < 0.02
    angle = np.linalg.norm(Rotation.from_matrix(R).as_rotvec(), axis=-1)
    ks = stats.kstest(angle, lambda t: (t - np.sin(t)) / np.pi)
    assert ks.pvalue > 0.01
    # Same generator state -> same rotations.
    a = random_rotation(3, torch.Generator().manual_seed(5))
    b = random_rotation(3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_rotation_between_is_minimal_and_robust(rng: np.random.Generator) -> None:
    a = rng.normal(0, 1, (500, 3))
    b = rng.normal(0, 1, (500, 3))
    # Include exactly and nearly opposite and identical pairs.
    b[:5] = -a[:5] * 2.0
    b[5:10] = -a[5:10] + rng.normal(0, 1e-5, (5, 3))
    b[10:15] = a[10:15] * 3.0
    b[15] = [0.0, 0.0, -1.0]
    a[15] = [0.0, 0.0, 1.0]
    R = rotation_between(a, b)
    ah = a / np.linalg.norm(a, axis=-1, keepdims=True)
    bh = b / np.linalg.norm(b, axis=-1, keepdims=True)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, ah), bh, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
    # Minimal: the rotation angle equals the angle between the vectors.
    angle = np.linalg.norm(Rotation.from_matrix(R).as_rotvec(), axis=-1)
    between = np.arccos(np.clip((ah * bh).sum(-1), -1, 1))
    np.testing.assert_allclose(angle, between, atol=1e-6)
    # scipy's align_vectors with a single pair returns the minimal rotation (b <- a).
    for i in range(20, 40):
        ref, _ = Rotation.align_vectors(bh[i][None], ah[i][None])
        np.testing.assert_allclose(R[i], ref.as_matrix(), atol=1e-9)
    # float32 keeps R a = b accurate down to ~0.1 deg from opposite.
    a32 = torch.tensor(ah[:40], dtype=torch.float32)
    off = rng.normal(0, 1, (40, 3)) * np.logspace(-1, -3.5, 40)[:, None]
    b32 = torch.tensor(-ah[:40] + off, dtype=torch.float32)
    b32 = b32 / b32.norm(dim=-1, keepdim=True)
    R32 = rotation_between(a32, b32)
    assert (torch.einsum("nij,nj->ni", R32, a32) - b32).abs().max() < 1e-4
    with pytest.raises(ValueError, match="a must be non-zero"):
        rotation_between(np.zeros(3), np.ones(3))


def test_rotation_between_gradients_near_opposite() -> None:
    a = torch.tensor([[0.3, -0.5, 0.8]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[0.1, 0.7, 0.2]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rotation_between, (a, b))
    near = (-a.detach() + 1e-3).requires_grad_(True)
    R = rotation_between(a, near)
    R.sum().backward()
    assert torch.isfinite(near.grad).all() and torch.isfinite(a.grad).all()


def test_planar_rotations_match_scipy_and_image_rotation() -> None:
    t = np.array([0.0, 0.4, -1.2, math.pi])
    np.testing.assert_allclose(rotation_z(t), Rotation.from_euler("z", t[:, None]).as_matrix(),
                               atol=1e-12)
    np.testing.assert_allclose(rotation_2d(t), rotation_z(t)[:, :2, :2], atol=1e-12)
    # Rotating the camera-frame points about z rotates their image about the principal
    # point by the same planar rotation (square pixels).
    K = intrinsics_from_fov(640, 480, 60.0)
    P = np.random.default_rng(0).uniform([-0.2, -0.2, 0.5], [0.2, 0.2, 1.0], (21, 3))
    uv = project(P, K)
    uv_rot = project(P @ rotation_z(0.4).T, K)
    c = K[:2, 2]
    np.testing.assert_allclose(uv_rot - c, (uv - c) @ rotation_2d(0.4).T, atol=1e-9)
    r = rotation_2d(torch.tensor([0.3], requires_grad=True))
    assert r.shape == (1, 2, 2) and r.requires_grad
