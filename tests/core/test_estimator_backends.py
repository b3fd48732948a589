"""Network backends (ONNX Runtime, torch) from real checkpoints, the ONNX cache, and the
estimator end to end with a random-weight network and MediaPipe's palm detector."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from handpose.core.checkpoint import save_checkpoint
from handpose.core.geometry import default_intrinsics
from handpose.core.inference.backends import (
    OnnxBackend,
    TorchBackend,
    cached_onnx,
    load_backend,
)
from handpose.core.inference.estimator import STAGES, HandPoseEstimator
from handpose.core.models.registry import build_model
from handpose.core.safe_load import CheckpointError
from handpose.core.types import Frame

SIZE = 64


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("posenet_resnet18", width=8)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", model, input_size=SIZE)


def _crops(n=3):
    return np.random.default_rng(0).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def test_onnx_and_torch_backends_agree_with_the_model(tiny_ckpt, tmp_path):
    onnx = load_backend(tiny_ckpt, "onnx", cache_dir=tmp_path)
    tch = load_backend(tiny_ckpt, "torch", device="cpu")
    assert isinstance(onnx, OnnxBackend) and isinstance(tch, TorchBackend)
    assert onnx.input_size == tch.input_size == SIZE
    a, b = onnx.run(_crops()), tch.run(_crops())
    assert a.uv.shape == (3, 21, 2) and a.z_rel.shape == (3, 21)
    np.testing.assert_allclose(a.uv, b.uv, atol=1e-3)
    np.testing.assert_allclose(a.z_rel, b.z_rel, atol=1e-4)
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
    # the torch backend normalises like normalize_images + the model itself
    from handpose.core.checkpoint import load_checkpoint
    from handpose.core.models.normalization import normalize_images

    model, meta = load_checkpoint(tiny_ckpt)
    x = normalize_images(torch.from_numpy(_crops()).permute(0, 3, 1, 2), meta.normalization)
    with torch.no_grad():
        ref = model(x)["uv"].numpy()
    np.testing.assert_allclose(b.uv, ref, atol=1e-4)


def test_onnx_export_is_cached_by_checkpoint_content(tiny_ckpt, tmp_path):
    p1 = cached_onnx(tiny_ckpt, tmp_path)
    mtime = p1.stat().st_mtime_ns
    p2 = cached_onnx(tiny_ckpt, tmp_path)
    assert p1 == p2 and p2.stat().st_mtime_ns == mtime  # not exported again
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    save_checkpoint(other, build_model("posenet_resnet18", width=8), input_size=SIZE)
    assert cached_onnx(other, tmp_path) != p1  # other weights, other file
    assert load_backend(p1, "auto").input_size == SIZE  # an .onnx file directly


def test_bad_crops_and_bad_checkpoints(tiny_ckpt, tmp_path):
    b = load_backend(tiny_ckpt, "onnx", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        b.run(_crops().astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        b.run(_crops()[:, :32])
    with pytest.raises(CheckpointError, match="not found"):
        load_backend(tmp_path / "missing.pt", cache_dir=tmp_path)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(tiny_ckpt.read_bytes()[:5000])
    with pytest.raises(CheckpointError):
        load_backend(broken, cache_dir=tmp_path)
    with pytest.raises(CheckpointError):
        HandPoseEstimator(broken, detector=_NoDetector(), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="backend"):
        load_backend(tiny_ckpt, "tensorflow")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            load_backend(tiny_ckpt, "torch", device="cuda")


class _NoDetector:
    def detect(self, rgb):
        return []


def _hgc_frames(hgc_dir, n, step=3):
    """real_eval_hgc frames upscaled 1.5x into 640x480 (centred) and their 2D labels."""
    import cv2

    xyz = np.asarray(json.loads((hgc_dir / "training_xyz.json").read_text()))
    Ks = np.asarray(json.loads((hgc_dir / "training_K.json").read_text()))
    out = []
    for i in range(0, n * step, step):
        img = cv2.imread(str(hgc_dir / "training" / "rgb" / f"{i:08d}.jpg"))[..., ::-1]
        big = cv2.resize(img, (384, 384), interpolation=cv2.INTER_LINEAR)
        rgb = np.zeros((480, 640, 3), np.uint8)
        rgb[48:432, 128:512] = big
        p = xyz[i] @ Ks[i].T
        uv = (p[:, :2] / p[:, 2:] + 0.5) * 1.5 - 0.5 + np.array([128.0, 48.0])
        out.append((rgb, uv))
    return out


def test_real_frames_through_palm_detector_and_random_network(hgc_dir, tiny_ckpt, tmp_path):
    """End to end on real frames: the palm detector finds the hand, its region covers the
    labelled joints with MediaPipe's margin and the same rotation convention as our crops,
    and every stage is timed (the random network's poses themselves are meaningless)."""
    est = HandPoseEstimator(tiny_ckpt, backend="onnx", max_hands=1, cache_dir=tmp_path,
                            min_confidence=0.0, redetect_confidence=0.0)
    frames = _hgc_frames(hgc_dir, 4)
    rgb, uv = frames[0]
    r = est.process(Frame(rgb=rgb, K=default_intrinsics(640, 480), timestamp=0.0))
    assert set(r.timings_ms) == set(STAGES) and r.timings_ms["detect"] > 0
    assert len(r.hands) == 1 and r.hands[0].joints.shape == (21, 3)
    det = est.detector.detect(rgb)[0]
    c = np.asarray(det.center)
    box = uv.max(0) - uv.min(0)
    assert np.linalg.norm(c - (uv.max(0) + uv.min(0)) / 2) < 0.25 * box.max()
    assert 1.1 < max(det.size) / box.max() < 2.2  # MediaPipe's region ~1.4x the keypoints
    est.close()
    # the detector's rotation is the keypoints' upright rotation (same convention)
    from handpose.core.inference.tracker import upright_rotation

    d = (det.rotation - upright_rotation(uv) + np.pi) % (2 * np.pi) - np.pi
    assert abs(d) < np.radians(25)
