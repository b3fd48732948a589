"""Cross-modal VAE: product of experts, KL, view frame, encoders/decoders, RGB-only outputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from handpose.core.checkpoint import load_checkpoint, save_checkpoint
from handpose.core.export import OnnxPoseNet, export_onnx
from handpose.core.geometry.crop import crop_intrinsics
from handpose.core.models import POSE_OUTPUTS, build_model
from handpose.core.models.crossvae import (
    CrossModalVAE,
    FoldingDecoder,
    PointNetEncoder,
    PoseDecoder,
    kl_standard_normal,
    product_of_experts,
    view_rotation,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"width": 8, "latent": 16, "rgb_hidden": 32, "point_width": 16, "pose_hidden": 32,
        "heatmap_size": 16, "heatmap_channels": 32, "grid": 8, "fold_hidden": 32}


def _vae() -> CrossModalVAE:
    torch.manual_seed(0)
    m = build_model("crossvae_resnet18", **TINY)
    assert isinstance(m, CrossModalVAE)
    return m


def test_product_of_two_experts_and_the_prior_analytic() -> None:
    mu = torch.tensor([[[1.0, -2.0]], [[3.0, 0.0]]], dtype=torch.float64)  # (E=2, B=1, D=2)
    var = torch.tensor([[[1.0, 4.0]], [[3.0, 0.25]]], dtype=torch.float64)
    m, lv = product_of_experts(mu, var.log(), prior=False)
    t1, t2 = 1 / var[0], 1 / var[1]
    torch.testing.assert_close(m, (mu[0] * t1 + mu[1] * t2) / (t1 + t2))
    torch.testing.assert_close(lv.exp(), 1 / (t1 + t2))
    # with the N(0, I) expert: one more precision of 1 with mean 0
    m0, lv0 = product_of_experts(mu, var.log())
    torch.testing.assert_close(m0, (mu[0] * t1 + mu[1] * t2) / (t1 + t2 + 1))
    torch.testing.assert_close(lv0.exp(), 1 / (t1 + t2 + 1))
    # a single expert alone is itself; N(0, 1) x N(0, 1) halves the variance
    one, lvo = product_of_experts(mu[:1], var[:1].log(), prior=False)
    torch.testing.assert_close(one, mu[0])
    torch.testing.assert_close(lvo, var[0].log())
    _, lvh = product_of_experts(torch.zeros(1, 1, 3), torch.zeros(1, 1, 3))
    torch.testing.assert_close(lvh.exp(), torch.full((1, 3), 0.5))


def test_product_density_is_proportional_to_the_product_of_densities() -> None:
    torch.manual_seed(1)
    mu, lv = torch.randn(3, 2, 4, dtype=torch.float64), torch.randn(3, 2, 4, dtype=torch.float64)
    pm, plv = product_of_experts(mu, lv)
    z = torch.randn(5, 2, 4, dtype=torch.float64)
    logp = sum(Normal(mu[i], (0.5 * lv[i]).exp()).log_prob(z) for i in range(3)) + \
        Normal(0.0, 1.0).log_prob(z)
    logq = Normal(pm, (0.5 * plv).exp()).log_prob(z)
    diff = logp - logq  # constant in z
    torch.testing.assert_close(diff, diff[:1].expand_as(diff))


def test_kl_matches_torch_distributions() -> None:
    torch.manual_seed(2)
    mu, lv = torch.randn(3, 5), torch.randn(3, 5)
    want = kl_divergence(Normal(mu, (0.5 * lv).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl_standard_normal(mu, lv), want)
    assert float(kl_standard_normal(torch.zeros(1, 4), torch.zeros(1, 4))) == 0.0


def _K(f: float, c: tuple[float, float]) -> torch.Tensor:
    return torch.tensor([[[f, 0.0, c[0]], [0.0, f, c[1]], [0.0, 0.0, 1.0]]])


def test_view_rotation_centres_the_crop_and_turns_with_it() -> None:
    torch.testing.assert_close(view_rotation(_K(100.0, (31.5, 31.5)), 64), torch.eye(3)[None])
    K = _K(80.0, (-40.0, 90.0)).double()  # the crop far off the principal point
    R = view_rotation(K, 64)
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3, dtype=K.dtype)[None])
    assert float(torch.linalg.det(R)) == pytest.approx(1.0)
    ray = torch.linalg.solve(K[0], torch.tensor([31.5, 31.5, 1.0], dtype=K.dtype))
    torch.testing.assert_close(R[0] @ (ray / ray.norm()), torch.tensor([0, 0, 1.0]).double())
    # rotating the crop image by theta about its centre turns the view frame about z by theta:
    # exactly for a crop centred on the principal point, nearly for a crop 10 degrees off axis
    theta = 0.3
    c, s = math.cos(theta), math.sin(theta)
    A = torch.tensor([[[c, s, 0.0], [-s, c, 0.0]]], dtype=K.dtype)  # image rotation (+theta)
    A[0, :, 2] = torch.tensor([31.5, 31.5], dtype=K.dtype) - A[0, :, :2] @ torch.tensor(
        [31.5, 31.5], dtype=K.dtype)
    for centre, tol in (((31.5, 31.5), 1e-9), ((31.5 - 14.0, 31.5), 5e-3)):
        K = _K(80.0, centre).double()
        R, R2 = view_rotation(K, 64), view_rotation(crop_intrinsics(K, A), 64)
        Rz = R2[0] @ R[0].T  # the relative rotation, about the view z axis
        torch.testing.assert_close(Rz[2], torch.tensor([0, 0, 1.0]).double())
        assert math.atan2(float(Rz[0, 1]), float(Rz[0, 0])) == pytest.approx(theta, abs=tol)
    with pytest.raises(ValueError, match=r"K must have shape \(B, 3, 3\)"):
        view_rotation(torch.eye(3), 64)


def test_pointnet_is_order_invariant_and_decoders_have_their_shapes() -> None:
    torch.manual_seed(3)
    enc = PointNetEncoder(latent=8, width=8).eval()
    pts = torch.randn(2, 30, 3)
    mu, lv = enc(pts)
    mu2, lv2 = enc(pts[:, torch.randperm(30)])
    torch.testing.assert_close(mu, mu2)
    torch.testing.assert_close(lv, lv2)
    assert mu.shape == (2, 8)
    p = PoseDecoder(8, 16)(torch.randn(4, 8))
    assert p.shape == (4, 21, 3) and float(p[:, 0].detach().abs().max()) == 0.0
    assert FoldingDecoder(8, grid=5, hidden=16)(torch.randn(4, 8)).shape == (4, 25, 3)
    with pytest.raises(ValueError, match=r"points must have shape \(B, N, 3\)"):
        enc(torch.randn(2, 3, 30).transpose(1, 2)[..., :2])


def test_rgb_alone_gives_the_posenet_contract_and_a_point_cloud() -> None:
    m = _vae().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = m(x)
        centred = m(x, _K(90.0, (31.5, 31.5)).expand(2, 3, 3))
        off = m(x, _K(90.0, (-60.0, 31.5)).expand(2, 3, 3))
    assert set(POSE_OUTPUTS) <= set(out) and out["uv"].shape == (2, 21, 2)
    assert ((out["uv"] > -0.5) & (out["uv"] < 63.5)).all()
    torch.testing.assert_close(centred["z_rel"], out["z_rel"])
    assert not torch.allclose(off["z_rel"], out["z_rel"])
    pts = m.reconstruct_points(x)
    assert pts.shape == (2, 64, 3)
    torch.testing.assert_close(m.reconstruct_points(x, scale=0.06), 2 * pts)
    root = torch.tensor([[0.1, 0.0, 0.5], [0.0, 0.0, 0.4]])
    K = _K(90.0, (31.5, 31.5)).expand(2, 3, 3)
    torch.testing.assert_close(m.reconstruct_points(x, K=K, root=root), pts + root[:, None])
    with pytest.raises(ValueError, match="needs K"):
        m.reconstruct_points(x, root=root)
    with pytest.raises(ValueError, match="positive"):
        m.reconstruct_points(x, scale=torch.tensor([0.03, -1.0]))


def test_crossvae_checkpoint_and_onnx_match_torch(tmp_path: Path) -> None:
    m = _vae()
    with torch.no_grad():
        m(torch.randn(4, 3, 64, 64))  # BN statistics (train mode)
    m.eval()
    loaded, meta = load_checkpoint(save_checkpoint(tmp_path / "model.pt", m, input_size=64))
    assert meta.arch == {"name": "crossvae_resnet18", "kwargs": TINY}
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        ref = m(x)
    sess = OnnxPoseNet(export_onnx(loaded, tmp_path / "m.onnx", 64))
    got = sess(x.numpy())
    for k in POSE_OUTPUTS:
        np.testing.assert_allclose(got[k], ref[k].numpy(), atol=1e-4, rtol=1e-4)
