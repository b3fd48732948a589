"""The disentangled VAE: pose vector, Gaussian posteriors, the DCGAN decoder, the model's
contracts (PoseNet outputs, synthesis, transfer), its objective's stop-gradients, the registry
and checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from handpose.core.checkpoint import load_checkpoint, save_checkpoint
from handpose.core.models import build_model
from handpose.core.models.disentangled_vae import (
    LOGVAR_INIT,
    POSE_VECTOR_DIM,
    Z_REL_UNIT,
    DisentangledVAE,
    Gaussian,
    ImageDecoder,
    interpolate,
    pose_to_vector,
    vector_to_pose,
)
from handpose.core.models.disentangled_vae_loss import DVAELossWeights, dvae_loss, frozen_call

SIZE = 16


def tiny(**kw: int) -> DisentangledVAE:
    args = dict(depth=18, width=4, pose_latent=6, content_latent=5, hidden=16, layers=2,
                image_size=SIZE, decoder_channels=4)
    args.update(kw)
    return DisentangledVAE(**args)


def test_pose_vector_has_the_crop_edges_at_half_and_round_trips(rng) -> None:
    uv = torch.tensor([[(SIZE - 1) / 2, (SIZE - 1) / 2], [-0.5, SIZE - 0.5]])
    uv = torch.cat([uv, torch.zeros(19, 2)])[None]
    z_rel = torch.zeros(1, 21)
    z_rel[0, 1] = 10.0
    y = pose_to_vector(uv, z_rel, SIZE).view(21, 3)
    assert torch.allclose(y[0], torch.zeros(3))
    assert torch.allclose(y[1], torch.tensor([-0.5, 0.5, 10.0 * Z_REL_UNIT]))
    uv2 = torch.as_tensor(rng.uniform(0, SIZE, (4, 21, 2)), dtype=torch.float64)
    z2 = torch.as_tensor(rng.normal(0, 2, (4, 21)), dtype=torch.float64)
    back_uv, back_z = vector_to_pose(pose_to_vector(uv2, z2, SIZE), SIZE)
    assert torch.allclose(back_uv, uv2) and torch.allclose(back_z, z2)
    with pytest.raises(ValueError, match=r"uv must be \(B, 21, 2\)"):
        pose_to_vector(torch.zeros(2, 20, 2), torch.zeros(2, 20), SIZE)
    with pytest.raises(ValueError, match="size must be > 0"):
        pose_to_vector(uv, z_rel, 0)
    with pytest.raises(ValueError, match=f"y must be \\(B, {POSE_VECTOR_DIM}\\)"):
        vector_to_pose(torch.zeros(2, 62), SIZE)


def test_gaussian_kl_matches_torch_distributions_and_has_a_gradient() -> None:
    g = torch.Generator().manual_seed(0)
    mu, lv = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    mu2, lv2 = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    q, p = Gaussian(mu, lv), Gaussian(mu2, lv2)
    ref = kl_divergence(Normal(mu, (0.5 * lv).exp()), Normal(mu2, (0.5 * lv2).exp())).sum(-1)
    assert torch.allclose(q.kl(p), ref, atol=1e-5)
    prior = kl_divergence(Normal(mu, (0.5 * lv).exp()), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(q.kl(), prior, atol=1e-5)
    assert torch.allclose(q.kl(q), torch.zeros(3), atol=1e-6)
    assert q.part(1, 3).mu.shape == (3, 2)
    m64 = mu.double().requires_grad_()
    l64 = lv.double().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: Gaussian(a, b).kl(Gaussian(mu2.double(), lv2.double())), (m64, l64))
    torch.manual_seed(0)
    draws = Gaussian(torch.full((20000, 1), 2.0), torch.full((20000, 1), math.log(2.0))).sample()
    assert abs(float(draws.mean()) - 2.0) < 0.03 and abs(float(draws.var()) - 2.0) < 0.08


def test_interpolate_walks_from_a_to_b() -> None:
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    w = interpolate(a, b, 5)
    assert w.shape == (5, 2) and torch.equal(w[0], a) and torch.equal(w[-1], b)
    assert torch.allclose(w[2], (a + b) / 2)
    with pytest.raises(ValueError, match="steps must be >= 2"):
        interpolate(a, b, 1)
    with pytest.raises(ValueError, match="one shape"):
        interpolate(a, torch.zeros(3), 3)


@pytest.mark.parametrize("size", [8, 32, 64])
def test_dcgan_decoder_makes_images_in_the_unit_range(size: int) -> None:
    dec = ImageDecoder(7, size, 4)
    with torch.no_grad():
        out = dec(torch.randn(2, 7))
    assert out.shape == (2, 3, size, size) and 0 < float(out.min()) and float(out.max()) < 1
    n_up = sum(isinstance(m, nn.ConvTranspose2d) for m in dec.net)
    assert 4 * 2 ** (n_up - 1) == size  # one 1x1 -> 4x4 layer, then x2 per layer
    with pytest.raises(ValueError, match="power of two"):
        ImageDecoder(7, 48)
    with pytest.raises(ValueError, match=r"z must be \(B, 7\)"):
        dec(torch.zeros(2, 6))


def test_model_gives_the_posenet_contract_at_any_input_size() -> None:
    torch.manual_seed(0)
    m = tiny().eval()
    with torch.no_grad():
        small, big = m(torch.randn(2, 3, SIZE, SIZE)), m(torch.randn(2, 3, 2 * SIZE, 2 * SIZE))
    assert small["uv"].shape == (2, 21, 2) and small["z_rel"].shape == (2, 21)
    assert ((small["confidence"] > 0) & (small["confidence"] <= 1)).all()
    z = torch.randn(3, 6)
    a, b = m.decode_pose(z, SIZE), m.decode_pose(z, 3 * SIZE)
    assert torch.allclose((a["uv"] + 0.5) / SIZE, (b["uv"] + 0.5) / (3 * SIZE), atol=1e-6)
    assert torch.equal(a["z_rel"], b["z_rel"]) and big["uv"].shape == (2, 21, 2)
    q = m.encode_pose(torch.zeros(4, 21, 2), torch.zeros(4, 21))
    assert torch.allclose(q.logvar, torch.full((4, 6), LOGVAR_INIT), atol=0.5)
    with pytest.raises(ValueError, match="normalised float images"):
        m(torch.zeros(1, 3, SIZE, SIZE, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"z_pose must be \(B, 6\)"):
        m.decode_pose(torch.zeros(1, 11))


def test_synthesis_and_transfer_combine_the_two_factors() -> None:
    torch.manual_seed(0)
    m = tiny().eval()
    x = torch.randn(3, 3, SIZE, SIZE)
    uv, z_rel = torch.rand(3, 21, 2) * SIZE, torch.randn(3, 21)
    with torch.no_grad():
        syn = m.synthesize(uv, z_rel, x)
        z = torch.cat([m.encode_pose(uv, z_rel).mu, m.encode_content(x).mu], 1)
        assert torch.allclose(syn, m.decode_image(z))
        moved = m.transfer(x, x.flip(0))
        z = torch.cat([m.encode_image(x).mu[:, :6], m.encode_content(x.flip(0)).mu], 1)
        assert torch.allclose(moved, m.decode_image(z))
        assert torch.allclose(m.reconstruct(x), m.decode_image(m.encode_image(x).mu))
    zp, zc = m.split(torch.arange(22.0).view(2, 11))
    assert zp.shape == (2, 6) and zc.shape == (2, 5) and zc[0, 0] == 6
    with pytest.raises(ValueError, match="one batch size"):
        m.transfer(x, x[:2])
    with pytest.raises(ValueError, match="one batch size"):
        m.synthesize(uv[:2], z_rel[:2], x)


def test_frozen_call_passes_gradients_to_the_input_only() -> None:
    lin = nn.Linear(3, 2)
    x = torch.randn(4, 3, requires_grad=True)
    frozen_call(lin, x).pow(2).sum().backward()
    g_frozen = x.grad.clone()
    assert lin.weight.grad is None
    x.grad = None
    lin(x).pow(2).sum().backward()
    assert torch.allclose(g_frozen, x.grad) and lin.weight.grad is not None


def _grads(m: DisentangledVAE, weights: DVAELossWeights) -> dict[str, float]:
    torch.manual_seed(1)
    m.zero_grad(set_to_none=True)
    x = torch.rand(4, 3, SIZE, SIZE)
    out = dvae_loss(m, x, torch.rand(4, 21, 2) * SIZE, torch.randn(4, 21), weights)
    assert set(out) == {"total", "dis_image", "dis_pose", "dis_kl", "emb_image", "emb_pose",
                        "emb_kl", "align", "confidence", "uv_px"}
    assert all(torch.isfinite(v) for v in out.values())
    out["total"].backward()
    norms = {}
    for name in ("pose_encoder", "pose_decoder", "content_encoder", "image_encoder",
                 "image_decoder", "pose_error"):
        gs = [p.grad.abs().sum() for p in getattr(m, name).parameters() if p.grad is not None]
        norms[name] = float(sum(gs)) if gs else 0.0
    return norms


def test_embedding_step_keeps_the_decoders_fixed() -> None:
    m = tiny()
    emb = DVAELossWeights(image=0, pose=0, beta=0, image_emb=1, pose_emb=1, beta_emb=1, align=1,
                          confidence=0)
    g = _grads(m, emb)
    assert g["image_encoder"] > 0
    assert g["image_decoder"] == g["pose_decoder"] == 0.0  # decoders fixed (Eq. 4.4)
    assert g["pose_encoder"] == g["content_encoder"] == 0.0  # the alignment target is detached
    dis = DVAELossWeights(image=1, pose=1, beta=1, image_emb=0, pose_emb=0, beta_emb=0, align=0,
                          confidence=0)
    g = _grads(m, dis)
    assert min(g["pose_encoder"], g["content_encoder"], g["image_decoder"], g["pose_decoder"]) > 0
    assert g["image_encoder"] == 0.0 and g["pose_error"] == 0.0
    conf = DVAELossWeights(image=0, pose=0, beta=0, image_emb=0, pose_emb=0, beta_emb=0, align=0,
                           confidence=1)
    g = _grads(m, conf)  # the confidence term teaches the error head only
    assert g["pose_error"] > 0 and g["image_encoder"] == g["pose_decoder"] == 0.0


def test_loss_refuses_bad_inputs() -> None:
    m = tiny()
    uv, z = torch.zeros(2, 21, 2), torch.zeros(2, 21)
    with pytest.raises(ValueError, match=r"images must be \(B, 3, 16, 16\)"):
        dvae_loss(m, torch.rand(2, 3, 32, 32), uv, z)
    with pytest.raises(ValueError, match="batch 3, images 2"):
        dvae_loss(m, torch.rand(2, 3, SIZE, SIZE), torch.zeros(3, 21, 2), torch.zeros(3, 21))
    with pytest.raises(ValueError, match="loss weight beta must be >= 0"):
        DVAELossWeights(beta=-1.0)


def test_registry_and_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = build_model("disentangled_vae", width=4, pose_latent=6, content_latent=5, hidden=16,
                    layers=2, image_size=SIZE, decoder_channels=4).eval()
    path = save_checkpoint(tmp_path / "dvae.pt", m, input_size=SIZE)
    loaded, meta = load_checkpoint(path)
    assert meta.arch["name"] == "disentangled_vae" and meta.arch["kwargs"]["hidden"] == 16
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.allclose(loaded(x)["uv"], m(x)["uv"])
        assert torch.allclose(loaded.reconstruct(x), m.reconstruct(x))
