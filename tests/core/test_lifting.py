"""2.5D <-> 3D lifting: exact round trips on random and real hands, gradients, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from handpose.core.geometry.camera import project
from handpose.core.geometry.crop import apply_affine, crop_from_keypoints, crop_intrinsics
from handpose.core.geometry.lifting import (
    ROOT_JOINT,
    lift_from_root_depth,
    lift_to_3d,
    normalized_root_depth,
    scale_from_root_depth,
    to_25d,
)
from handpose.core.skeleton import PARENTS, REFERENCE_BONE

# Adult bone lengths (m) in chain order (child 1..20), to build hand-like point sets.
_BONES_M = np.array([0.034, 0.038, 0.032, 0.028, 0.086, 0.042, 0.025, 0.023, 0.083, 0.046,
                     0.029, 0.024, 0.078, 0.043, 0.028, 0.023, 0.074, 0.033, 0.021, 0.021])
_SPLAY_DEG = (-40.0, -12.0, 0.0, 12.0, 24.0)  # finger directions in the palm plane


def random_hands(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` hand-like joint sets (n, 21, 3) m, randomly curled, rotated uniformly and placed
    0.25-1.5 m in front of random cameras K (n, 3, 3) with focal lengths 300-1500 px."""
    J = np.zeros((n, 21, 3))
    for c in range(1, 21):
        f, k = (c - 1) // 4, (c - 1) % 4  # finger, position along it (0 = root bone)
        ang = np.radians(_SPLAY_DEG[f])
        curl = rng.uniform(0.0, 0.5, n) * k  # flexion accumulates down the finger
        d = np.stack([np.full(n, np.sin(ang)), -np.cos(ang) * np.cos(curl),
                      np.cos(ang) * np.sin(curl)], -1)
        J[:, c] = J[:, PARENTS[c]] + _BONES_M[c - 1] * d
    J += rng.normal(0.0, 0.003, J.shape)
    J -= J.mean(1, keepdims=True)
    R = Rotation.random(n, rng=rng).as_matrix()
    J = np.einsum("nij,nkj->nki", R, J)
    J[..., 0] += rng.uniform(-0.15, 0.15, (n, 1))
    J[..., 1] += rng.uniform(-0.15, 0.15, (n, 1))
    J[..., 2] += rng.uniform(0.25, 1.5, (n, 1))
    K = np.zeros((n, 3, 3))
    K[:, 0, 0] = rng.uniform(300, 1500, n)
    K[:, 1, 1] = K[:, 0, 0] * rng.uniform(0.98, 1.02, n)
    K[:, 0, 2] = rng.uniform(150, 500, n)
    K[:, 1, 2] = rng.uniform(100, 400, n)
    K[:, 2, 2] = 1.0
    return J, K


def larger_root_margin(P: np.ndarray) -> np.ndarray:
    """Cosine between the 3D reference bone and its normalised image displacement (n,).

    Independent of the lifting code: > 0 iff moving the hand away along the camera rays
    lengthens the reference bone, i.e. iff the true root depth is the larger root of the
    quadratic (the derivative of |d(Z)|^2 - 1 at the truth is positive). Near 0 the root is
    (nearly) double and ill-conditioned.
    """
    n, m = REFERENCE_BONE
    xt = P / P[..., 2:]
    b, dx = P[:, n] - P[:, m], xt[:, n] - xt[:, m]
    return (b * dx).sum(-1) / np.linalg.norm(b, axis=-1) / np.linalg.norm(dx, axis=-1)


def test_root_is_the_wrist() -> None:
    assert ROOT_JOINT == 0


def test_to_25d_analytic() -> None:
    J, K = random_hands(np.random.default_rng(3), 2)
    uv, z, s = to_25d(J, K)
    np.testing.assert_allclose(uv, project(J, K), atol=1e-12)
    np.testing.assert_allclose(s, np.linalg.norm(J[:, 10] - J[:, 9], axis=-1))
    np.testing.assert_allclose(z, (J[..., 2] - J[:, :1, 2]) / s[:, None])
    assert np.all(z[:, 0] == 0.0)


def test_round_trip_1000_hands_float64(rng: np.random.Generator) -> None:
    J, K = random_hands(rng, 1000)
    uv, z, s = to_25d(J, K)
    P, root = lift_to_3d(uv, z, K, s, return_root_depth=True)
    err = np.linalg.norm(P - J, axis=-1).max(-1)
    margin = larger_root_margin(J)
    ok = margin > 0.01
    assert ok.mean() > 0.98
    assert err[ok].max() < 1e-5
    np.testing.assert_allclose(root[ok], J[ok, 0, 2], atol=1e-8)
    # Where the true root is the smaller one, the output is the other exact solution: the
    # same 2.5D pose and bone length, further away.
    amb = margin < 0
    uv2, z2, s2 = to_25d(P[amb], K[amb])
    np.testing.assert_allclose(uv2, uv[amb], atol=1e-6)
    np.testing.assert_allclose(z2, z[amb], atol=1e-6)
    np.testing.assert_allclose(s2, s[amb], rtol=1e-6)
    assert np.all(root[amb] > J[amb, 0, 2])


def test_round_trip_float32_batched(rng: np.random.Generator) -> None:
    J, K = random_hands(rng, 1000)
    Jt = torch.tensor(J, dtype=torch.float32).reshape(10, 100, 21, 3)
    Kt = torch.tensor(K, dtype=torch.float32).reshape(10, 100, 3, 3)
    uv, z, s = to_25d(Jt, Kt)
    assert uv.dtype == torch.float32 and uv.shape == (10, 100, 21, 2) and s.shape == (10, 100)
    P = lift_to_3d(uv, z, Kt, s)
    assert P.dtype == torch.float32 and P.shape == (10, 100, 21, 3)
    err = (P.double() - torch.tensor(J).reshape(10, 100, 21, 3)).norm(dim=-1).amax(-1)
    ok = torch.tensor(larger_root_margin(J) > 0.1).reshape(10, 100)
    assert ok.float().mean() > 0.97
    assert err[ok].max() < 1e-4


def test_root_depth_helpers_are_consistent(rng: np.random.Generator) -> None:
    J, K = random_hands(rng, 200)
    J, K = J[larger_root_margin(J) > 0.1], K[larger_root_margin(J) > 0.1]
    uv, z, s = to_25d(J, K)
    Z = normalized_root_depth(uv, z, K)
    np.testing.assert_allclose(Z * s, J[:, 0, 2], rtol=1e-9)
    np.testing.assert_allclose(lift_from_root_depth(uv, z, K, s, J[:, 0, 2]), J, atol=1e-12)
    # RGB-D: the measured root depth gives the hand size.
    np.testing.assert_allclose(scale_from_root_depth(uv, z, K, J[:, 0, 2]), s, rtol=1e-9)
    # A clamp of the normalised root depth bounds the lifted root depth.
    _, root = lift_to_3d(uv, z, K, s, return_root_depth=True, root_range=(4.0, 10.0))
    assert np.all(root <= 10.0 * s + 1e-12) and np.all(root >= 4.0 * s - 1e-12)


def test_lifting_in_the_crop_is_exact(rng: np.random.Generator) -> None:
    J, K = random_hands(rng, 50)
    keep = larger_root_margin(J) > 0.1
    J, K = J[keep], K[keep]
    uv_full = project(J, K)
    A = crop_from_keypoints(uv_full, out_size=128, rotation=rng.uniform(-0.8, 0.8, len(J)))
    Kc = crop_intrinsics(K, A)
    uv_c, z, s = to_25d(J, Kc)
    np.testing.assert_allclose(uv_c, apply_affine(A, uv_full), atol=1e-9)
    np.testing.assert_allclose(lift_to_3d(uv_c, z, Kc, s), J, atol=1e-9)


def test_gradcheck_lift_to_3d() -> None:
    J, K = random_hands(np.random.default_rng(7), 8)
    i = int(np.argmax(larger_root_margin(J)))
    uv, z, s = to_25d(torch.tensor(J[i:i + 2]), torch.tensor(K[i:i + 2]))
    args = tuple(t.clone().requires_grad_(True) for t in (uv, z, torch.tensor(K[i:i + 2]), s))
    assert torch.autograd.gradcheck(lift_to_3d, args)
    # The gradient reaches the reference bone length: doubling s doubles the hand.
    P1, P2 = lift_to_3d(uv, z, args[2], s), lift_to_3d(uv, z, args[2], 2 * s)
    assert torch.allclose(P2, 2 * P1)


def test_bad_inputs_raise_naming_the_argument() -> None:
    J, K = random_hands(np.random.default_rng(1), 2)
    uv, z, s = to_25d(J, K)
    with pytest.raises(ValueError, match="z_rel must have shape"):
        lift_to_3d(uv, z[:, :20], K, s)
    with pytest.raises(ValueError, match=r"uv must have shape \(\.\.\., 21, 2\)"):
        lift_to_3d(uv[:, :20], z[:, :20], K, s)
    with pytest.raises(ValueError, match="scale must be > 0"):
        lift_to_3d(uv, z, K, np.array([0.05, 0.0]))
    with pytest.raises(ValueError, match="scale must be a scalar or have shape"):
        lift_to_3d(uv, z, K, np.ones(3))
    Kbad = K.copy()
    Kbad[0, 0, 0] = Kbad[0, 1, 1] = 0.0
    with pytest.raises(ValueError, match="K has a zero focal length"):
        lift_to_3d(uv, z, Kbad, s)
    with pytest.raises(ValueError, match="uv must be finite"):
        lift_to_3d(np.where(uv > 0, np.nan, uv), z, K, s)
    with pytest.raises(ValueError, match="z_rel must be finite"):
        lift_to_3d(uv, z * np.nan, K, s)
    with pytest.raises(ValueError, match="root_depth must be > 0"):
        lift_from_root_depth(uv, z, K, s, -1.0)
    with pytest.raises(ValueError, match="joints must lie in front of the camera"):
        to_25d(J * np.array([1.0, 1.0, -1.0]), K)
    with pytest.raises(ValueError, match=r"joints must have shape \(\.\.\., 21, 3\)"):
        to_25d(J[:, :5], K)
    with pytest.raises(ValueError, match="root_range"):
        lift_to_3d(uv, z, K, s, root_range=(5.0, 1.0))


def test_real_labels_round_trip(hgc_dir) -> None:
    """real_eval_hgc: to_25d then lift_to_3d with the dataset's K and scale gives the labels."""
    xyz = np.array(json.loads((hgc_dir / "training_xyz.json").read_text()))
    K = np.array(json.loads((hgc_dir / "training_K.json").read_text()))
    scale = np.array(json.loads((hgc_dir / "training_scale.json").read_text()))
    uv, z, s = to_25d(xyz, K)
    # The file's scale is FreiHAND's: the middle MCP -> PIP length (rounded to ~1e-6 m).
    np.testing.assert_allclose(scale, s, atol=2e-6)
    margin = larger_root_margin(xyz)
    ok = margin > 0
    assert ok.sum() >= 390  # 394 of 400: the rest are the method's ambiguous case
    P = lift_to_3d(uv, z, K, scale)
    err = np.linalg.norm(P - xyz, axis=-1).max(-1)
    assert err[ok].max() < 2e-5  # the rounding of the file's scale, 2.5e-5 relative
    exact = lift_to_3d(uv, z, K, s)
    assert np.linalg.norm(exact - xyz, axis=-1)[ok].max() < 1e-9
    # Ambiguous frames: an exactly consistent hand further away, never a silent failure.
    uv2, z2, _ = to_25d(exact[~ok], K[~ok])
    np.testing.assert_allclose(uv2, uv[~ok], atol=1e-6)
    np.testing.assert_allclose(z2, z[~ok], atol=1e-6)
