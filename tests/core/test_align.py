"""Similarity Procrustes: exact recovery, no reflections, agreement with a naive SVD solver."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from handpose.core.geometry.align import procrustes, procrustes_align


def naive_umeyama(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """One sample, written from Umeyama (1991) with numpy, loops-and-all for clarity."""
    mp, mq = p.mean(0), q.mean(0)
    x, y = p - mp, q - mq
    cov = np.zeros((3, 3))
    for k in range(len(p)):
        cov += np.outer(y[k], x[k])
    cov /= len(p)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    s = np.trace(np.diag(D) @ S) / (x**2).sum(1).mean()
    return R, s, mq - s * R @ mp


def test_recovers_a_similarity_transform(rng: np.random.Generator) -> None:
    P = rng.normal(0, 0.05, (16, 21, 3))
    R = Rotation.random(16, rng=rng).as_matrix()
    s = rng.uniform(0.5, 2.0, 16)
    t = rng.normal(0, 0.3, (16, 3))
    Q = s[:, None, None] * np.einsum("nij,nkj->nki", R, P) + t[:, None]
    aligned, R_hat, s_hat, t_hat = procrustes(P, Q)
    assert np.linalg.norm(aligned - Q, axis=-1).mean() < 1e-6
    np.testing.assert_allclose(R_hat, R, atol=1e-9)
    np.testing.assert_allclose(s_hat, s, rtol=1e-9)
    np.testing.assert_allclose(t_hat, t, atol=1e-9)
    # Rigid mode keeps s = 1: a scaled copy can then not be matched exactly.
    al_rigid, _, s_rigid, _ = procrustes(P, Q, scale=False)
    assert np.all(s_rigid == 1.0)
    assert np.linalg.norm(al_rigid - Q, axis=-1).mean() > 1e-3


def test_never_returns_a_reflection(rng: np.random.Generator) -> None:
    P = rng.normal(0, 1, (64, 21, 3))
    mirrored = P * np.array([-1.0, 1.0, 1.0])  # the best orthogonal fit is a reflection
    _, R, _, _ = procrustes(P, mirrored)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-9)
    # Random targets: det R = +1 always as well.
    _, R2, _, _ = procrustes(P, rng.normal(0, 1, P.shape))
    np.testing.assert_allclose(np.linalg.det(R2), 1.0, atol=1e-9)


def test_matches_naive_numpy_implementation(rng: np.random.Generator) -> None:
    P = rng.normal(0, 1, (40, 21, 3))
    Q = rng.normal(0, 1, (40, 21, 3))
    aligned, R, s, t = procrustes(torch.tensor(P), torch.tensor(Q))
    assert isinstance(aligned, torch.Tensor)
    for i in range(len(P)):
        Rn, sn, tn = naive_umeyama(P[i], Q[i])
        np.testing.assert_allclose(R[i].numpy(), Rn, atol=1e-9)
        assert s[i].item() == pytest.approx(sn, rel=1e-9)
        np.testing.assert_allclose(t[i].numpy(), tn, atol=1e-9)
        np.testing.assert_allclose(aligned[i].numpy(), sn * P[i] @ Rn.T + tn, atol=1e-9)
    # The optimum: small perturbations of (R, s, t) never reduce the squared error.
    best = ((procrustes_align(P[0], Q[0]) - Q[0]) ** 2).sum()
    for _ in range(20):
        dR = Rotation.from_rotvec(rng.normal(0, 1e-3, 3)).as_matrix()
        Rn, sn, tn = naive_umeyama(P[0], Q[0])
        other = (sn * 1.001) * P[0] @ (dR @ Rn).T + tn + rng.normal(0, 1e-3, 3)
        assert ((other - Q[0]) ** 2).sum() >= best


def test_float32_batched_leading_dims_and_gradients(rng: np.random.Generator) -> None:
    P = torch.tensor(rng.normal(0, 0.05, (2, 3, 21, 3)), dtype=torch.float32)
    R = torch.tensor(Rotation.random(1, rng=rng).as_matrix()[0], dtype=torch.float32)
    Q = 1.3 * P @ R.T + 0.1
    aligned = procrustes_align(P, Q)
    assert aligned.shape == (2, 3, 21, 3) and aligned.dtype == torch.float32
    assert (aligned - Q).norm(dim=-1).max() < 1e-5
    p = torch.tensor(rng.normal(0, 1, (2, 6, 3)), requires_grad=True)
    q = torch.tensor(rng.normal(0, 1, (2, 6, 3)))
    assert torch.autograd.gradcheck(lambda a: procrustes_align(a, q), (p,))


def test_bad_inputs_raise_naming_the_argument() -> None:
    with pytest.raises(ValueError, match="pred and target must both be"):
        procrustes(np.zeros((21, 3)), np.zeros((20, 3)))
    with pytest.raises(ValueError, match="pred must be finite"):
        procrustes(np.full((21, 3), np.nan), np.zeros((21, 3)))
    with pytest.raises(ValueError, match="target must have shape"):
        procrustes(np.zeros((21, 3)), np.zeros(3))
