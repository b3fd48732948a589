"""Checkpoints: round trip, fp16 shipping, atomic writes, and one test per failure mode."""

from __future__ import annotations

import pathlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from handpose.core.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    model_card,
    read_checkpoint_meta,
    save_checkpoint,
)
from handpose.core.models import IMAGENET_NORMALIZATION, build_model


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_model("posenet_resnet18", width=4)
    m.train()
    with torch.no_grad():
        m(torch.randn(4, 3, 32, 32))  # non-trivial BN running statistics
    return m.eval()


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    m = _model()
    path = save_checkpoint(tmp_path / "run" / "model.pt", m, input_size=32,
                           training={"recipe": "finetune", "config": {"lr": 1e-3,
                                     "out": tmp_path}, "data": "freihand", "steps": 120},
                           metrics={"epe_mm": np.float64(12.5), "auc": torch.tensor(0.8)})
    return path, m


def test_round_trip(saved: tuple[Path, torch.nn.Module]) -> None:
    path, m = saved
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == FORMAT_VERSION and raw["arch"]["name"] == "posenet_resnet18"
    assert raw["training"]["config"]["out"] == str(path.parent.parent)
    model, meta = load_checkpoint(path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x)["uv"], m(x)["uv"])
    assert not model.training
    assert meta.input_size == 32 and meta.arch == {"name": "posenet_resnet18",
                                                   "kwargs": {"width": 4}}
    assert meta.normalization == IMAGENET_NORMALIZATION and meta.reference_bone == (9, 10)
    assert meta.metrics == {"epe_mm": 12.5, "auc": pytest.approx(0.8)}
    assert meta.training["steps"] == 120 and meta.dtype == "float32"
    assert read_checkpoint_meta(path) == meta
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left
    card = model_card(meta)
    assert "posenet_resnet18 (width=4)" in card and "recipe finetune, 120 steps" in card
    assert "epe_mm=12.5" in card and "32 x 32 px" in card


def test_float16_shipping_halves_the_file(tmp_path: Path) -> None:
    m = _model()
    full = save_checkpoint(tmp_path / "a.pt", m, input_size=32)
    half = save_checkpoint(tmp_path / "b.pt", m, input_size=32, dtype="float16")
    assert half.stat().st_size < 0.6 * full.stat().st_size
    model, meta = load_checkpoint(half)
    assert meta.dtype == "float16" and model.encoder.conv1.weight.dtype == torch.float32
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x)["uv"], m(x)["uv"], atol=0.05)


def test_save_rejects_bad_arguments(tmp_path: Path) -> None:
    m = _model()
    with pytest.raises(ValueError, match=r"training\['cb'\] must be plain data"):
        save_checkpoint(tmp_path / "x.pt", m, training={"cb": object()})
    with pytest.raises(ValueError, match="arch must be"):
        save_checkpoint(tmp_path / "x.pt", m, arch={"name": "nope", "kwargs": {}})
    with pytest.raises(ValueError, match="build_model"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))
    assert not (tmp_path / "x.pt").exists()


def _mutate(path: Path, out: Path, **changes: object) -> Path:
    ck = torch.load(path, weights_only=True)
    for k, v in changes.items():
        if v is None:
            del ck[k]
        else:
            ck[k] = v
    torch.save(ck, out)
    return out


def test_file_level_failures(tmp_path: Path, saved: tuple[Path, torch.nn.Module]) -> None:
    path, _ = saved
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    jpg = tmp_path / "photo.pt"
    ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    jpg.write_bytes(buf.tobytes())
    with pytest.raises(CheckpointError, match="is a JPEG image, not a PyTorch"):
        load_checkpoint(jpg)
    txt = tmp_path / "notes.pt"
    txt.write_text("epochs: 10\n")
    with pytest.raises(CheckpointError, match="is a text file"):
        load_checkpoint(txt)
    data = path.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(trunc)
    bad = bytearray(data)
    mid = len(bad) // 2
    bad[mid:mid + 64] = bytes(64)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(bad))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(corrupt)
    with pytest.raises(CheckpointError, match="directory"):
        load_checkpoint(tmp_path)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (pathlib.Path.touch, (self.marker,))  # harmless, but code all the same


def test_code_in_a_pickle_is_refused(tmp_path: Path, saved: tuple[Path, torch.nn.Module]
                                     ) -> None:
    marker = tmp_path / "pwned"
    evil = _mutate(saved[0], tmp_path / "evil.pt", training=_Evil(marker))
    with pytest.raises(CheckpointError, match="refusing to execute code from an untrusted"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_content_failures(tmp_path: Path, saved: tuple[Path, torch.nn.Module]) -> None:
    path, _ = saved
    cases = {
        "missing entries \\['arch'\\]": {"arch": None},
        "unknown model architecture 'posenet_vit9'": {
            "arch": {"name": "posenet_vit9", "kwargs": {}}},
        "newer handpose .*upgrade": {"format_version": FORMAT_VERSION + 1},
        "'input_size' must be a positive int": {"input_size": -3},
        "normalization\\['std'\\]": {"normalization": {"mean": [0, 0, 0], "std": [0, 1, 1]}},
        "reference_bone \\[0, 9\\]": {"reference_bone": [0, 9]},
        "unknown joint_order": {"joint_order": "coco"},
        r"parameter 'encoder.conv1.weight' has shape \(4, 3, 7, 7\) in the file but "
        r"posenet_resnet18 \{'width': 8\} needs \(8, 3, 7, 7\)": {
            "arch": {"name": "posenet_resnet18", "kwargs": {"width": 8}}},
        "cannot build": {"arch": {"name": "posenet_resnet18", "kwargs": {"depth": 3}}},
    }
    for i, (msg, change) in enumerate(cases.items()):
        bad = _mutate(path, tmp_path / f"bad{i}.pt", **change)
        with pytest.raises(CheckpointError, match=msg):
            load_checkpoint(bad)
    ck = torch.load(path, weights_only=True)
    del ck["state_dict"]["head.pose.bias"]
    torch.save(ck, tmp_path / "lost.pt")
    with pytest.raises(CheckpointError, match=r"missing \['head.pose.bias'\]"):
        load_checkpoint(tmp_path / "lost.pt")
    ck = torch.load(path, weights_only=True)
    ck["state_dict"]["head.pose.bias"][0] = float("nan")
    torch.save(ck, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(tmp_path / "nan.pt")
    torch.save(_model().state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="import_peclr_weights"):
        load_checkpoint(tmp_path / "bare.pt")
    assert issubclass(CheckpointError, ValueError)
