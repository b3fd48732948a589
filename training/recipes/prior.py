"""``handpose-train prior``: the pose VAE of Wan et al. (METHODS §6) on sampled feasible poses.

Poses come from the project's sampler (:class:`~handpose.core.data.synthetic.sampler.
HandSampler`): hand i of the virtual dataset depends on ``(data.seed, i)`` only, so the data is
unlimited and exactly resumable. Each batch is made in :meth:`PriorRecipe.collate` (one batched
sampler call). The VAE (:class:`~handpose.core.models.prior.PoseVAE`) normalises its input
itself (root, rotation, scale), so the poses are given in camera orientation with a random
translation. The loss is the negative ELBO ``nll + beta * w_kl(step) * kl`` with the KL weight
annealed linearly from 0 over ``kl_warmup_steps`` (*choose*: avoids posterior collapse early).

Evaluation on ``val_size`` held-out poses (seed ``data.seed + 1``): the mean negative ELBO of
feasible poses, of the same poses with Gaussian joint noise of ``noise_mm`` (about the error
of a poor estimate), and ``val/auc_noisy``, the probability that a noisy pose scores worse
than a clean one (1 = the prior separates them perfectly). The result is a core checkpoint
``model.pt`` (``pose_vae``; ``input_size`` = the input dimension 3 x num_points, identity
normalization) to pass to ``fit-depth`` as ``prior=``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from handpose.core.checkpoint import save_checkpoint
from handpose.core.data.synthetic.sampler import HandSampler, SamplerConfig
from handpose.core.data.synthetic.seeding import PLACEMENT_STREAM, sample_rng
from handpose.core.models import build_model
from handpose.core.models.prior import PoseVAE

from ..config import to_dict
from ..loop import train
from ..recipe import Recipe
from ..train_config import TrainConfig

__all__ = ["IndexDataset", "PoseData", "Config", "PriorRecipe", "IDENTITY_NORMALIZATION",
           "run"]

_SHIFT_STREAM = PLACEMENT_STREAM  # the random translation of pose i

#: Checkpoint normalization of networks whose input is not an RGB image (identity).
IDENTITY_NORMALIZATION = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


class IndexDataset(Dataset[int]):
    """A virtual dataset of ``length`` items whose item i is the integer i (the batch is made
    from the indices, deterministically, by the recipe)."""

    def __init__(self, length: int) -> None:
        if length < 1:
            raise ValueError(f"length must be >= 1; got {length}")
        self.length = int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return int(index)


@dataclass(frozen=True)
class PoseData:
    """Sampled training poses (the sampler's distribution; right hands).

    Attributes:
        seed: hand i depends on (seed, i) only.
        length: distinct poses (the virtual dataset size).
        hand_scale: [lo, hi] hand size relative to the template.
        translation: metres, uniform [-t, t] per axis added to the pose (the prior must not
            care).
    """

    seed: int = 0
    length: int = 1_000_000
    hand_scale: tuple[float, ...] = (0.8, 1.2)
    translation: float = 0.3

    def __post_init__(self) -> None:
        if len(self.hand_scale) != 2 or not 0 < self.hand_scale[0] <= self.hand_scale[1]:
            raise ValueError(f"hand_scale must be [lo, hi], 0 < lo <= hi; got {self.hand_scale}")
        if self.length < 1 or self.translation < 0:
            raise ValueError("length must be >= 1 and translation >= 0")


@dataclass(frozen=True)
class Config:
    """``handpose-train prior``.

    Attributes:
        out: run folder ("" = runs/prior-<time>).
        num_points: 41 (sphere centres, the paper) or 21 (joints).
        hidden, latent, sigma, beta, canonical_rotation: of :class:`PoseVAE`.
        kl_warmup_steps: the KL weight rises linearly from 0 to 1 over these updates.
        val_size: held-out poses for the evaluation.
        noise_mm: joint noise of the "implausible" evaluation poses.
    """

    out: str = ""
    num_points: int = 41
    hidden: int = 256
    latent: int = 32
    sigma: float = 0.05
    beta: float = 1.0
    canonical_rotation: bool = True
    kl_warmup_steps: int = 1000
    val_size: int = 2000
    noise_mm: float = 10.0
    data: PoseData = field(default_factory=PoseData)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps=20000, batch_size=256, optimizer="adam",
                                            lr=1e-3, warmup_steps=200, checkpoint_every=5000,
                                            log_every=50))

    def __post_init__(self) -> None:
        if self.num_points not in (21, 41):
            raise ValueError(f"num_points must be 21 or 41; got {self.num_points}")
        if self.kl_warmup_steps < 0 or self.val_size < 2 or self.noise_mm <= 0:
            raise ValueError("kl_warmup_steps >= 0, val_size >= 2 and noise_mm > 0 required")


def sample_poses(sampler: HandSampler, seed: int, indices: np.ndarray, translation: float
                 ) -> torch.Tensor:
    """(N, 21, 3) float32 metres: sampled hands in camera orientation, shifted by up to
    ``translation`` metres per axis; pose i depends on ``(seed, indices[i])`` only."""
    hands = sampler.sample_indexed(seed, indices)
    joints = hands.oriented()
    shift = np.array([sample_rng(seed, int(i), _SHIFT_STREAM).uniform(-1.0, 1.0, 3)
                      for i in indices.tolist()]).reshape(len(indices), 1, 3)
    joints = joints + translation * shift
    return torch.as_tensor(joints, dtype=torch.float32)


class PriorRecipe(Recipe):
    """Trains :class:`PoseVAE` on sampled poses (see the module docstring)."""

    name = "prior"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        d = cfg.data
        self.sampler = HandSampler(SamplerConfig(hand_scale=(d.hand_scale[0], d.hand_scale[1]),
                                                 p_left=0.0))
        self.metrics: dict[str, float] = {}
        self._val: torch.Tensor | None = None

    def build_model(self) -> nn.Module:
        c = self.cfg
        return build_model("pose_vae", num_points=c.num_points, hidden=c.hidden,
                           latent=c.latent, sigma=c.sigma, beta=c.beta,
                           canonical_rotation=c.canonical_rotation)

    def train_dataset(self) -> Dataset[Any]:
        return IndexDataset(self.cfg.data.length)

    def collate(self, samples: list[Any]) -> Any:
        d = self.cfg.data
        return sample_poses(self.sampler, d.seed, np.asarray(samples, np.int64), d.translation)

    def training_step(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        with self.full_precision():
            out = self.model(batch.float())
            warm = self.cfg.kl_warmup_steps
            w_kl = min(1.0, (step + 1) / warm) if warm else 1.0
            nll, kl = out["nll"].mean(), out["kl"].mean()
            loss = nll + self.cfg.beta * w_kl * kl
        return {"loss": loss, "nll": nll.detach(), "kl": kl.detach(),
                "neg_elbo": (nll + self.cfg.beta * kl).detach()}

    def _val_poses(self) -> torch.Tensor:
        if self._val is None:
            d = self.cfg.data
            idx = np.arange(self.cfg.val_size, dtype=np.int64)
            self._val = sample_poses(self.sampler, d.seed + 1, idx, d.translation)
        return self._val

    def evaluate(self, step: int) -> dict[str, float]:
        vae = self.raw_model
        assert isinstance(vae, PoseVAE)
        poses = self._val_poses().to(self.device)
        gen = torch.Generator().manual_seed(12345)
        noisy = poses + torch.randn(poses.shape, generator=gen).to(self.device) * (
            self.cfg.noise_mm / 1000.0)
        clean_e = vae.prior_loss(poses)
        noisy_e = vae.prior_loss(noisy)
        # AUC: P(noisy > clean) over all pairs, by ranks (Mann-Whitney U)
        allv = torch.cat([clean_e, noisy_e]).double()
        ranks = torch.empty_like(allv)
        ranks[allv.argsort()] = torch.arange(1, len(allv) + 1, dtype=allv.dtype,
                                             device=allv.device)
        n = len(clean_e)
        auc = (ranks[n:].sum() - n * (n + 1) / 2) / (n * n)
        self.metrics = {"neg_elbo": float(clean_e.mean()),
                        "neg_elbo_noisy": float(noisy_e.mean()), "auc_noisy": float(auc)}
        return self.metrics

    def on_train_end(self) -> dict[str, Any]:
        c = self.cfg
        path = save_checkpoint(
            self.run_dir / "model.pt", self.raw_model, input_size=3 * c.num_points,
            normalization=IDENTITY_NORMALIZATION,
            training={"recipe": "prior", "config": to_dict(c),
                      "input": "poses (B, 21|41, 3) metres; normalised inside the model"},
            metrics=self.metrics)
        return {"model": str(path)}


def run(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """Train the prior; returns the checkpoint path, the last losses and the metrics."""
    res = train(PriorRecipe(cfg), cfg.train, run_dir)
    return {**res.outputs, "steps": res.steps, "losses": res.losses, "metrics": res.metrics}
