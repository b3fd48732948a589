"""ONNX export: ONNX Runtime matches torch, dynamic batch, metadata, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from handpose.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from handpose.core.export import OnnxPoseNet, export_checkpoint, export_onnx
from handpose.core.models import IMAGENET_NORMALIZATION, build_model
from handpose.core.types import Pose25D


def _trained(name: str, **kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_model(name, **kw)
    m.train()
    with torch.no_grad():
        m(torch.randn(4, 3, 64, 64))  # non-trivial BN statistics
    return m


@pytest.mark.parametrize("name,kw", [("posenet_resnet18", {"width": 8}),
                                     ("posenet_resnet18_heatmap",
                                      {"width": 8, "channels": 8, "num_deconv": 2})])
def test_onnx_runtime_matches_torch(tmp_path: Path, name: str, kw: dict) -> None:
    model = _trained(name, **kw)  # left in train mode on purpose
    path = export_onnx(model, tmp_path / "m.onnx", 64)
    assert model.training and model.encoder.bn1.training  # flags restored
    model.eval()
    sess = OnnxPoseNet(path, intra_op_threads=1)
    opts = sess.session.get_session_options()
    assert opts.intra_op_num_threads == 1
    spin = "session.intra_op.allow_spinning"
    assert opts.get_session_config_entry(spin) == "0"  # no busy-waiting between runs
    spinning = OnnxPoseNet(path, intra_op_threads=1, spin=True)
    assert spinning.session.get_session_options().get_session_config_entry(spin) == "1"
    for b in (1, 3):  # dynamic batch axis
        x = torch.randn(b, 3, 64, 64)
        with torch.no_grad():
            ref = model(x)
        out = sess(x.numpy())
        for k in ("uv", "z_rel", "confidence"):
            assert isinstance(out[k], np.ndarray) and out[k].shape == tuple(ref[k].shape)
            np.testing.assert_allclose(out[k], ref[k].numpy(), atol=1e-4, rtol=1e-4)
    pose = sess.predict(x)
    assert isinstance(pose, Pose25D) and isinstance(pose.uv, torch.Tensor)
    assert sess.input_size == 64 and sess.normalization == IMAGENET_NORMALIZATION
    assert sess.arch == {"name": name, "kwargs": kw}
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_export_from_checkpoint_and_errors(tmp_path: Path) -> None:
    model = _trained("posenet_resnet18", width=4).eval()
    norm = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    ckpt = save_checkpoint(tmp_path / "m.pt", model, input_size=64, normalization=norm)
    onnx_path = export_checkpoint(ckpt, tmp_path / "m.onnx")
    sess = OnnxPoseNet(onnx_path)
    assert sess.normalization == norm
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(sess(x)["uv"].numpy(), model(x)["uv"].numpy(), atol=1e-4)
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        sess(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(CheckpointError, match="PyTorch checkpoint, not an ONNX model"):
        OnnxPoseNet(ckpt)
    with pytest.raises(CheckpointError, match="probably an ONNX model"):
        load_checkpoint(onnx_path)  # the other way round
    with pytest.raises(CheckpointError, match="not found"):
        OnnxPoseNet(tmp_path / "none.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(CheckpointError, match="not a valid ONNX model"):
        OnnxPoseNet(junk)
    with pytest.raises(ValueError, match="input_size"):
        export_onnx(model, tmp_path / "x.onnx", 8)
