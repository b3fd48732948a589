"""Chamfer distance (batched torch, KD-tree) and earth mover's distance vs naive references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from handpose.core.losses import chamfer
from handpose.core.losses.chamfer import (
    chamfer_distance,
    chamfer_distance_kdtree,
    nearest_distances,
)
from handpose.core.losses.emd import earth_movers_distance, optimal_assignment


def _naive_chamfer(a: np.ndarray, b: np.ndarray, squared: bool = False) -> float:
    def one_way(p: np.ndarray, q: np.ndarray) -> float:
        total = 0.0
        for x in p:
            best = min(float(np.sum((x - y) ** 2)) for y in q)
            total += best if squared else best ** 0.5
        return total / len(p)

    return one_way(a, b) + one_way(b, a)


@pytest.mark.parametrize("squared", [False, True])
def test_chamfer_matches_a_naive_double_loop(rng: np.random.Generator, squared: bool) -> None:
    a = rng.normal(size=(3, 17, 3))
    b = rng.normal(size=(3, 11, 3)) + 0.3
    got = chamfer_distance(torch.from_numpy(a), torch.from_numpy(b), squared=squared)
    want = [_naive_chamfer(a[i], b[i], squared) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    mean = chamfer_distance(torch.from_numpy(a), torch.from_numpy(b), squared=squared,
                            reduction="mean")
    assert float(mean) == pytest.approx(np.mean(want), rel=1e-12)


def test_chamfer_is_small_distances_accurate_far_from_the_origin() -> None:
    # float32 points 1 km away, 6.4 cm apart: an |a|^2 + |b|^2 - 2ab shortcut would lose them
    a = torch.full((1, 4, 3), 1000.0)
    b = a.clone()
    b[..., 0] += 0.064
    assert float(chamfer_distance(a, b)) == pytest.approx(2 * 0.064, rel=1e-3)


def test_chunked_rows_equal_the_unchunked_result(monkeypatch: pytest.MonkeyPatch,
                                                 rng: np.random.Generator) -> None:
    a = torch.from_numpy(rng.normal(size=(2, 50, 3)))
    b = torch.from_numpy(rng.normal(size=(2, 40, 3)))
    whole = nearest_distances(a, b)
    monkeypatch.setattr(chamfer, "_CHUNK", 7)
    torch.testing.assert_close(nearest_distances(a, b), whole, rtol=0, atol=0)


def test_identical_clouds_have_zero_distance_and_finite_gradient() -> None:
    a = torch.randn(2, 9, 3, dtype=torch.float64, requires_grad=True)
    d = chamfer_distance(a, a.detach().clone())
    assert float(d.detach().abs().max()) == 0.0
    d.sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_chamfer_gradcheck(rng: np.random.Generator) -> None:
    a = torch.from_numpy(rng.normal(size=(2, 5, 3))).requires_grad_()
    b = torch.from_numpy(rng.normal(size=(2, 4, 3))).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: chamfer_distance(x, y), (a, b))
    assert torch.autograd.gradcheck(lambda x, y: chamfer_distance(x, y, squared=True), (a, b))


def test_kdtree_version_equals_the_torch_version(rng: np.random.Generator) -> None:
    a = rng.normal(size=(300, 3))
    b = rng.normal(size=(200, 3)) * 1.5
    want = float(chamfer_distance(torch.from_numpy(a)[None], torch.from_numpy(b)[None]))
    assert chamfer_distance_kdtree(a, b) == pytest.approx(want, rel=1e-12)
    want2 = float(chamfer_distance(torch.from_numpy(a)[None], torch.from_numpy(b)[None],
                                   squared=True))
    assert chamfer_distance_kdtree(torch.from_numpy(a), b, squared=True) == pytest.approx(
        want2, rel=1e-12)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match=r"a must be a tensor \(B, N, D\)"):
        chamfer_distance(torch.zeros(4, 3), torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="same batch"):
        chamfer_distance(torch.zeros(2, 4, 3), torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="reduction"):
        chamfer_distance(torch.zeros(1, 4, 3), torch.zeros(1, 4, 3), reduction="sum")
    with pytest.raises(ValueError, match="non-empty"):
        chamfer_distance_kdtree(np.zeros((0, 3)), np.zeros((4, 3)))


def _naive_emd(a: np.ndarray, b: np.ndarray) -> float:
    best = min(np.linalg.norm(a - b[list(p)], axis=1).mean()
               for p in itertools.permutations(range(len(b))))
    return float(best)


def test_emd_equals_the_best_of_all_permutations(rng: np.random.Generator) -> None:
    a = rng.normal(size=(3, 6, 3))
    b = rng.normal(size=(3, 6, 3))
    got = earth_movers_distance(torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_allclose(got.numpy(), [_naive_emd(a[i], b[i]) for i in range(3)],
                               rtol=1e-12)
    # a permuted copy is matched back exactly
    perm = rng.permutation(6)
    t = torch.from_numpy(a)
    assert torch.equal(optimal_assignment(t, t[:, perm]), torch.from_numpy(
        np.argsort(perm)).expand(3, 6))
    assert float(earth_movers_distance(t, t[:, perm], reduction="mean")) == 0.0


def test_emd_gradient_with_the_assignment_fixed(rng: np.random.Generator) -> None:
    a = torch.from_numpy(rng.normal(size=(2, 5, 3))).requires_grad_()
    b = torch.from_numpy(rng.normal(size=(2, 5, 3))).requires_grad_()
    # generic points: the optimal assignment is unique and locally constant
    assert torch.autograd.gradcheck(lambda x, y: earth_movers_distance(x, y), (a, b))
    with pytest.raises(ValueError, match="same shape"):
        earth_movers_distance(a, b[:, :4])
