"""int8 quantization of an exported PoseNet: outputs track the float model, metadata, errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from handpose.core.checkpoint import save_checkpoint
from handpose.core.export import (
    OnnxPoseNet,
    export_checkpoint,
    export_onnx,
    file_sha256,
    quantize_onnx,
)
from handpose.core.models import build_model
from handpose.core.models.normalization import normalize_images
from handpose.core.safe_load import CheckpointError

SIZE = 64


def _crops(n: int, seed: int) -> np.ndarray:
    """(n, 3, S, S) uint8 smooth random images (blobs of colour, not pixel noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 8, 8, 3)).astype(np.uint8)
    return np.stack([cv2.resize(s, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
                     for s in small]).transpose(0, 3, 1, 2)


@pytest.fixture(scope="module")
def fp32(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny PoseNet with non-trivial BN statistics: its checkpoint and fp32 export."""
    torch.manual_seed(0)
    model = build_model("posenet_resnet18", width=8)
    model.train()
    with torch.no_grad():
        model(normalize_images(torch.from_numpy(_crops(32, 5))))
    model.eval()
    d = tmp_path_factory.mktemp("int8")
    ckpt = save_checkpoint(d / "m.pt", model, input_size=SIZE)
    return ckpt, export_checkpoint(ckpt, d / "m.onnx")


def _noise_to_signal(ref: dict, got: dict) -> dict[str, float]:
    """RMS(int8 - fp32) / RMS spread of the fp32 output over the crops, per output."""
    out = {}
    for k in ref:
        x = np.asarray(ref[k]).reshape(len(ref[k]), -1)
        y = np.asarray(got[k]).reshape(len(got[k]), -1)
        spread = np.sqrt(((x - x.mean(0)) ** 2).mean())
        out[k] = float(np.sqrt(((x - y) ** 2).mean()) / spread)
    return out


def test_int8_tracks_fp32_and_records_its_source(fp32: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, fp = fp32
    calibration = [{"rgb": c} for c in _crops(64, 1)]  # a Dataset-like list of uint8 samples
    q = quantize_onnx(fp, tmp_path / "m.int8.onnx", calibration, checkpoint=ckpt)
    s32, s8 = OnnxPoseNet(fp), OnnxPoseNet(q)
    assert (s32.precision, s8.precision) == ("fp32", "int8")
    assert s8.source_sha256 == s32.source_sha256 == file_sha256(ckpt)
    assert s8.input_size == SIZE and s8.normalization == s32.normalization
    info = s8.metadata["quantization"]
    assert info["method"] == "minmax" and info["per_channel"] and info["calibration_crops"] == 64
    # the convolutions are quantized, the head after the pooled features is not
    graph = onnx.load(str(q)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("DequantizeLinear") >= 20 and "Gemm" in ops
    deq_out = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    assert not any(i in deq_out for n in graph.node if n.op_type == "Gemm" for i in n.input)
    # Tolerance. 8-bit activations over their calibrated min-max range round each value by at
    # most half a step (range / 510); through ~20 quantized layers of an 8-channel net this
    # measures ~0.13 of the signal (the spread of the fp32 outputs over the crops) on held-out
    # crops. Bound 0.25 (SQNR >= 12 dB): 2x margin, and a quantization with wrong activation
    # ranges (below) is > 1.
    x = normalize_images(torch.from_numpy(_crops(64, 2))).numpy()
    ref = s32(x)
    ratio = _noise_to_signal(ref, s8(x))
    assert max(ratio.values()) < 0.25, ratio
    # the same crops as normalised float batches give the very same int8 model
    cal_x = normalize_images(torch.from_numpy(_crops(64, 1))).numpy()
    q2 = quantize_onnx(fp, tmp_path / "b.int8.onnx", [cal_x[:40], cal_x[40:]])
    again = OnnxPoseNet(q2)(x)
    for k in ref:
        np.testing.assert_array_equal(again[k], s8(x)[k])
    assert OnnxPoseNet(q2).source_sha256 == file_sha256(ckpt)  # inherited from the fp32 file
    # negative control: activation ranges from crops 20x too faint clip every layer
    bad = quantize_onnx(fp, tmp_path / "bad.int8.onnx", cal_x * 0.05)
    assert min(_noise_to_signal(ref, OnnxPoseNet(bad)(x)).values()) > 1.0


def test_quantize_refuses_bad_input(fp32: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, fp = fp32
    good = normalize_images(torch.from_numpy(_crops(4, 3))).numpy()
    q = quantize_onnx(fp, tmp_path / "q.onnx", good, limit=3)
    assert OnnxPoseNet(q).metadata["quantization"]["calibration_crops"] == 3
    with pytest.raises(ValueError, match="already int8"):
        quantize_onnx(q, tmp_path / "qq.onnx", good)
    with pytest.raises(ValueError, match="method"):
        quantize_onnx(fp, tmp_path / "x.onnx", good, method="kl")
    with pytest.raises(ValueError, match="no crops"):
        quantize_onnx(fp, tmp_path / "x.onnx", [])
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        quantize_onnx(fp, tmp_path / "x.onnx", [good[:, :, :32]])
    with pytest.raises(ValueError, match="normalise uint8 crops first"):
        quantize_onnx(fp, tmp_path / "x.onnx", [_crops(2, 0)])
    with pytest.raises(ValueError, match=r"shape \(3, 64, 64\)"):
        quantize_onnx(fp, tmp_path / "x.onnx", [{"rgb": _crops(1, 0)[0, :, :32]}])
    with pytest.raises(CheckpointError, match="not found"):
        quantize_onnx(tmp_path / "none.onnx", tmp_path / "x.onnx", good)
    # an export that does not name its checkpoint needs checkpoint=
    model = build_model("posenet_resnet18", width=4).eval()
    anonymous = export_onnx(model, tmp_path / "anon.onnx", SIZE)
    assert OnnxPoseNet(anonymous).source_sha256 is None
    with pytest.raises(ValueError, match="checkpoint=PATH"):
        quantize_onnx(anonymous, tmp_path / "x.onnx", good)
    assert not (tmp_path / "x.onnx").exists()
