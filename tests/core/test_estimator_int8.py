"""Precision of the network runner: the shipped int8 model in "auto" mode (only when it was
made from this checkpoint), "int8" quantizing once and caching, "fp32", and the errors."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from handpose.core.checkpoint import save_checkpoint
from handpose.core.export import export_checkpoint, file_sha256, quantize_onnx
from handpose.core.inference.backends import (
    cached_int8,
    check_int8_file,
    int8_path_for,
    load_backend,
)
from handpose.core.inference.estimator import HandPoseEstimator
from handpose.core.models.registry import build_model
from handpose.core.safe_load import CheckpointError

SIZE = 64


class _NoDetector:
    def detect(self, rgb: np.ndarray) -> list:
        return []


def _calibration(n: int = 8) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"rgb": rng.integers(0, 256, (3, SIZE, SIZE), dtype=np.uint8)} for _ in range(n)]


def _checkpoint(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    return save_checkpoint(path, build_model("posenet_resnet18", width=4), input_size=SIZE)


@pytest.fixture()
def shipped(tmp_path: Path) -> Path:
    """default.pt with a matching default.int8.onnx next to it."""
    ckpt = _checkpoint(tmp_path / "default.pt", 0)
    fp = export_checkpoint(ckpt, tmp_path / "build" / "default.onnx")
    quantize_onnx(fp, int8_path_for(ckpt), _calibration())
    assert int8_path_for(ckpt) == tmp_path / "default.int8.onnx"
    return ckpt


def test_auto_uses_the_matching_shipped_int8_model(shipped: Path, tmp_path: Path) -> None:
    est = HandPoseEstimator(shipped, detector=_NoDetector(), cache_dir=tmp_path / "cache")
    assert est.backend.precision == "int8" and est.backend.path == tmp_path / "default.int8.onnx"
    assert est.backend.name == "onnxruntime cpu int8"
    crops = np.random.default_rng(1).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    pose = est.backend.run(crops)
    assert pose.uv.shape == (2, 21, 2) and np.all(np.isfinite(pose.uv))
    fp32 = load_backend(shipped, precision="fp32", cache_dir=tmp_path / "cache")
    assert fp32.precision == "fp32" and fp32.path.parent == tmp_path / "cache" / "onnx"
    assert not (tmp_path / "cache" / "onnx" / f"{file_sha256(shipped)}-op17.int8.onnx").exists()
    assert load_backend(shipped, precision="int8").path == est.backend.path  # no re-quantizing


def test_a_mismatched_int8_file_is_refused(shipped: Path, tmp_path: Path) -> None:
    other = _checkpoint(tmp_path / "other" / "default.pt", 1)  # other weights, same name
    shutil.copy(int8_path_for(shipped), int8_path_for(other))
    why = check_int8_file(int8_path_for(other), file_sha256(other))
    assert why is not None and "another checkpoint" in why
    with pytest.warns(UserWarning, match="another checkpoint"):
        b = load_backend(other, cache_dir=tmp_path / "cache")
    assert b.precision == "fp32"
    with pytest.warns(UserWarning, match="another checkpoint"), \
            pytest.raises(CheckpointError, match=r"calibration=.*handpose-train export"):
        load_backend(other, precision="int8", cache_dir=tmp_path / "cache")
    # a float model in the int8 file's place is no int8 model either
    export_checkpoint(other, int8_path_for(other))
    assert "not an int8 model" in str(check_int8_file(int8_path_for(other), file_sha256(other)))


def test_int8_without_a_shipped_file_quantizes_once_and_caches(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "m.pt", 2)
    cache = tmp_path / "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no int8 file next to it: nothing to warn about
        with pytest.raises(CheckpointError, match="no valid m.int8.onnx"):
            HandPoseEstimator(ckpt, precision="int8", detector=_NoDetector(), cache_dir=cache)
        assert load_backend(ckpt, cache_dir=cache).precision == "fp32"  # auto: nothing shipped
    est = HandPoseEstimator(ckpt, precision="int8", calibration=_calibration(),
                            detector=_NoDetector(), cache_dir=cache)
    path = est.backend.path
    assert est.backend.precision == "int8" and path == cache / "onnx" / (
        f"{file_sha256(ckpt)}-op17.int8.onnx")
    stamp = path.stat().st_mtime_ns
    assert cached_int8(ckpt, cache_dir=cache) == path and path.stat().st_mtime_ns == stamp
    assert load_backend(path).precision == "int8"  # the .onnx file directly


def test_precision_errors(shipped: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        load_backend(shipped, precision="int4")
    with pytest.raises(ValueError, match="ONNX Runtime on the CPU"):
        load_backend(shipped, backend="torch", precision="int8")
    with pytest.raises(ValueError, match="default.int8.onnx is int8"):
        load_backend(int8_path_for(shipped), precision="fp32")
    fp = tmp_path / "build" / "default.onnx"
    with pytest.raises(ValueError, match="default.onnx is fp32"):
        load_backend(fp, precision="int8")
    tb = load_backend(shipped, backend="torch", device="cpu", precision="auto")
    assert tb.name == "torch cpu"  # auto with torch: the checkpoint itself
