"""``handpose-train crossvae``: the cross-modal VAE with a product of Gaussian experts
(dissertation ch. 5; METHODS §7) on synthetic RGB + depth (+ masks).

Per batch the crops are rotated, zoomed and shifted (colour jittered too); the targets follow:
the 2D joints exactly (through the augmented crop's K), the root-relative 3D pose and the hand
point cloud by the augmented crop's view rotation (:func:`~handpose.core.models.crossvae.
view_rotation`, units of the reference bone). Clouds are ``num_points`` points drawn uniformly
from the hand pixels of the depth crop (mask, else depth near the wrist), once as the encoder's
input and once, independently, as the reconstruction target.

Variants (``variant``; Table 5.1 of the dissertation):

- ``r2p``: ELBO(RGB -> pose + heatmaps) (S1; the heatmaps are needed for the 2D output);
- ``r2cp``: ELBO(RGB -> pose + heatmaps + cloud) (S2);
- ``poe``: ELBO(RGB -> all) + ELBO(cloud -> all) + ELBO(joint -> all), the joint posterior the
  product of the RGB and cloud experts and the N(0, I) prior expert (S4).

Each ELBO: reconstruction ``lambda_pose * EPE(pose) + lambda_uv * |uv|_1 / S +
lambda_heat * CE(heatmaps) + lambda_cloud * (Chamfer + EMD)`` plus ``beta * KL(q || N(0, I))``,
beta annealed log-linearly from ``beta_start`` to ``beta_end`` (1e-5 -> 1e-3). z is sampled by
reparameterisation. Samples without a usable cloud drop out of the cloud terms and of the
cloud and joint ELBOs. The result is a core checkpoint ``model.pt`` (``crossvae_resnetN``):
RGB in, 2.5D pose and a hand point cloud out (:mod:`handpose.core.models.crossvae`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from handpose.core.augment import AppearanceAugmentation, warp_images
from handpose.core.checkpoint import save_checkpoint
from handpose.core.data.sample import collate
from handpose.core.losses.chamfer import chamfer_distance
from handpose.core.losses.emd import earth_movers_distance
from handpose.core.models import IMAGENET_NORMALIZATION, build_model, normalize_images
from handpose.core.models.crossvae import (
    CrossModalVAE,
    kl_standard_normal,
    product_of_experts,
    view_rotation,
)

from ..config import input_path, to_dict
from ..logging import draw_skeletons
from ..loop import train
from ..recipe import Recipe
from ..train_config import TrainConfig, plan_batches
from .crossvae_eval import evaluate_crossvae
from .data import LabelledData, require_path
from .models import load_encoder_weights
from .multimodal_data import (
    GeometricSpec,
    augmented_targets,
    hand_pixels,
    multimodal_dataset,
    sample_hand_points,
)

__all__ = ["CrossVAEModelSpec", "CrossVAELossSpec", "Config", "CrossVAERecipe", "check", "run",
           "gaussian_heatmaps"]


@dataclass(frozen=True)
class CrossVAEModelSpec:
    """The network (:class:`~handpose.core.models.crossvae.CrossModalVAE`; heatmaps are
    ``input_size / 4`` pixels)."""

    depth: int = 18
    width: int = 64
    latent: int = 64
    rgb_hidden: int = 512
    point_width: int = 64
    pose_hidden: int = 128
    heatmap_channels: int = 256
    grid: int = 16
    fold_hidden: int = 256
    beta: float = 10.0


@dataclass(frozen=True)
class CrossVAELossSpec:
    """Loss weights (dissertation 5.4-5.5; *(choose)* where marked).

    Attributes:
        lambda_pose: mean joint distance of the root-relative pose (units of s).
        lambda_uv: L1 of the soft-argmax 2D joints / S *(choose)*.
        lambda_heat: cross-entropy of the normalised Gaussian target heatmaps (sigma
            ``heat_sigma`` heatmap pixels) with the decoded softmax maps *(choose: the paper's
            L2 on raw maps, 0.01, does not fit soft-argmax maps)*.
        lambda_cloud: Chamfer (+ EMD with ``emd``) of the clouds (1).
        beta_start, beta_end, beta_steps: KL weight, log-linear over ``beta_steps`` updates
            (0 = the whole run).
        num_points: points per cloud (256).
        hand_window_m: without a mask, depth readings within this distance of the wrist's
            depth are the hand.
    """

    lambda_pose: float = 1.0
    lambda_uv: float = 1.0
    lambda_heat: float = 1.0
    lambda_cloud: float = 1.0
    emd: bool = True
    heat_sigma: float = 1.0
    beta_start: float = 1e-5
    beta_end: float = 1e-3
    beta_steps: int = 0
    num_points: int = 256
    hand_window_m: float = 0.15

    def __post_init__(self) -> None:
        if min(self.lambda_pose, self.lambda_uv, self.lambda_heat, self.lambda_cloud) < 0:
            raise ValueError("loss weights must be >= 0")
        if not (0 < self.beta_start and 0 < self.beta_end and self.heat_sigma > 0):
            raise ValueError("beta_start, beta_end and heat_sigma must be > 0")
        if self.num_points < 1 or self.beta_steps < 0:
            raise ValueError("num_points must be >= 1 and beta_steps >= 0")


@dataclass(frozen=True)
class Config:
    """``handpose-train crossvae``.

    Attributes:
        variant: "r2p", "r2cp" or "poe" (module docstring).
        out: run folder ("" = runs/crossvae-<time>).
        init: optional RGB encoder weights (PeCLR / ImageNet / a pretrain run).
        input_size: crop side in pixels, 16 x a power of two (32, 64, 128, 256): the 2D
            heatmaps are a quarter of it and the heatmap decoder doubles from 4 x 4.
        data: synthetic labelled crops with depth (and masks); val: optional labelled set.
        aug: rotation / zoom / shift (the paper: +-180 deg, 1-1.2, 20 px of 256); hue: jitter.
    """

    variant: Literal["r2p", "r2cp", "poe"] = "poe"
    out: str = ""
    init: str = input_path("", doc="RGB encoder weights")
    input_size: int = 128
    data: LabelledData = field(default_factory=LabelledData)
    val: LabelledData = field(default_factory=LabelledData)
    model: CrossVAEModelSpec = field(default_factory=CrossVAEModelSpec)
    loss: CrossVAELossSpec = field(default_factory=CrossVAELossSpec)
    aug: GeometricSpec = field(default_factory=lambda: GeometricSpec(180.0, (1.0, 1.2), 0.078))
    hue: float = 0.1
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=2000, batch_size=32, optimizer="adam", lr=1e-4, warmup_steps=50,
        checkpoint_every=500))

    def __post_init__(self) -> None:
        n = self.input_size // 16
        if self.input_size < 32 or self.input_size % 16 or n & (n - 1):
            raise ValueError("input_size must be 16 x a power of two (32, 64, 128, 256, ...): "
                             f"its 2D heatmaps are input_size / 4 = 4 x 2^n; got "
                             f"{self.input_size}")


def gaussian_heatmaps(uv: torch.Tensor, side: int, input_size: int, sigma: float
                      ) -> torch.Tensor:
    """(B, J, 2) crop pixels -> (B, J, side, side) Gaussians summing to 1 (heatmap pixel
    centres as in :func:`~handpose.core.models.heads.soft_argmax_25d`; sigma in heatmap px)."""
    k = side / input_size
    c = (torch.arange(side, device=uv.device, dtype=uv.dtype) + 0.5)
    g = (uv + 0.5) * k  # heatmap coordinates with centres at +0.5
    gx = torch.exp(-0.5 * ((c - g[..., 0:1]) / sigma) ** 2)  # (B, J, side)
    gy = torch.exp(-0.5 * ((c - g[..., 1:2]) / sigma) ** 2)
    h = gy[..., :, None] * gx[..., None, :]
    return h / h.flatten(2).sum(-1).clamp_min(1e-12)[..., None, None]


class CrossVAERecipe(Recipe):
    """The cross-modal VAE recipe (module docstring)."""

    name = "crossvae"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.geometric = cfg.aug.augmentation(cfg.input_size)
        self.appearance = AppearanceAugmentation(hue=cfg.hue)
        self.metrics: dict[str, float] = {}
        self._last: dict[str, torch.Tensor] = {}
        self._val: Dataset[Any] | None = None
        self._total_steps = 0

    @property
    def net(self) -> CrossModalVAE:
        m = self.raw_model
        assert isinstance(m, CrossModalVAE)
        return m

    def build_model(self) -> nn.Module:
        c = self.cfg
        kw = {k: getattr(c.model, k) for k in c.model.__dataclass_fields__ if k != "depth"}
        model = build_model(f"crossvae_resnet{c.model.depth}", heatmap_size=c.input_size // 4,
                            **kw)
        if c.init:
            load_encoder_weights(model.encoder, c.init, "init")
        return model

    def train_dataset(self) -> Dataset[Any]:
        ds = multimodal_dataset(self.cfg.data, self.cfg.input_size, self.cfg.train.seed)
        self._total_steps = plan_batches(self.cfg.train, len(ds),  # type: ignore[arg-type]
                                         self.dist.world_size).total_steps
        return ds

    def collate(self, samples: list[Any]) -> Any:
        return collate(samples)

    def beta(self, step: int) -> float:
        """The KL weight at update ``step`` (log-linear annealing, then constant)."""
        lo, hi = math.log(self.cfg.loss.beta_start), math.log(self.cfg.loss.beta_end)
        n = self.cfg.loss.beta_steps or self._total_steps or self.cfg.train.steps
        t = min(1.0, step / max(1, n - 1))
        return math.exp(lo + t * (hi - lo))

    def targets(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Augmented images and their targets (module docstring)."""
        c = self.cfg
        s = c.input_size
        n = c.loss.num_points
        rgb = batch["rgb"].float() / 255.0
        joints = batch["joints3d"].float()
        m = self.geometric.sample(rgb.shape[0], (s, s), device=rgb.device).matrix
        K2, uv, _, scale = augmented_targets(joints, batch["K"].float(), m)
        R = view_rotation(K2, s)
        root = joints[:, :1]
        pose = ((joints - root) @ R.transpose(1, 2)) / scale[:, None, None]
        hand = hand_pixels(batch, c.loss.hand_window_m)
        pts, valid = sample_hand_points(batch["depth"].float(), batch["K"].float(), hand, 2 * n)
        pts = ((pts - root) @ R.transpose(1, 2)) / scale[:, None, None]
        images = self.appearance(warp_images(rgb, m, (s, s)))
        return {"images": images, "uv": uv, "pose": pose, "points_in": pts[:, :n],
                "points_target": pts[:, n:], "valid": valid, "K": K2, "scale": scale}

    def elbo(self, mu: torch.Tensor, logvar: torch.Tensor, t: dict[str, torch.Tensor],
             beta: float, weights: torch.Tensor | None, prefix: str) -> dict[str, torch.Tensor]:
        """One ELBO term (negated, batch mean over ``weights``) and its parts."""
        c, lw = self.cfg, self.cfg.loss
        s = c.input_size
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        with_points = c.variant != "r2p"
        out = self.net.decode(z, (s, s), points=with_points)
        with self.full_precision():
            out = {k: v.float() for k, v in out.items()}
            pose = (out["pose3d"] - t["pose"]).norm(dim=-1).mean(1)
            uv = (out["uv"] - t["uv"]).abs().mean(dim=(1, 2)) / s
            side = int(out["heatmap_logits"].shape[-1])
            g = gaussian_heatmaps(t["uv"], side, s, lw.heat_sigma)
            logp = F.log_softmax(self.net.beta * out["heatmap_logits"].flatten(2), dim=-1)
            heat = -(g.flatten(2) * logp).sum(-1).mean(1)
            rec = lw.lambda_pose * pose + lw.lambda_uv * uv + lw.lambda_heat * heat
            parts = {"pose": pose, "uv": uv, "heat": heat}
            if with_points:
                valid = t["valid"].float()
                cloud = chamfer_distance(out["points"], t["points_target"])
                if lw.emd:
                    cloud = cloud + earth_movers_distance(out["points"], t["points_target"])
                rec = rec + lw.lambda_cloud * cloud * valid
                parts["cloud"] = cloud
            kl = kl_standard_normal(mu.float(), logvar.float())
            w = torch.ones_like(rec) if weights is None else weights.float()
            den = w.sum().clamp_min(1.0)
            res = {f"{prefix}/{k}": (v * w).sum() / den for k, v in parts.items()}
            res[f"{prefix}/kl"] = (kl * w).sum() / den
            res[f"{prefix}/elbo"] = ((rec + beta * kl) * w).sum() / den
        return res

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        c = self.cfg
        with self.full_precision():
            t = self.targets(batch)
        mu_r, lv_r = self.net.encode_rgb(normalize_images(t["images"]))
        beta = self.beta(step)
        out = self.elbo(mu_r, lv_r, t, beta, None, "rgb")
        loss = out["rgb/elbo"]
        if c.variant == "poe":
            mu_c, lv_c = self.net.encode_points(t["points_in"])
            valid = t["valid"]
            # a sample without a cloud: that expert has no precision in the product
            lv_c = torch.where(valid[:, None], lv_c, torch.full_like(lv_c, 10.0))
            out.update(self.elbo(mu_c, lv_c, t, beta, valid, "cloud"))
            mu_j, lv_j = product_of_experts(torch.stack([mu_r, mu_c]), torch.stack([lv_r, lv_c]))
            out.update(self.elbo(mu_j, lv_j, t, beta, valid, "joint"))
            loss = loss + out["cloud/elbo"] + out["joint/elbo"]
        out["loss"] = loss
        out["beta"] = torch.tensor(beta)
        self._last = {"images": t["images"][:4].detach(), "uv_gt": t["uv"][:4]}
        return out

    def images(self, batch: Any, step: int) -> dict[str, Any]:
        if not self._last:
            return {}
        imgs = self._last["images"]
        pred = self.net.decode(self.net.encode_rgb(normalize_images(imgs))[0],
                               (imgs.shape[-2], imgs.shape[-1]), points=False)
        return {"skeletons": draw_skeletons(imgs, pred["uv"], self._last["uv_gt"])}

    def evaluate(self, step: int) -> dict[str, float]:
        c = self.cfg
        if not c.val.root:
            return {}
        if self._val is None:
            self._val = multimodal_dataset(c.val, c.input_size, 0, key="val.root",
                                           need_depth=False)
        self.metrics = evaluate_crossvae(self.net, self._val, batch_size=c.train.batch_size,
                                         device=self.device, num_points=c.loss.num_points)
        return self.metrics

    def on_train_end(self) -> dict[str, Any]:
        c = self.cfg
        path = save_checkpoint(
            self.run_dir / "model.pt", self.net, input_size=c.input_size,
            normalization=IMAGENET_NORMALIZATION, metrics=self.metrics,
            training={"recipe": f"crossvae/{c.variant}", "config": to_dict(c),
                      "data": c.data.root, "init": c.init},
        )
        return {"model": str(path)}


def check(cfg: Config) -> None:
    """The synthetic RGB + depth folder must be given."""
    require_path(cfg.data.root, "data.root")


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Train; returns the checkpoint, the last losses and validation metrics."""
    res = train(CrossVAERecipe(cfg), cfg.train, run_dir)
    return {**res.outputs, "steps": res.steps, "losses": res.losses, "metrics": res.metrics}
