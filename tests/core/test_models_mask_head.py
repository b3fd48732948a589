"""The SemiHand mask head and PoseMaskNet: shapes, registry round trip, pose parity, errors."""

from __future__ import annotations

import pytest
import torch

from handpose.core.checkpoint import load_checkpoint, save_checkpoint
from handpose.core.models import build_model, get_arch
from handpose.core.models.mask_head import MaskHead, PoseMaskNet


def test_mask_head_resolution_and_prior() -> None:
    head = MaskHead(16, channels=8, num_deconv=3, prior=0.3).eval()
    logits = head(torch.randn(2, 16, 4, 4))
    assert logits.shape == (2, 32, 32)  # stride 32 -> stride 4
    # near-zero final weights: every pixel starts at the prior probability
    assert torch.sigmoid(logits).sub(0.3).abs().max() < 0.02
    assert MaskHead(16, num_deconv=0)(torch.randn(1, 16, 5, 5)).shape == (1, 5, 5)


def test_posemasknet_from_registry_matches_posenet_pose(tmp_path) -> None:
    torch.manual_seed(0)
    m = build_model("posenet_resnet18_mask", width=8, mask_channels=8, mask_deconv=2).eval()
    assert isinstance(m, PoseMaskNet)
    assert get_arch(m)["name"] == "posenet_resnet18_mask"
    x = torch.randn(3, 3, 64, 64)
    out = m(x)
    assert out["mask"].shape == out["mask_logits"].shape == (3, 8, 8)
    assert torch.all((out["mask"] > 0) & (out["mask"] < 1))
    torch.testing.assert_close(out["mask"], torch.sigmoid(out["mask_logits"]))
    # the pose outputs are exactly those of a PoseNet with the same encoder and head
    plain = build_model("posenet_resnet18", width=8).eval()
    plain.load_state_dict({k: v for k, v in m.state_dict().items()
                           if not k.startswith("mask_head.")})
    torch.testing.assert_close(plain(x)["uv"], out["uv"])
    # a checkpoint rebuilds the same network
    path = save_checkpoint(tmp_path / "m.pt", m, input_size=64)
    loaded, meta = load_checkpoint(path)
    assert meta.arch["kwargs"] == {"width": 8, "mask_channels": 8, "mask_deconv": 2}
    torch.testing.assert_close(loaded.eval()(x)["mask"], out["mask"])


def test_mask_head_gradients_reach_the_encoder() -> None:
    m = build_model("posenet_resnet18_mask", width=8)
    m(torch.randn(2, 3, 64, 64))["mask"].mean().backward()
    assert m.encoder.conv1.weight.grad is not None
    assert float(m.encoder.conv1.weight.grad.abs().sum()) > 0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="prior"):
        MaskHead(8, prior=1.0)
    with pytest.raises(ValueError, match="num_deconv"):
        MaskHead(8, num_deconv=-1)
    with pytest.raises(ValueError, match=r"\(B, 8, h, w\)"):
        MaskHead(8)(torch.randn(1, 4, 2, 2))
    m = build_model("posenet_resnet18_mask", width=8)
    with pytest.raises(ValueError, match="mask_head.in_channels"):
        PoseMaskNet(m.encoder, m.head, MaskHead(3))
    with pytest.raises(ValueError, match=r"\(B, 3, S, S\)"):
        m(torch.randn(1, 1, 64, 64))
