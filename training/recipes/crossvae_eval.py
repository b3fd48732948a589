"""Evaluation of a cross-modal VAE on labelled crops: pose from RGB alone, and its point cloud.

Metrics (RGB alone, the posterior mean of the RGB expert):

- the :func:`handpose.core.metrics.summarize` set (``epe_mm``, ``pa_epe_mm``, ``auc``, ...)
  of the 2.5D output (``uv`` from the heatmaps, ``z_rel`` of the pose rotated into camera axes
  with the crop's K) lifted to 3D with the crop's K and the ground-truth reference bone, the
  protocol of ``handpose-train eval``;
- ``epe_rr_mm``: the decoded root-relative 3D pose placed at the ground-truth wrist with the
  ground-truth scale (the dissertation's protocol: "global hand scale and root position known");
- ``chamfer_mm`` (samples with depth only): Chamfer distance between the reconstructed cloud
  (scale and wrist as above) and ``num_points`` points of the hand's depth (seeded draw).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from handpose.core.data.sample import collate
from handpose.core.geometry.crop import uncrop_points
from handpose.core.losses.chamfer import chamfer_distance
from handpose.core.losses.pose import lift_prediction
from handpose.core.metrics import summarize
from handpose.core.models import normalize_images
from handpose.core.models.crossvae import CrossModalVAE, view_rotation

from .multimodal_data import hand_pixels, sample_hand_points

__all__ = ["evaluate_crossvae", "root_relative_epe_mm"]


def root_relative_epe_mm(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean joint error (mm) after moving the predicted wrist onto the true one.

    Args:
        pred, gt: (N, 21, 3) metres.
    """
    p = pred - pred[:, :1] + gt[:, :1]
    return float(np.linalg.norm(p - gt, axis=-1).mean() * 1000.0)


@torch.no_grad()
def evaluate_crossvae(model: CrossModalVAE, dataset: Dataset[Any], batch_size: int = 32,
                      device: torch.device | str = "cpu", num_points: int = 256,
                      seed: int = 0) -> dict[str, float]:
    """The metrics of the module docstring (model mode restored afterwards).

    Args:
        model: the VAE. dataset: labelled crops (``rgb``, ``K``, ``joints3d``, ``uv``,
            ``crop_affine``; ``depth`` and ``mask`` for the cloud metric).
        num_points: points of the ground-truth clouds; seed: their draw.
    """
    dev = torch.device(device)
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    keys = ("xyz", "xyz_gt", "xyz_rr", "uv", "uv_gt")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    chamfer: list[torch.Tensor] = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    try:
        for batch in loader:
            images = normalize_images(batch["rgb"].to(dev))
            K = batch["K"].float().to(dev)
            joints = batch["joints3d"].float().to(dev)
            scale = batch["scale"].float().to(dev)
            out = model(images, K)
            xyz = lift_prediction(out["uv"].float(), out["z_rel"].float(), K, scale)
            s = int(images.shape[-1])
            R = view_rotation(K, s)
            rr = out["pose3d"].float() @ R * scale[:, None, None] + joints[:, :1]
            A = batch["crop_affine"]
            for k, v in (("xyz", xyz), ("xyz_gt", joints), ("xyz_rr", rr)):
                parts[k].append(v.cpu().numpy())
            parts["uv"].append(np.asarray(uncrop_points(A, out["uv"].float().cpu())))
            parts["uv_gt"].append(np.asarray(uncrop_points(A, batch["uv"])))
            if "depth" in batch:
                has = batch.get("has_depth", torch.ones(len(K), dtype=torch.bool))
                hand = hand_pixels({k: v for k, v in batch.items()})
                gt, valid = sample_hand_points(batch["depth"].float(), batch["K"].float(),
                                               hand, num_points, gen)
                valid = valid & has
                if bool(valid.any()):
                    rec = model.reconstruct_points(images, scale, K, joints[:, 0])
                    d = chamfer_distance(rec[valid.to(dev)].cpu(), gt[valid])
                    chamfer.append(d)
    finally:
        model.train(was)
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    metrics = summarize(cat["xyz"], cat["xyz_gt"], cat["uv"], cat["uv_gt"])
    metrics["epe_rr_mm"] = float(np.linalg.norm(cat["xyz_rr"] - cat["xyz_gt"], axis=-1)
                                 .mean() * 1000.0)
    if chamfer:
        metrics["chamfer_mm"] = float(torch.cat(chamfer).mean() * 1000.0)
    return metrics
