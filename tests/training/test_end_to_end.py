"""Acceptance: pretrain (PeCLR and SimCLR) -> finetune -> eval -> export ONNX, through the CLI.

Tiny models (width-8 ResNet-18, 64 px) on tiny generated data; the whole chain runs in
seconds and must stay under a minute.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from training_data import write_freihand, write_image_folder

from handpose.core.checkpoint import load_checkpoint
from handpose.core.export import OnnxPoseNet, file_sha256
from handpose.core.inference.backends import load_backend
from handpose.core.models import normalize_images
from handpose.training.cli import main
from handpose.training.recipes.data import LabelledData, labelled_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(*argv: str) -> None:
    assert main([*argv, "--preset", "tiny"]) == 0, argv


def test_pretrain_finetune_eval_export_chain(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    fh = write_freihand(tmp_path / "fh", n=16, size=96)
    imgs = write_image_folder(tmp_path / "imgs", n=16)
    for method in ("peclr", "simclr"):
        _run("pretrain", "--method", method, f"data.root={imgs}", f"out={tmp_path / method}")
        model, meta = load_checkpoint(tmp_path / method / "model.pt")
        assert meta.arch["name"] == "simclr_resnet18" and meta.arch["kwargs"]["width"] == 8
        assert meta.training["recipe"] == f"pretrain/{method}"
    # different objectives from the same seed and data: different weights
    a = load_checkpoint(tmp_path / "peclr" / "model.pt").model.state_dict()
    b = load_checkpoint(tmp_path / "simclr" / "model.pt").model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())

    ft = tmp_path / "ft"
    _run("finetune", f"data.root={fh}", f"val.root={fh}", f"init={tmp_path / 'peclr'}",
         f"out={ft}", "train.image_every=3")
    model, meta = load_checkpoint(ft / "model.pt")
    assert meta.arch["name"] == "posenet_resnet18" and meta.input_size == 64
    assert {"epe_mm", "pa_epe_mm", "auc", "epe_2d_px", "pck_2d@0.2"} <= set(meta.metrics)
    assert list((ft / "tb").iterdir()), "TensorBoard events written"

    ev = tmp_path / "ev"
    _run("eval", f"data.root={fh}", f"checkpoint={ft}", f"out={ev}")
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["num_samples"] == 16 and metrics["epe_mm"] > 0
    assert 0 <= metrics["pck_2d@0.2"] <= 1 and 0 <= metrics["auc"] <= 1
    # the finetune run's final validation is the same evaluation of the same model
    assert metrics["epe_mm"] == pytest.approx(meta.metrics["epe_mm"], rel=1e-5)
    xyz, verts = json.loads((ev / "pred.json").read_text())
    assert np.asarray(xyz).shape == (16, 21, 3) and verts == []

    ex = tmp_path / "ex"
    _run("export", "--onnx", f"checkpoint={ft / 'model.pt'}", f"out={ex}")
    result = json.loads((ex / "result.json").read_text())
    assert max(result["max_abs_diff"].values()) <= 1e-4
    # ONNX Runtime on real crops equals torch within 1e-4
    session = OnnxPoseNet(ex / "model.onnx")
    crops = labelled_dataset(LabelledData(root=str(fh)), crop_size=64)
    x = normalize_images(torch.stack([crops[i]["rgb"] for i in range(4)]))
    with torch.no_grad():
        ref = model(x)
    got = session(x)
    for k in ("uv", "z_rel", "confidence"):
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=1e-4)
    # int8: written next to the checkpoint, named for it, close to the float32 model
    assert main(["export", f"checkpoint={ft / 'model.pt'}", f"out={tmp_path / 'ex8bad'}",
                 "int8=true", "--preset", "tiny"]) == 2  # no calibration data: a usage error
    assert not (ft / "model.int8.onnx").exists()
    _run("export", f"checkpoint={ft / 'model.pt'}", f"out={tmp_path / 'ex8'}", "int8=true",
         f"calib.root={fh}", "calib.limit=8")
    result = json.loads((tmp_path / "ex8" / "result.json").read_text())
    int8 = OnnxPoseNet(ft / "model.int8.onnx")
    assert result["int8"] == str(ft / "model.int8.onnx") and int8.precision == "int8"
    assert int8.source_sha256 == file_sha256(ft / "model.pt")
    assert int8.metadata["quantization"]["calibration_crops"] == 8
    assert 0 <= result["int8_vs_fp32"]["uv_mean_px"] < 64 / 4
    assert load_backend(ft / "model.pt").precision == "int8"  # the estimator's auto choice
    assert time.perf_counter() - t0 < 60


def test_frozen_encoder_probe_keeps_the_pretrained_encoder(tmp_path: Path) -> None:
    fh = write_freihand(tmp_path / "fh", n=8, size=96)
    imgs = write_image_folder(tmp_path / "imgs", n=8)
    _run("pretrain", f"data.root={imgs}", f"out={tmp_path / 'pre'}")
    _run("finetune", f"data.root={fh}", f"init={tmp_path / 'pre' / 'model.pt'}",
         "freeze_encoder=true", "head_hidden=16", "data.fraction=0.5", "train.batch_size=4",
         f"out={tmp_path / 'probe'}")
    pre = load_checkpoint(tmp_path / "pre" / "model.pt").model.encoder.state_dict()
    probe = load_checkpoint(tmp_path / "probe" / "model.pt").model
    for k, v in probe.encoder.state_dict().items():  # weights and BN statistics
        assert torch.equal(v, pre[k]), k
    assert probe.head.trunk[0].out_features == 16  # the 2-layer MLP head


def test_pretrain_on_the_real_hands_folder(real_hands_dir: Path, tmp_path: Path) -> None:
    _run("pretrain", f"data.root={real_hands_dir}", "data.limit=16", f"out={tmp_path}")
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(x["train/loss"]) for x in lines if "train/loss" in x)
    # the views' augmentation time is logged (benchmarks/training.py reads it)
    assert all(x["train/aug_ms"] > 0 for x in lines if "train/loss" in x)


def test_pretrain_mixes_an_extra_source(tmp_path: Path) -> None:
    """Synthetic labelled crops (keypoint-centred) and real photos (boxes) in one batch."""
    fh = write_freihand(tmp_path / "fh", n=8, size=96)
    imgs = write_image_folder(tmp_path / "imgs", n=8)
    _run("pretrain", f"data.root={imgs}", f"extra.root={fh}", "extra.format=freihand",
         f"out={tmp_path / 'run'}")
    _, meta = load_checkpoint(tmp_path / "run" / "model.pt")
    assert meta.training["data"] == [str(imgs), str(fh)]
    assert main(["pretrain", "--preset", "tiny", f"data.root={imgs}",
                 f"extra.root={tmp_path / 'nope'}", f"out={tmp_path / 'bad'}"]) == 2
    assert not (tmp_path / "bad").exists()
