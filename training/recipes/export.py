"""Export a PoseNet checkpoint to ONNX and check ONNX Runtime against PyTorch.

``handpose-train export checkpoint=RUN/model.pt --onnx`` writes ``model.onnx`` (dynamic batch,
metadata: input size, normalisation, architecture) with
:func:`handpose.core.export.export_onnx`, then runs the torch model and ONNX Runtime on the
same random normalised batch and reports the largest absolute difference per output; the
export fails when it exceeds ``tolerance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from handpose.core.checkpoint import load_checkpoint
from handpose.core.export import DEFAULT_OPSET, OnnxPoseNet, export_onnx

from ..config import ConfigError, input_path
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
    """

    checkpoint: str = input_path("", doc="the model to export")
    out: str = ""
    onnx: bool = True
    output: str = ""
    opset: int = DEFAULT_OPSET
    check_batch: int = 2
    tolerance: float = 1e-4

    def __post_init__(self) -> None:
        if self.check_batch < 0 or not self.tolerance > 0:
            raise ValueError("check_batch must be >= 0 and tolerance > 0")


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


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Export; returns the file and the torch/ONNX Runtime differences."""
    if not cfg.onnx:
        raise ValueError("nothing to export: set onnx=true (--onnx)")
    path = resolve_model_file(cfg.checkpoint, "checkpoint")
    model, meta = load_checkpoint(path)
    dest = Path(cfg.output) if cfg.output else run_dir / "model.onnx"
    export_onnx(model, dest, meta.input_size, cfg.opset, meta.normalization, meta.arch)
    out: dict[str, Any] = {"onnx": str(dest)}
    if cfg.check_batch:
        diff = compare_onnx(model, dest, cfg.check_batch)
        out["max_abs_diff"] = diff
        worst = max(diff.values())
        if not worst <= cfg.tolerance:
            raise ValueError(f"ONNX Runtime differs from torch by {worst:.3g} > tolerance "
                             f"{cfg.tolerance} ({diff}); the export is not faithful")
    return out
