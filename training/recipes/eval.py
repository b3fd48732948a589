"""Evaluate a PoseNet checkpoint on a labelled set: EPE, PA-EPE, AUC, 2D EPE, PCK@0.2.

The images are cut as hand crops around the ground-truth keypoints (the FreiHAND evaluation
protocol of PeCLR), the network's 2.5D output is lifted to 3D with the crop's K and the
ground-truth reference bone length (or a fixed ``scale_m``), and compared with
:func:`handpose.core.metrics.summarize`. 2D errors are in pixels of the original images.
Writes ``metrics.json``, a FreiHAND-style ``pred.json`` (``[xyz, verts]``, xyz (N, 21, 3)
metres; ``verts`` empty: no mesh is predicted) and prints a table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from handpose.core.checkpoint import load_checkpoint
from handpose.core.data.sample import collate
from handpose.core.geometry.crop import uncrop_points
from handpose.core.inference.handedness import chirality_margin
from handpose.core.losses.pose import lift_prediction
from handpose.core.metrics import summarize
from handpose.core.models import IMAGENET_NORMALIZATION, normalize_images

from ..config import ConfigError, input_path
from ..distributed import pick_device
from .data import LabelledData, labelled_dataset, require_path
from .models import resolve_model_file

__all__ = ["check", "Config", "Predictions", "predict", "evaluate_model", "format_table", "run"]


@dataclass(frozen=True)
class Config:
    """``handpose-train eval``.

    Attributes:
        checkpoint: a PoseNet ``model.pt`` (e.g. of a finetune run) or its run folder.
        out: run folder ("" = runs/eval-<time>).
        batch_size: images per forward pass. device: "auto", "cpu", "cuda", "mps".
        scale_m: metric scale for lifting: 0 = each sample's ground-truth reference bone
            (the benchmark protocol), else this bone length in metres.
        num_workers: DataLoader workers.
    """

    checkpoint: str = input_path("", doc="the model to evaluate")
    out: str = ""
    data: LabelledData = field(default_factory=LabelledData)
    batch_size: int = 32
    device: str = "auto"
    scale_m: float = 0.0
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.scale_m < 0 or self.num_workers < 0:
            raise ValueError("batch_size >= 1, scale_m >= 0 and num_workers >= 0 needed")


@dataclass
class Predictions:
    """Per-sample results (numpy): 3D metres, 2D pixels of the original images."""

    xyz: np.ndarray  # (N, 21, 3)
    xyz_gt: np.ndarray  # (N, 21, 3)
    uv: np.ndarray  # (N, 21, 2)
    uv_gt: np.ndarray  # (N, 21, 2)
    index: np.ndarray  # (N,) dataset indices


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: Dataset[Any],
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    normalization: dict[str, Any] | None = None,
    scale_m: float = 0.0,
    num_workers: int = 0,
    mirror_left: bool = False,
) -> Predictions:
    """Run a PoseNet over hand crops of a labelled dataset and lift its output to 3D.

    Args:
        model: a PoseNet (its train/eval mode is restored afterwards).
        dataset: crops with ``rgb``, ``K``, ``uv``, ``joints3d``, ``scale``, ``crop_affine``.
        batch_size: images per forward pass.
        device: where to run.
        normalization: the network's input normalisation (ImageNet by default).
        scale_m: 0 = ground-truth reference bone per sample, else a fixed length (metres).
        mirror_left: show the network left hands (by the chirality of the ground-truth
            joints) mirrored and mirror its keypoints back, as the tracker does once a track's
            handedness vote says left (``HandPoseEstimator(mirror_left=True)``).
    """
    dev = torch.device(device)
    was = model.training
    model.eval()
    norm = normalization or IMAGENET_NORMALIZATION
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
                        num_workers=num_workers)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("xyz", "xyz_gt", "uv", "uv_gt", "i")}
    try:
        for batch in loader:
            for key in ("uv", "joints3d", "K", "crop_affine"):
                if key not in batch:
                    raise ValueError(f"the evaluation set has no {key!r} (a labelled set, read "
                                     "with crop_size, is needed)")
            images = normalize_images(batch["rgb"].to(dev), norm)
            left = torch.zeros(len(images), dtype=torch.bool)
            if mirror_left:
                left = torch.as_tensor(np.asarray(
                    chirality_margin(batch["joints3d"].double().numpy())) < 0)
                images = torch.where(left.to(dev)[:, None, None, None],
                                     torch.flip(images, dims=[3]), images)
            out = model(images)
            uv = out["uv"].float().cpu()
            uv[left, :, 0] = images.shape[3] - 1 - uv[left, :, 0]
            scale = batch["scale"] if scale_m == 0 else torch.full_like(batch["scale"], scale_m)
            xyz = lift_prediction(uv, out["z_rel"].float().cpu(), batch["K"], scale,
                                  getattr(model, "root_refiner", None))
            A = batch["crop_affine"]
            parts["xyz"].append(xyz.numpy())
            parts["xyz_gt"].append(batch["joints3d"].numpy())
            parts["uv"].append(np.asarray(uncrop_points(A, uv)))
            parts["uv_gt"].append(np.asarray(uncrop_points(A, batch["uv"])))
            parts["i"].append(batch["index"].numpy())
    finally:
        model.train(was)
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return Predictions(cat["xyz"], cat["xyz_gt"], cat["uv"], cat["uv_gt"], cat["i"])


def evaluate_model(model: nn.Module, dataset: Dataset[Any], **kw: Any
                   ) -> tuple[dict[str, float], Predictions]:
    """:func:`predict` then :func:`handpose.core.metrics.summarize`; returns both."""
    pred = predict(model, dataset, **kw)
    return summarize(pred.xyz, pred.xyz_gt, pred.uv, pred.uv_gt), pred


_LABELS = {
    "epe_mm": ("3D EPE", "mm"),
    "pa_epe_mm": ("3D PA-EPE", "mm"),
    "auc": ("AUC 0-50 mm", ""),
    "pa_auc": ("PA-AUC 0-50 mm", ""),
    "epe_2d_px": ("2D EPE", "px"),
    "pck_2d@0.2": ("2D PCK@0.2 box", ""),
}


def format_table(metrics: dict[str, float | int], title: str = "") -> str:
    """The metrics as an aligned two-column text table."""
    rows = []
    for k, v in metrics.items():
        name, unit = _LABELS.get(k, (k, ""))
        rows.append((name, (f"{v:.4f} {unit}" if isinstance(v, float) else f"{v}").rstrip()))
    w = max(len(r[0]) for r in rows)
    lines = [title] if title else []
    lines += [f"{a:<{w}}  {b}" for a, b in rows]
    return "\n".join(lines)


def check(cfg: Config) -> None:
    """The checkpoint and the data folder must be given."""
    if not cfg.checkpoint:
        raise ConfigError("checkpoint is not set: give checkpoint=RUN_DIR/model.pt")
    resolve_model_file(cfg.checkpoint, "checkpoint")
    require_path(cfg.data.root, "data.root")


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint`` on ``cfg.data``; writes metrics.json and pred.json."""
    path = resolve_model_file(cfg.checkpoint, "checkpoint")
    model, meta = load_checkpoint(path, pick_device(cfg.device))
    dataset = labelled_dataset(cfg.data, crop_size=meta.input_size)
    metrics, pred = evaluate_model(
        model, dataset, batch_size=cfg.batch_size, device=pick_device(cfg.device),
        normalization=dict(meta.normalization), scale_m=cfg.scale_m,
        num_workers=cfg.num_workers,
    )
    metrics = {**metrics, "num_samples": len(pred.index)}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    pred_path = run_dir / "pred.json"
    pred_path.write_text(json.dumps([pred.xyz.round(6).tolist(), []]))
    print(format_table(metrics, f"{path} on {cfg.data.root} ({len(pred.index)} samples)"))
    return {"metrics": metrics, "predictions": str(pred_path)}
