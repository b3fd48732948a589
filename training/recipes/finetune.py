"""Supervised 2.5D fine-tuning of a PoseNet (METHODS §2), optionally from pre-trained weights.

The encoder starts from ``init`` (a ``pretrain`` run, or official PeCLR weights) or from
scratch; the head is a linear 2.5D head (``head_hidden=0``) or a 2-layer MLP
(``head_hidden>0``). ``freeze_encoder=true`` with an MLP head is the paper's frozen-encoder
evaluation. ``data.fraction`` trains on a seeded fraction of the labels.

Per batch the hand crops are rotated/scaled/shifted (the crop's K follows the same affine, so
the 2.5D targets are recomputed exactly from the 3D joints) and colour-jittered; the loss is
:func:`handpose.core.losses.pose.pose_loss` (L1 on 2D, z_rel and lifted 3D, weights 1/5/1,
plus the confidence term). The result is a core checkpoint ``model.pt`` (``posenet_resnetN``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from handpose.core.augment import AppearanceAugmentation, GeometricAugmentation
from handpose.core.checkpoint import save_checkpoint
from handpose.core.data.sample import collate
from handpose.core.geometry.crop import crop_intrinsics
from handpose.core.geometry.lifting import to_25d
from handpose.core.losses.pose import PoseLossWeights, PoseTarget, pose_loss
from handpose.core.models import IMAGENET_NORMALIZATION, build_model, normalize_images

from ..config import input_path, to_dict
from ..loop import train
from ..train_config import TrainConfig
from .data import LabelledData, labelled_dataset, require_path
from .models import EncoderSpec, load_encoder_weights
from .pose_recipe import PoseRecipe

__all__ = ["check", "Config", "AugmentSpec", "HeatmapSpec", "FinetuneRecipe", "pose_model_name",
           "run"]


@dataclass(frozen=True)
class AugmentSpec:
    """Augmentation of the labelled crops *(choose: PeCLR's public code uses similar)*.

    Attributes:
        max_angle_deg: rotation ~ U(-max, max) about the crop centre.
        scale_range: zoom ~ U(lo, hi).
        max_translation_px: shift ~ U(-max, max) crop pixels per axis.
        color: HSV colour jitter (the pre-training's defaults).
    """

    max_angle_deg: float = 30.0
    scale_range: tuple[float, ...] = (0.9, 1.1)
    max_translation_px: float = 8.0
    color: bool = True

    def __post_init__(self) -> None:
        if len(self.scale_range) != 2:
            raise ValueError(f"aug.scale_range must be two numbers, got {self.scale_range}")


@dataclass(frozen=True)
class HeatmapSpec:
    """The integral-heatmap head (``head="heatmap"``): transposed-convolution channels and x2
    upsamplings (3: stride 4), and the soft-argmax sharpness ``beta``."""

    channels: int = 128
    num_deconv: int = 3
    beta: float = 10.0


def pose_model_name(depth: int, head: str, mask: bool = False) -> str:
    """Registry name of the PoseNet of ``depth`` with a ``head`` ("regression"/"heatmap")."""
    if head not in ("regression", "heatmap"):
        raise ValueError(f"head must be 'regression' or 'heatmap'; got {head!r}")
    if mask:
        return f"posenet_resnet{depth}_mask"
    return f"posenet_resnet{depth}" + ("_heatmap" if head == "heatmap" else "")


@dataclass(frozen=True)
class Config:
    """``handpose-train finetune``.

    Attributes:
        out: run folder ("" = runs/finetune-<time>).
        init: pre-trained encoder: a pretrain run folder or its model.pt, official PeCLR or
            torchvision-style ResNet weights; "" = random initialisation.
        freeze_encoder: train the head only (encoder weights and BN statistics fixed).
        head: "regression" (pooled features -> 2.5D) or "heatmap" (integral regression:
            soft-argmax over 2D heatmaps; learns the 2D much faster from scratch).
        head_hidden: regression head: 0 = linear; > 0 = 2-layer MLP head of that width.
        heatmap: the heatmap head's settings.
        input_size: side of the network input (the hand crop) in pixels.
        data: the labelled training set; val: an optional validation set (root "" = none),
            evaluated every ``train.eval_every`` updates and at the end.
        loss: weights of the 2D, z_rel, 3D and confidence terms.
    """

    out: str = ""
    init: str = input_path("", doc="pre-trained encoder weights")
    freeze_encoder: bool = False
    head: Literal["regression", "heatmap"] = "regression"
    head_hidden: int = 0
    heatmap: HeatmapSpec = field(default_factory=HeatmapSpec)
    input_size: int = 128
    data: LabelledData = field(default_factory=LabelledData)
    val: LabelledData = field(default_factory=LabelledData)
    model: EncoderSpec = field(default_factory=EncoderSpec)
    aug: AugmentSpec = field(default_factory=AugmentSpec)
    loss: PoseLossWeights = field(default_factory=PoseLossWeights)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=2000, batch_size=32, optimizer="adam", lr=5e-4, warmup_steps=100,
            checkpoint_every=500,
        )
    )

    def __post_init__(self) -> None:
        if self.head_hidden < 0 or self.input_size < 32:
            raise ValueError("head_hidden must be >= 0 and input_size >= 32 pixels")


class FinetuneRecipe(PoseRecipe):
    """The supervised 2.5D recipe (see the module docstring)."""

    name = "finetune"

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        a = cfg.aug
        self.geometric = GeometricAugmentation(
            max_angle_deg=a.max_angle_deg, scale_range=(a.scale_range[0], a.scale_range[1]),
            max_translation_px=a.max_translation_px,
        )
        self.appearance = AppearanceAugmentation(jitter_prob=1.0 if a.color else 0.0)

    def build_model(self) -> nn.Module:
        c = self.cfg
        if c.head == "heatmap":
            h = c.heatmap
            model = build_model(pose_model_name(c.model.depth, "heatmap"), width=c.model.width,
                                channels=h.channels, num_deconv=h.num_deconv, beta=h.beta)
        else:
            model = build_model(pose_model_name(c.model.depth, "regression"),
                                width=c.model.width, hidden=c.head_hidden)
        if c.init:
            load_encoder_weights(model.encoder, c.init, "init")
        if c.freeze_encoder:
            model.encoder.requires_grad_(False)
        return model

    def train_dataset(self) -> Dataset[Any]:
        return labelled_dataset(self.cfg.data, self.cfg.input_size, seed=self.cfg.train.seed)

    def collate(self, samples: list[Any]) -> Any:
        return collate(samples)

    def augment(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Randomly warp and colour the crops; the targets follow exactly.

        Returns:
            ``images`` (B, 3, S, S) in [0, 1], ``matrix`` (B, 2, 3) crop -> augmented pixels,
            ``K`` (B, 3, 3) of the augmented images, and the 2.5D targets ``uv`` (B, 21, 2),
            ``z_rel`` (B, 21), ``scale`` (B,) metres, recomputed from ``joints3d`` with ``K``.
        """
        with self.full_precision():
            rgb = batch["rgb"].float() / 255.0
            images, _, params = self.geometric(rgb)
            K = crop_intrinsics(batch["K"].float(), params.matrix)
            uv, z_rel, scale = to_25d(batch["joints3d"].float(), K)
            images = self.appearance(images)
        return {"images": images, "matrix": params.matrix, "K": K, "uv": uv, "z_rel": z_rel,
                "scale": scale}

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        if self.cfg.freeze_encoder:
            self.raw_model.encoder.eval()  # type: ignore[union-attr]  # keep BN statistics
        aug = self.augment(batch)
        pred = self.model(normalize_images(aug["images"]))
        with self.full_precision():
            pred = {k: v.float() for k, v in pred.items()}
            target = PoseTarget(uv=aug["uv"], z_rel=aug["z_rel"], joints=batch["joints3d"].float(),
                                K=aug["K"], scale=aug["scale"])
            terms = pose_loss(pred, target, float(self.cfg.input_size), self.cfg.loss)
        self._last = {"images": aug["images"][:4].detach(), "uv": pred["uv"][:4].detach(),
                      "uv_gt": aug["uv"][:4]}
        return {"loss": terms.pop("total"), **terms}

    def on_train_end(self) -> dict[str, Any]:
        path = save_checkpoint(
            self.run_dir / "model.pt",
            self.raw_model,
            input_size=self.cfg.input_size,
            normalization=IMAGENET_NORMALIZATION,
            training={"recipe": "finetune", "config": to_dict(self.cfg),
                      "data": self.cfg.data.root, "init": self.cfg.init},
            metrics=self.metrics,
        )
        return {"model": str(path)}


def check(cfg: Config) -> None:
    """The training data folder must be given."""
    require_path(cfg.data.root, "data.root")


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Fine-tune; returns the checkpoint path, the last losses and validation metrics."""
    res = train(FinetuneRecipe(cfg), cfg.train, run_dir)
    return {**res.outputs, "steps": res.steps, "losses": res.losses, "metrics": res.metrics}
