"""Dual-modality network: attention, depth normalisation, branches, RGB-only checkpoint + ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from handpose.core.checkpoint import load_checkpoint, save_checkpoint
from handpose.core.export import OnnxPoseNet, export_onnx
from handpose.core.models import POSE_OUTPUTS, build_model
from handpose.core.models.dual import (
    DualModalityNet,
    depth_attention,
    normalize_depth,
    reference_depth,
    rgb_branch,
    upsample_depth,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"width": 8, "channels": 16, "num_deconv": 3, "proj_hidden": 16, "proj_dim": 8}


def _net(**kw: object) -> DualModalityNet:
    torch.manual_seed(0)
    m = build_model("dual_resnet18", **{**TINY, **kw})
    assert isinstance(m, DualModalityNet)
    return m


def test_attention_matches_the_formula_elementwise(rng: np.random.Generator) -> None:
    f = torch.from_numpy(rng.uniform(0, 2, size=(2, 5, 3, 4)))
    w = depth_attention(f)
    for b in range(2):
        mean = f[b].mean(dim=(1, 2))
        dots = torch.tensor([[float(mean @ f[b, :, i, j]) for j in range(4)]
                             for i in range(3)], dtype=f.dtype)
        torch.testing.assert_close(w[b, 0], dots / dots.sum() * 12, rtol=1e-12, atol=0)
    torch.testing.assert_close(w.mean(dim=(1, 2, 3)), torch.ones(2, dtype=f.dtype))
    # uniform features: all weights 1; zero features: weights 0 (no division by zero)
    torch.testing.assert_close(depth_attention(torch.ones(1, 3, 2, 2)), torch.ones(1, 1, 2, 2))
    assert float(depth_attention(torch.zeros(1, 3, 2, 2)).abs().max()) == 0.0


def test_depth_normalisation_analytic_values() -> None:
    d = torch.zeros(2, 1, 8, 8)
    d[0, 0, 2:6, 2:6] = 0.5  # the hand, at the reference depth
    d[0, 0, 2, 2] = 0.5 + 0.5 * 5 * 0.03  # half the window behind it
    d[0, 0, 3, 3] = 0.5 - 0.4  # far in front: clipped
    d[0, 0, 7, 7] = 3.0  # background wall far behind
    ref = reference_depth(d)
    assert float(ref[0]) == pytest.approx(0.5) and torch.isnan(ref[1])
    q = normalize_depth(d, ref, torch.tensor([0.03, 0.03]))
    assert q.shape == (2, 1, 8, 8)
    assert float(q[0, 0, 4, 4]) == 0.0 and float(q[0, 0, 2, 2]) == pytest.approx(0.5)
    assert float(q[0, 0, 3, 3]) == -1.0 and float(q[0, 0, 7, 7]) == 1.0
    assert float(q[0, 0, 0, 0]) == 1.0  # no reading = far
    assert bool((q[1] == 1).all())  # a crop without any reading
    # the central window decides when it has readings; else the whole crop
    d2 = torch.zeros(1, 8, 8)
    d2[0, 0, :] = 2.0
    assert float(reference_depth(d2)) == 2.0
    with pytest.raises(ValueError, match=r"depth must have shape \(B, 1, S, S\)"):
        normalize_depth(d[:, 0], ref, torch.ones(2))
    with pytest.raises(ValueError, match="ref_z and scale"):
        normalize_depth(d, ref[:1], torch.ones(2))


def test_fusion_shares_the_rgb_convolutions_but_not_the_bn() -> None:
    m = _net()
    assert m.fusion_encoder.conv1.weight is m.encoder.conv1.weight
    assert m.fusion_encoder.layer3[0].downsample[0].weight is \
        m.encoder.layer3[0].downsample[0].weight
    assert m.fusion_encoder.bn1 is not m.encoder.bn1
    # counted once by the optimiser
    ids = [id(p) for p in m.parameters()]
    assert len(ids) == len(set(ids))
    assert m.depth_encoder.conv1.weight.shape[1] == 1


def test_fusion_with_unit_attention_and_the_rgb_bn_is_the_rgb_encoder() -> None:
    m = _net()
    m.train()
    with torch.no_grad():
        m.encode_rgb(torch.randn(4, 3, 64, 64))  # non-trivial BN statistics
    bn = {k: v for k, v in m.encoder.state_dict().items() if "bn" in k or "downsample.1" in k}
    m.fusion_encoder.load_state_dict(bn, strict=False)
    m.eval()
    x = torch.randn(2, 3, 64, 64)
    ones = [torch.ones(1)] * 5
    torch.testing.assert_close(m.encode_fusion(x, ones), m.encode_rgb(x))


def test_stop_gradient_keeps_the_fusion_loss_out_of_the_depth_encoder() -> None:
    m = _net()
    x, d = torch.randn(2, 3, 64, 64), torch.rand(2, 1, 64, 64) * 2 - 1
    for detach, expect_grad in ((True, False), (False, True)):
        m.zero_grad()
        _, att = m.encode_depth(d)
        m.encode_fusion(x, att, detach_attention=detach).square().mean().backward()
        g = m.depth_encoder.conv1.weight.grad
        has = g is not None and float(g.abs().sum()) > 0
        assert has == expect_grad
        assert m.fusion_encoder.bn1.weight.grad is not None  # the fusion BN is trained
        assert m.encoder.conv1.weight.grad is not None  # so are the shared convolutions


def test_decoder_outputs_and_contrastive_projections() -> None:
    m = _net()
    x = torch.randn(3, 3, 64, 64)
    out = m(x)
    assert set(POSE_OUTPUTS) <= set(out)
    assert out["uv"].shape == (3, 21, 2) and out["mask"].shape == (3, 16, 16)
    assert out["depth"].shape == (3, 16, 16) and ((out["mask"] > 0) & (out["mask"] < 1)).all()
    # the depth output starts "far" (1), the mask at its prior
    assert float((out["depth"] - 1).detach().abs().max()) < 0.1
    z = m.project(m.encode_rgb(x))
    zd = m.project(m.encode_depth(torch.zeros(3, 1, 64, 64))[0], "depth")
    assert z.shape == zd.shape == (3, 8)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    d = upsample_depth(out["depth"] * 3, 64)
    assert d.shape == (3, 1, 64, 64) and float(d.detach().abs().max()) <= 1.0
    with pytest.raises(ValueError, match="modality"):
        m.project(m.encode_rgb(x), "rgbd")
    with pytest.raises(ValueError, match=r"depth must be a float tensor \(B, 1, S, S\)"):
        m.encode_depth(torch.zeros(3, 3, 64, 64))
    with pytest.raises(ValueError, match="5 maps"):
        m.encode_fusion(x, [torch.ones(1)] * 4)


def test_rgb_branch_checkpoint_and_onnx_match_the_dual_network(tmp_path: Path) -> None:
    m = _net()
    m.train()
    with torch.no_grad():
        m(torch.randn(4, 3, 64, 64))
    m.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = m(x)
    rgb = rgb_branch(m)
    kw = {k: TINY[k] for k in ("width", "channels", "num_deconv")}
    path = save_checkpoint(tmp_path / "model.pt", rgb, input_size=64,
                           arch={"name": "posenet_resnet18_multimodal", "kwargs": kw})
    loaded, meta = load_checkpoint(path)
    assert meta.arch["name"] == "posenet_resnet18_multimodal"
    with torch.no_grad():
        out = loaded(x)
    for k in (*POSE_OUTPUTS, "mask", "depth"):
        torch.testing.assert_close(out[k], ref[k])
    # the full dual network as a checkpoint too
    full, _ = load_checkpoint(save_checkpoint(tmp_path / "dual.pt", m, input_size=64))
    assert full.fusion_encoder.conv1.weight is full.encoder.conv1.weight  # ties survive
    with torch.no_grad():
        torch.testing.assert_close(full(x)["uv"], ref["uv"])
    onnx = OnnxPoseNet(export_onnx(loaded, tmp_path / "m.onnx", 64))
    got = onnx(x.numpy())
    for k in POSE_OUTPUTS:
        np.testing.assert_allclose(got[k], ref[k].numpy(), atol=1e-4, rtol=1e-4)
