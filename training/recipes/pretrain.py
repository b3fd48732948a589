"""PeCLR / SimCLR contrastive pre-training of a ResNet encoder on unlabelled hand images.

Per image two views are cut by :class:`~handpose.core.augment.PeclrViewSampler` (rotation,
crop scale, translation, colour jitter; METHODS §2); both go through the encoder and the
projection head in one batch. SimCLR applies NT-Xent to the projections; PeCLR first undoes
each view's rotation and translation in latent space
(:func:`~handpose.core.losses.contrastive.invert_latent_transform`). Under DDP the
projections of all processes are gathered with gradient, so the negatives span the global
batch. The result is a core checkpoint ``model.pt`` (``simclr_resnetN``) whose encoder the
``finetune`` recipe starts from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from handpose.core.augment import AppearanceAugmentation, PeclrViewSampler
from handpose.core.checkpoint import save_checkpoint
from handpose.core.data.sample import collate
from handpose.core.losses.contrastive import invert_latent_transform, nt_xent
from handpose.core.models import IMAGENET_NORMALIZATION, build_model, normalize_images

from ..config import to_dict
from ..distributed import gather_with_grad
from ..loop import train
from ..recipe import Recipe
from ..train_config import TrainConfig
from .data import UnlabelledData, hand_centres_and_sides, require_path, unlabelled_dataset
from .models import EncoderSpec

__all__ = ["check", "Config", "ProjectionSpec", "ViewSpec", "PretrainRecipe", "run"]


@dataclass(frozen=True)
class ProjectionSpec:
    """Projection head: Linear(feat, hidden) + BN + ReLU + Linear(hidden, dim) (METHODS §2)."""

    hidden: int = 512
    dim: int = 128

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.dim < 2 or self.dim % 2:
            raise ValueError(f"hidden >= 1 and an even dim >= 2 needed, got {self}")


@dataclass(frozen=True)
class ViewSpec:
    """View sampling (METHODS §2; defaults as the paper)."""

    size: int = 128
    max_angle_deg: float = 45.0
    margin_range: tuple[float, ...] = (0.9, 1.5)
    max_translation_px: float = 15.0
    hue: float = 0.05
    saturation: tuple[float, ...] = (0.6, 1.4)
    value: tuple[float, ...] = (0.6, 1.4)
    grayscale_prob: float = 0.0
    blur_prob: float = 0.0

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"views.size must be >= 8 pixels, got {self.size}")
        for name in ("margin_range", "saturation", "value"):
            if len(getattr(self, name)) != 2:
                raise ValueError(f"views.{name} must be two numbers, got {getattr(self, name)}")

    def sampler(self) -> PeclrViewSampler:
        lo, hi = self.margin_range
        return PeclrViewSampler(
            out_size=self.size,
            max_angle_deg=self.max_angle_deg,
            margin_range=(lo, hi),
            max_translation_px=self.max_translation_px,
            appearance=AppearanceAugmentation(
                hue=self.hue,
                saturation=(self.saturation[0], self.saturation[1]),
                value=(self.value[0], self.value[1]),
                grayscale_prob=self.grayscale_prob,
                blur_prob=self.blur_prob,
            ),
        )


@dataclass(frozen=True)
class Config:
    """``handpose-train pretrain``.

    Attributes:
        method: "peclr" (equivariant) or "simclr" (invariant).
        out: run folder ("" = runs/pretrain-<time>).
        temperature: NT-Xent temperature (0.5).
        data: the unlabelled images; extra: an optional second source mixed in (root "" =
            none), e.g. a synthetic set (``format="freihand"``) next to real photos; it is cut
            at ``data.load_size`` (its own ``load_size`` is not used).
    """

    method: Literal["peclr", "simclr"] = "peclr"
    out: str = ""
    temperature: float = 0.5
    data: UnlabelledData = field(default_factory=UnlabelledData)
    extra: UnlabelledData = field(default_factory=UnlabelledData)
    model: EncoderSpec = field(default_factory=EncoderSpec)
    projection: ProjectionSpec = field(default_factory=ProjectionSpec)
    views: ViewSpec = field(default_factory=ViewSpec)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=1000, batch_size=64, optimizer="adam", lars=True, lr=1e-4,
            lr_scaling="sqrt", weight_decay=1e-6, warmup_steps=100, checkpoint_every=250,
        )
    )

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


class PretrainRecipe(Recipe):
    """The contrastive pre-training recipe (see the module docstring)."""

    name = "pretrain"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.views = cfg.views.sampler()
        self._last_views: torch.Tensor | None = None

    def build_model(self) -> nn.Module:
        m = self.cfg.model
        return build_model(
            f"simclr_resnet{m.depth}", width=m.width,
            proj_hidden=self.cfg.projection.hidden, proj_dim=self.cfg.projection.dim,
        )

    def train_dataset(self) -> Dataset[Any]:
        ds = unlabelled_dataset(self.cfg.data, seed=self.cfg.train.seed)
        if not self.cfg.extra.root:
            return ds
        # one batch, one size: the extra source is cut at data.load_size
        sec = replace(self.cfg.extra, load_size=self.cfg.data.load_size)
        extra = unlabelled_dataset(sec, seed=self.cfg.train.seed, key="extra.root")
        return ConcatDataset([ds, extra])

    def collate(self, samples: list[Any]) -> Any:
        return collate(samples)

    def embed_views(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Two views per image -> the (N, D) L2-normalised, (for PeCLR) inverted projections."""
        t_aug = time.perf_counter()
        with self.full_precision():
            rgb = batch["rgb"].float() / 255.0
            centres, sides = hand_centres_and_sides(
                batch, rgb.shape[-1], self.cfg.data.crop_margin
            )
            v1, p1, _ = self.views(rgb, centres, sides)
            v2, p2, _ = self.views(rgb, centres, sides)
            self._last_views = torch.cat([v1[:4], v2[:4]]).detach()
            x = normalize_images(torch.cat([v1, v2]))
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        self._aug_ms = (time.perf_counter() - t_aug) * 1000.0
        z = self.model(x)
        with self.full_precision():
            n = rgb.shape[0]
            z1, z2 = z[:n].float(), z[n:].float()
            if self.cfg.method == "peclr":
                size = float(self.cfg.views.size)
                z1 = invert_latent_transform(z1, p1.angle, p1.translation, size, p1.flip)
                z2 = invert_latent_transform(z2, p2.angle, p2.translation, size, p2.flip)
            return F.normalize(z1, dim=1), F.normalize(z2, dim=1)

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        z1, z2 = self.embed_views(batch)
        with self.full_precision():
            a, b = gather_with_grad(z1), gather_with_grad(z2)
            loss = nt_xent(a, b, self.cfg.temperature)
            with torch.no_grad():  # how often the other view is the nearest of all candidates
                hit = (a @ b.T).argmax(dim=1) == torch.arange(a.shape[0], device=a.device)
        # aug_ms: wall time of the two views' augmentation (kornia, on the training device)
        return {"loss": loss, "positive_top1": hit.float().mean(),
                "aug_ms": torch.tensor(self._aug_ms)}

    def images(self, batch: Any, step: int) -> dict[str, torch.Tensor | np.ndarray]:
        return {} if self._last_views is None else {"views": self._last_views.clamp(0, 1)}

    def on_train_end(self) -> dict[str, Any]:
        path = save_checkpoint(
            self.run_dir / "model.pt",
            self.raw_model,
            input_size=self.cfg.views.size,
            normalization=IMAGENET_NORMALIZATION,
            training={
                "recipe": f"pretrain/{self.cfg.method}",
                "config": to_dict(self.cfg),
                "data": [r for r in (self.cfg.data.root, self.cfg.extra.root) if r],
            },
        )
        return {"model": str(path)}


def check(cfg: Config) -> None:
    """The data folder must be given (and the extra one must exist when set)."""
    require_path(cfg.data.root, "data.root")
    if cfg.extra.root:
        require_path(cfg.extra.root, "extra.root")


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Pre-train; returns the checkpoint path and the last logged losses."""
    res = train(PretrainRecipe(cfg), cfg.train, run_dir)
    return {**res.outputs, "steps": res.steps, "losses": res.losses}
