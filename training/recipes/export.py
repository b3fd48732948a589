"""Export a PoseNet checkpoint to ONNX and check ONNX Runtime against PyTorch.

``handpose-train export checkpoint=RUN/model.pt --onnx`` writes ``model.onnx`` (dynamic batch,
metadata: input size, normalisation, architecture) with
:func:`handpose.core.export.export_onnx`, then runs the torch model and ONNX Runtime on the
same random normalised batch and reports the largest absolute difference per output; the
export fails when it exceeds ``tolerance``.

``int8=true calib.root=DIR`` also writes the statically quantized model
(:func:`handpose.core.export.quantize_onnx`) as ``<checkpoint stem>.int8.onnx`` next to the
checkpoint, where :class:`~handpose.core.inference.estimator.HandPoseEstimator` picks it up
(``precision="auto"``). Its activation ranges are calibrated on ``calib.limit`` hand crops of a
labelled set (FreiHAND layout, synthetic or a session), cut upright like the tracker cuts them;
the int8 model's mean 2D distance to the float32 model's on those crops is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handpose.core.checkpoint import load_checkpoint
from handpose.core.export import (
    CALIBRATION_METHODS,
    DEFAULT_OPSET,
    OnnxPoseNet,
    export_onnx,
    file_sha256,
    quantize_onnx,
)
from handpose.core.inference.backends import int8_path_for
from handpose.core.models import normalize_images

from ..config import ConfigError, input_path
from .data import LabelledData, labelled_dataset, require_path
from .models import resolve_model_file

__all__ = ["check", "Config", "compare_onnx", "run"]


@dataclass(frozen=True)
class Config:
    """``handpose-train export``.

    Attributes:
        checkpoint: a PoseNet ``model.pt`` or its run folder.
        out: run folder ("" = runs/export-<time>).
        onnx: write the ONNX model (the only export format so far; ``--onnx``).
        output: the .onnx path ("" = ``<run>/model.onnx``).
        opset: ONNX opset.
        check_batch: batch size of the torch/ONNX Runtime comparison (0 = no comparison).
        tolerance: the largest accepted |torch - onnxruntime| of any output.
        int8: also write the int8 model (needs ``calib.root``).
        int8_output: its path ("" = ``<checkpoint dir>/<stem>.int8.onnx``, where the
            estimator finds it).
        calib: the labelled hand crops to calibrate on (``calib.limit`` of them; upright).
        calib_method: "minmax", "entropy" or "percentile" (ONNX Runtime calibrators).
    """

    checkpoint: str = input_path("", doc="the model to export")
    out: str = ""
    onnx: bool = True
    output: str = ""
    opset: int = DEFAULT_OPSET
    check_batch: int = 2
    tolerance: float = 1e-4
    int8: bool = False
    int8_output: str = ""
    calib: LabelledData = field(default_factory=lambda: LabelledData(limit=256, upright=True))
    calib_method: str = "minmax"

    def __post_init__(self) -> None:
        if self.check_batch < 0 or not self.tolerance > 0:
            raise ValueError("check_batch must be >= 0 and tolerance > 0")
        if self.calib_method not in CALIBRATION_METHODS:
            raise ValueError(f"calib_method must be one of {CALIBRATION_METHODS}; "
                             f"got {self.calib_method!r}")


@torch.no_grad()
def compare_onnx(model: torch.nn.Module, onnx_path: Path, batch: int, seed: int = 0
                 ) -> dict[str, float]:
    """Max |torch - ONNX Runtime| per output on a random normalised batch."""
    session = OnnxPoseNet(onnx_path)
    s = session.input_size
    x = torch.randn(batch, 3, s, s, generator=torch.Generator().manual_seed(seed))
    was = model.training
    model.eval()
    try:
        ref = model(x)
    finally:
        model.train(was)
    got = session(x)
    return {k: float((ref[k].float() - got[k]).abs().max()) for k in got}


def check(cfg: Config) -> None:
    """The checkpoint must be given."""
    if not cfg.checkpoint:
        raise ConfigError("checkpoint is not set: give checkpoint=RUN_DIR/model.pt")
    resolve_model_file(cfg.checkpoint, "checkpoint")
    if cfg.int8:
        require_path(cfg.calib.root, "calib.root")


def int8_agreement(fp32: Path, int8: Path, crops: list[np.ndarray]) -> dict[str, float]:
    """Mean and largest |uv_int8 - uv_fp32| (crop pixels) over normalised crop batches."""
    a, b = OnnxPoseNet(fp32), OnnxPoseNet(int8)
    d = np.concatenate([np.linalg.norm(a(x)["uv"] - b(x)["uv"], axis=-1).ravel() for x in crops])
    return {"uv_mean_px": float(d.mean()), "uv_max_px": float(d.max())}


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Export; returns the file and the torch/ONNX Runtime differences."""
    if not cfg.onnx:
        raise ValueError("nothing to export: set onnx=true (--onnx)")
    path = resolve_model_file(cfg.checkpoint, "checkpoint")
    model, meta = load_checkpoint(path)
    dest = Path(cfg.output) if cfg.output else run_dir / "model.onnx"
    sha = file_sha256(path)
    export_onnx(model, dest, meta.input_size, cfg.opset, meta.normalization, meta.arch,
                source_sha256=sha)
    out: dict[str, Any] = {"onnx": str(dest)}
    if cfg.check_batch:
        diff = compare_onnx(model, dest, cfg.check_batch)
        out["max_abs_diff"] = diff
        worst = max(diff.values())
        if not worst <= cfg.tolerance:
            raise ValueError(f"ONNX Runtime differs from torch by {worst:.3g} > tolerance "
                             f"{cfg.tolerance} ({diff}); the export is not faithful")
    if cfg.int8:
        out.update(_write_int8(cfg, path, dest, meta.input_size, meta.normalization))
    return out


def _write_int8(cfg: Config, checkpoint: Path, fp32: Path, size: int,
                normalization: Mapping[str, Any]) -> dict[str, Any]:
    """Quantize ``fp32`` on crops of ``cfg.calib``; the file and its agreement with fp32."""
    data = labelled_dataset(cfg.calib, crop_size=size, key="calib.root")
    target = Path(cfg.int8_output) if cfg.int8_output else int8_path_for(checkpoint)
    quantize_onnx(fp32, target, data, checkpoint=checkpoint, method=cfg.calib_method,
                  limit=cfg.calib.limit or len(data))  # type: ignore[arg-type]
    n = min(len(data), 64)  # type: ignore[arg-type]
    rgb = torch.stack([torch.as_tensor(data[i]["rgb"]) for i in range(n)])
    x = normalize_images(rgb, normalization).numpy()
    crops = [x[i:i + 16] for i in range(0, n, 16)]
    agreement = int8_agreement(fp32, target, crops)
    print(f"int8 model {target}: uv vs float32 on {n} calibration crops: mean "
          f"{agreement['uv_mean_px']:.2f} px, max {agreement['uv_max_px']:.2f} px "
          f"(crop {size} px)")
    return {"int8": str(target), "int8_vs_fp32": agreement}
