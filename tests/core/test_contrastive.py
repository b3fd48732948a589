"""NT-Xent against a naive loop and its analytic value; PeCLR inversion and equivariance."""

from __future__ import annotations

import math

import pytest
import torch

from handpose.core.augment import AppearanceAugmentation, PeclrViewSampler, transform_points
from handpose.core.losses.contrastive import invert_latent_transform, nt_xent, peclr_loss


def _naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    z = torch.cat([z1, z2]).double()
    n2 = z.shape[0]
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        pos = (i + n) % n2
        def sim(a: int, b: int) -> float:
            return float(z[a] @ z[b] / (z[a].norm() * z[b].norm()))
        num = math.exp(sim(i, pos) / tau)
        den = sum(math.exp(sim(i, k) / tau) for k in range(n2) if k != i)
        total += -math.log(num / den)
    return torch.tensor(total / n2, dtype=torch.float64)


def test_nt_xent_matches_a_naive_loop() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g) * 3
    for tau in (0.5, 0.1):
        assert torch.allclose(nt_xent(z1, z2, tau).double(), _naive_nt_xent(z1, z2, tau),
                              atol=1e-5)


def test_nt_xent_analytic_value_for_aligned_orthogonal_embeddings() -> None:
    # positives identical (cos 1), every other pair orthogonal (cos 0):
    # each anchor: -log(e^(1/t) / (e^(1/t) + (2N - 2))) = log(1 + (2N - 2) e^(-1/t))
    n, tau = 4, 0.5
    z = torch.eye(8)[:n]
    expected = math.log(1 + (2 * n - 2) * math.exp(-1 / tau))
    assert math.isclose(float(nt_xent(z, z.clone(), tau)), expected, rel_tol=1e-6)
    # swapping the pairing (positives orthogonal, a negative identical) is much worse
    assert float(nt_xent(z, z.roll(1, dims=0), tau)) > expected + 1.0


def test_nt_xent_gradcheck_and_errors() -> None:
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.5), (z1, z2))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        nt_xent(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(z1, z2, 0.0)


def _rotate(points: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate (B, K, 2) points about their centroid with the image convention R(a)."""
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)
    m = points.mean(dim=1, keepdim=True)
    return (points - m) @ rot.transpose(-1, -2) + m


def test_inversion_undoes_an_equivariant_rotation_translation_and_flip() -> None:
    g = torch.Generator().manual_seed(2)
    b, size = 5, 128.0
    pts = torch.randn(b, 64, 2, generator=g, dtype=torch.float64)
    angle = (torch.rand(b, generator=g, dtype=torch.float64) - 0.5) * 1.5
    t = (torch.rand(b, 2, generator=g, dtype=torch.float64) - 0.5) * 30
    flip = torch.tensor([True, False, True, False, False])
    mirrored = pts.clone()
    m = pts.mean(dim=1, keepdim=True)
    mirrored[flip, :, 0] = 2 * m[flip, :, 0] - pts[flip, :, 0]
    q = _rotate(mirrored, angle)  # flip, then rotate (as the image warp)
    extent = q.amax(dim=1) - q.amin(dim=1)
    z = (q + (t / size * extent).unsqueeze(1)).reshape(b, 128)
    back = invert_latent_transform(z, angle, t, size, flip)
    assert torch.allclose(back, pts.reshape(b, 128), atol=1e-10)


def test_peclr_loss_of_an_equivariant_encoder_beats_simclr_on_rotated_views() -> None:
    """An oracle encoder whose 64 latent points are image points warped with the view:
    exactly equivariant to the sampler's rotations. PeCLR sees identical positives (the
    analytic minimum for these embeddings); SimCLR sees rotated, dissimilar ones."""
    g = torch.Generator().manual_seed(3)
    n, size = 6, 32
    images = torch.rand(n, 3, 40, 40, generator=g)
    scene = 16 * torch.rand(n, 64, 2, generator=g)  # 64 image points per sample, centred on
    scene = scene - scene.mean(dim=1, keepdim=True) + 19.5  # the hand (= image) centre
    sampler = PeclrViewSampler(out_size=size, margin_range=(1.0, 1.0), max_translation_px=0.0,
                               appearance=AppearanceAugmentation(jitter_prob=0.0))
    centre = (size - 1) / 2

    def encode(params) -> torch.Tensor:  # type: ignore[no-untyped-def]
        return (transform_points(scene, params.matrix) - centre).reshape(n, 128)

    _, p1, _ = sampler(images, generator=10)
    _, p2, _ = sampler(images, generator=11)
    assert (p1.angle - p2.angle).abs().mean() > 0.2
    z1, z2 = encode(p1), encode(p2)
    peclr = float(peclr_loss(z1, z2, p1, p2))
    simclr = float(nt_xent(z1, z2))
    # after inversion the two views of a sample coincide (cosine 1)
    a = torch.nn.functional.normalize(invert_latent_transform(z1, p1.angle, p1.translation,
                                                              size), dim=1)
    b = torch.nn.functional.normalize(invert_latent_transform(z2, p2.angle, p2.translation,
                                                              size), dim=1)
    assert torch.allclose((a * b).sum(dim=1), torch.ones(n), atol=1e-5)
    assert peclr < simclr - 0.1
    # and the loss takes plain mappings too
    d1 = {"angle": p1.angle, "translation": p1.translation, "out_size": (size, size)}
    d2 = {"angle": p2.angle, "translation": p2.translation, "out_size": (size, size)}
    assert math.isclose(float(peclr_loss(z1, z2, d1, d2)), peclr, rel_tol=1e-6)


def test_peclr_with_translations_through_the_sampler_is_invariant_for_oracle() -> None:
    """With translation, an encoder following the latent rule (shift by t/L x range) is
    exactly inverted, so PeCLR equals NT-Xent of the untransformed embeddings."""
    g = torch.Generator().manual_seed(4)
    n, size = 5, 48.0
    base = torch.randn(n, 64, 2, generator=g)
    sampler = PeclrViewSampler(out_size=48)
    p1 = sampler.sample(torch.full((n, 2), 20.0), torch.full((n,), 30.0), generator=1)
    p2 = sampler.sample(torch.full((n, 2), 20.0), torch.full((n,), 30.0), generator=2)

    def encode(params) -> torch.Tensor:  # type: ignore[no-untyped-def]
        q = _rotate(base, params.angle)
        ext = q.amax(dim=1) - q.amin(dim=1)
        return (q + (params.translation / size * ext).unsqueeze(1)).reshape(n, 128)

    loss = peclr_loss(encode(p1), encode(p2), p1, p2)
    ideal = nt_xent(base.reshape(n, 128), base.reshape(n, 128))
    assert torch.allclose(loss, ideal, atol=1e-5)


def test_peclr_gradients_treat_range_and_centroid_as_constants() -> None:
    g = torch.Generator().manual_seed(5)
    b = 3
    z = torch.randn(b, 8, generator=g, dtype=torch.float64, requires_grad=True)
    angle = torch.tensor([0.1, -0.4, 0.7], dtype=torch.float64)
    t = torch.tensor([[1.0, -2.0], [0.0, 3.0], [5.0, 5.0]], dtype=torch.float64)
    w = torch.randn(b, 8, generator=g, dtype=torch.float64)
    (invert_latent_transform(z, angle, t, 16.0) * w).sum().backward()
    # with the range and the centroid detached, each point maps through R(angle)^T only
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)
    expected = (w.view(b, 4, 2) @ rot.transpose(-1, -2)).reshape(b, 8)
    assert torch.allclose(z.grad, expected)
    # without a transform, the loss is NT-Xent and its gradient is exact
    z1 = torch.randn(3, 8, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(3, 8, generator=g, dtype=torch.float64, requires_grad=True)
    ident = {"angle": torch.zeros(3, dtype=torch.float64),
             "translation": torch.zeros(3, 2, dtype=torch.float64), "out_size": (16, 16)}
    assert torch.autograd.gradcheck(lambda a, b: peclr_loss(a, b, ident, ident), (z1, z2))
    assert torch.allclose(peclr_loss(z1, z2, ident, ident), nt_xent(z1, z2))


def test_peclr_bad_params() -> None:
    z = torch.zeros(3, 8)
    prm = {"angle": torch.zeros(3), "translation": torch.zeros(3, 2)}
    with pytest.raises(ValueError, match="size="):
        peclr_loss(z, z, prm, prm)
    with pytest.raises(ValueError, match="'angle'"):
        peclr_loss(z, z, {}, prm, size=16.0)
    with pytest.raises(ValueError, match="even"):
        invert_latent_transform(torch.zeros(3, 7), prm["angle"], prm["translation"], 16.0)
    with pytest.raises(ValueError, match=r"translation \(3, 2\)"):
        invert_latent_transform(z, prm["angle"], torch.zeros(3), 16.0)
