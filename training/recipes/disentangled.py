"""``handpose-train disentangled``: the disentangled VAE of the dissertation's chapter 4.

Trains :class:`~handpose.core.models.disentangled_vae.DisentangledVAE` (registry name
``disentangled_vae``) on labelled hand crops with the joint objective of
:mod:`handpose.core.models.disentangled_vae_loss`: the disentangling step (pose encoder from
the 2.5D label, content encoder from the image, image and pose decoders) and the embedding
step (the image encoder, decoders fixed), every update. The crops are rotated, scaled,
shifted and colour-jittered per batch; the 2.5D targets follow exactly (as in ``finetune``).

Outputs in the run folder: ``model.pt`` (a core checkpoint whose network is the pose
estimator image -> z_pose -> 2.5D pose, so ``handpose-train eval`` and the app use it like a
PoseNet), and ``grids/{reconstruction,pose_transfer,latent_walk_pose,latent_walk_content}.png``
made from fixed crops of the validation set (else the training set); the same grids go to
TensorBoard every ``train.image_every`` updates and at the end (tags ``grids/*``).

Metrics (``val.root`` set; every ``train.eval_every`` updates and at the end): the pose
metrics of :func:`.eval.evaluate_model` and :func:`reconstruction_metrics` (reconstruction
errors, and the pose measured on pose-transferred images). Not reproduced from the chapter:
tag images for the content (no such labels here: the z_u variant, Alg. 4.2), the CPose /
viewpoint split of the pose latent, and its sequential schedule (Alg. 4.1: disentangling
epochs, then embedding epochs; both steps every update here, Eq. 4.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from handpose.core.augment import AppearanceAugmentation, GeometricAugmentation
from handpose.core.checkpoint import save_checkpoint
from handpose.core.data.sample import collate
from handpose.core.geometry.crop import crop_intrinsics
from handpose.core.geometry.lifting import to_25d
from handpose.core.models import IMAGENET_NORMALIZATION, build_model, normalize_images
from handpose.core.models.disentangled_vae import DisentangledVAE
from handpose.core.models.disentangled_vae_loss import DVAELossWeights, dvae_loss

from ..config import to_dict
from ..loop import train
from ..recipe import Recipe
from ..train_config import TrainConfig
from .data import LabelledData, labelled_dataset, require_path
from .disentangled_grids import latent_walk_grid, pose_transfer_grid, reconstruction_grid
from .eval import evaluate_model
from .finetune import AugmentSpec

__all__ = ["check", "Config", "ModelSpec", "GridSpec", "DisentangledRecipe",
           "reconstruction_metrics", "write_grids", "run"]


@dataclass(frozen=True)
class ModelSpec:
    """The dVAE's size (chapter: ResNet-18, z of 32 + 32, 6 FC layers of 512, DCGAN ngf 64)."""

    depth: int = 18
    width: int = 64
    pose_latent: int = 32
    content_latent: int = 32
    hidden: int = 512
    layers: int = 6
    decoder_channels: int = 64


@dataclass(frozen=True)
class GridSpec:
    """The image grids: ``count`` poses x ``count`` contents for the transfer, ``count``
    rows and ``walk_steps`` points for the latent walks."""

    count: int = 4
    walk_steps: int = 8

    def __post_init__(self) -> None:
        if self.count < 1 or self.walk_steps < 2:
            raise ValueError(f"grids.count must be >= 1 and grids.walk_steps >= 2; got "
                             f"{self.count}, {self.walk_steps}")


@dataclass(frozen=True)
class Config:
    """``handpose-train disentangled``.

    Attributes:
        out: run folder ("" = runs/disentangled-<time>).
        input_size: crop side in pixels, a power of two (the decoder's output size too).
        data: the labelled training set (e.g. a ``handpose-data synth`` folder).
        val: optional labelled validation set (root "" = none): pose and reconstruction
            metrics, and the crops of the grids.
        model, aug, loss, grids, train: see the sections.
    """

    out: str = ""
    input_size: int = 64
    data: LabelledData = field(default_factory=LabelledData)
    val: LabelledData = field(default_factory=LabelledData)
    model: ModelSpec = field(default_factory=ModelSpec)
    aug: AugmentSpec = field(default_factory=AugmentSpec)
    loss: DVAELossWeights = field(default_factory=DVAELossWeights)
    grids: GridSpec = field(default_factory=GridSpec)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=4000, batch_size=32, optimizer="adam", lr=1e-4, warmup_steps=100,
            checkpoint_every=500, image_every=500,
        )
    )

    def __post_init__(self) -> None:
        s = self.input_size
        if s < 8 or s & (s - 1):
            raise ValueError(f"input_size must be a power of two >= 8 (the DCGAN decoder); got "
                             f"{s}")


class _Objective(nn.Module):
    """The dVAE plus its loss in ``forward``, so DDP sees one forward per update."""

    def __init__(self, vae: DisentangledVAE, weights: DVAELossWeights) -> None:
        super().__init__()
        self.vae = vae
        self.weights = weights

    def forward(self, images: Tensor, uv: Tensor, z_rel: Tensor) -> dict[str, Tensor]:
        return dvae_loss(self.vae, images, uv, z_rel, self.weights)


def _pairs(n: int) -> Tensor:
    """A fixed pairing without fixed points: sample i takes the content of i + ceil(n/2)."""
    return (torch.arange(n) + (n + 1) // 2) % n


@torch.no_grad()
def reconstruction_metrics(model: DisentangledVAE, dataset: Dataset[Any], batch_size: int = 32,
                           device: torch.device | str = "cpu",
                           normalization: dict[str, Any] | None = None) -> dict[str, float]:
    """Image and disentanglement measures of a dVAE on labelled crops (eval mode inside).

    Args:
        dataset: crops of side ``model.image_size`` with ``rgb``, ``uv``, ``joints3d``, ``K``.
    Returns:
        "recon_mse": per-pixel squared error of D_x(E_x(x)) ([0, 1] RGB), "recon_psnr" (dB);
        "synth_mse": the same for D_x([E_y(y), E_u(x)]) (pose from the label);
        "transfer_to_pose_px" / "transfer_to_content_px": mean 2D distance (crop pixels)
        between the pose estimated on the image transferred from (pose of i, content of j)
        and the true pose of i / of j, over the pairs of each batch (:func:`_pairs`). A
        disentangled model has the first far below the second.
    """
    dev = torch.device(device)
    norm = normalization or IMAGENET_NORMALIZATION
    was = model.training
    model.eval()
    sums = dict.fromkeys(("recon_mse", "synth_mse", "transfer_to_pose_px",
                          "transfer_to_content_px"), 0.0)
    n_img = n_pair = 0
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    try:
        for batch in loader:
            x01 = batch["rgb"].to(dev).float() / 255.0
            if x01.shape[-1] != model.image_size:
                raise ValueError(f"crops must be {model.image_size} px; got {x01.shape[-1]}")
            x = normalize_images(x01, norm)
            uv = batch["uv"].to(dev)
            _, z_rel, _ = to_25d(batch["joints3d"].to(dev), batch["K"].to(dev).float())
            b = x.shape[0]
            sums["recon_mse"] += float((model.reconstruct(x) - x01).pow(2).mean((1, 2, 3)).sum())
            syn = model.synthesize(uv, z_rel, x)
            sums["synth_mse"] += float((syn - x01).pow(2).mean((1, 2, 3)).sum())
            n_img += b
            if b >= 2:
                j = _pairs(b).to(dev)
                est = model(normalize_images(model.transfer(x, x[j]), norm))["uv"]
                sums["transfer_to_pose_px"] += float((est - uv).norm(dim=-1).mean(1).sum())
                sums["transfer_to_content_px"] += float((est - uv[j]).norm(dim=-1).mean(1).sum())
                n_pair += b
    finally:
        model.train(was)
    out = {k: v / max(n_img if k.endswith("mse") else n_pair, 1) for k, v in sums.items()}
    out["recon_psnr"] = float(10.0 * np.log10(1.0 / max(out["recon_mse"], 1e-12)))
    return out


def write_grids(model: DisentangledVAE, batch: dict[str, Any], out_dir: Path | None,
                grids: GridSpec = GridSpec(), device: torch.device | str = "cpu"
                ) -> dict[str, np.ndarray]:
    """Make the four grids of :mod:`.disentangled_grids` from a collated batch of crops.

    Args:
        batch: at least ``max(2 * count, 2 + count)`` crops (``rgb``, ``uv``, ``joints3d``,
            ``K``) of side ``model.image_size``.
        out_dir: where to write ``<name>.png`` (None = do not write).
    Returns:
        name -> (3, H, W) uint8 RGB.
    """
    dev = torch.device(device)
    was = model.training
    model.eval()
    try:
        x01 = batch["rgb"].to(dev).float() / 255.0
        x = normalize_images(x01)
        uv = batch["uv"].to(dev)
        _, z_rel, _ = to_25d(batch["joints3d"].to(dev), batch["K"].to(dev).float())
        c = grids.count
        out = {
            "reconstruction": reconstruction_grid(model, x, x01, uv, z_rel, 2 * c),
            "pose_transfer": pose_transfer_grid(model, x, x01, uv, c),
            "latent_walk_pose": latent_walk_grid(model, x, x01, "pose", grids.walk_steps, c),
            "latent_walk_content": latent_walk_grid(model, x, x01, "content", grids.walk_steps,
                                                    c),
        }
    finally:
        model.train(was)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, img in out.items():
            bgr = cv2.cvtColor(np.ascontiguousarray(img.transpose(1, 2, 0)), cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(out_dir / f"{name}.png"), bgr):
                raise OSError(f"could not write {out_dir / f'{name}.png'}")
    return out


class DisentangledRecipe(Recipe):
    """The dVAE recipe (see the module docstring)."""

    name = "disentangled"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        a = cfg.aug
        self.geometric = GeometricAugmentation(
            max_angle_deg=a.max_angle_deg, scale_range=(a.scale_range[0], a.scale_range[1]),
            max_translation_px=a.max_translation_px,
        )
        self.appearance = AppearanceAugmentation(jitter_prob=1.0 if a.color else 0.0)
        self.metrics: dict[str, float] = {}
        self._val: Dataset[Any] | None = None
        self._grid_batch: dict[str, Any] | None = None
        self._steps = 0

    @property
    def vae(self) -> DisentangledVAE:
        return self.raw_model.vae  # type: ignore[no-any-return]

    def build_model(self) -> nn.Module:
        c, m = self.cfg, self.cfg.model
        vae = build_model("disentangled_vae", depth=m.depth, width=m.width,
                          pose_latent=m.pose_latent, content_latent=m.content_latent,
                          hidden=m.hidden, layers=m.layers, image_size=c.input_size,
                          decoder_channels=m.decoder_channels)
        return _Objective(vae, c.loss)  # type: ignore[arg-type]

    def train_dataset(self) -> Dataset[Any]:
        return labelled_dataset(self.cfg.data, self.cfg.input_size, seed=self.cfg.train.seed)

    def collate(self, samples: list[Any]) -> Any:
        return collate(samples)

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        with self.full_precision():
            rgb = batch["rgb"].float() / 255.0
            images, _, params = self.geometric(rgb)
            K = crop_intrinsics(batch["K"].float(), params.matrix)
            uv, z_rel, _ = to_25d(batch["joints3d"].float(), K)
            images = self.appearance(images)
        terms = self.model(images, uv, z_rel)
        self._steps = step + 1
        return {"loss": terms.pop("total"), **terms}

    def _val_set(self) -> Dataset[Any] | None:
        if self._val is None and self.cfg.val.root:
            self._val = labelled_dataset(self.cfg.val, self.cfg.input_size, key="val.root")
        return self._val

    def grid_batch(self) -> dict[str, Any]:
        """Fixed crops for the grids: evenly spaced samples of the validation set (else the
        training set)."""
        if self._grid_batch is None:
            ds = self._val_set() or self.train_dataset()
            n = len(ds)  # type: ignore[arg-type]
            k = max(2 * self.cfg.grids.count, 2 + self.cfg.grids.count)
            idx = np.linspace(0, n - 1, k).round().astype(int)  # repeats when n < k
            self._grid_batch = collate([ds[int(i)] for i in idx])
        return self._grid_batch

    def images(self, batch: Any, step: int) -> dict[str, Any]:
        grids = write_grids(self.vae, self.grid_batch(), None, self.cfg.grids, self.device)
        return {f"grids/{k}": v[None] for k, v in grids.items()}

    def evaluate(self, step: int) -> dict[str, float]:
        val = self._val_set()
        if val is None:
            return {}
        kw = dict(batch_size=self.cfg.train.batch_size, device=self.device)
        pose, _ = evaluate_model(self.vae, val, **kw)
        self.metrics = {**pose, **reconstruction_metrics(self.vae, val, **kw)}
        return self.metrics

    def on_train_end(self) -> dict[str, Any]:
        grid_dir = self.run_dir / "grids"
        grids = write_grids(self.vae, self.grid_batch(), grid_dir, self.cfg.grids, self.device)
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(log_dir=str(self.run_dir / "tb")) as tb:
            for k, v in grids.items():
                tb.add_image(f"grids/{k}", v, self._steps, dataformats="CHW")
        path = save_checkpoint(
            self.run_dir / "model.pt", self.vae, input_size=self.cfg.input_size,
            normalization=IMAGENET_NORMALIZATION,
            training={"recipe": "disentangled", "config": to_dict(self.cfg),
                      "data": self.cfg.data.root},
            metrics=self.metrics,
        )
        return {"model": str(path), "grids": {k: str(grid_dir / f"{k}.png") for k in grids}}


def check(cfg: Config) -> None:
    """The training data folder must be given."""
    require_path(cfg.data.root, "data.root")


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Train the dVAE; returns the checkpoint and grid paths, last losses and metrics."""
    res = train(DisentangledRecipe(cfg), cfg.train, run_dir)
    return {**res.outputs, "steps": res.steps, "losses": res.losses, "metrics": res.metrics}
