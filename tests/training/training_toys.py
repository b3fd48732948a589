"""Tiny recipes for the loop tests (importable by spawned/sub-processes: no pytest imports)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from handpose.training.distributed import gather_with_grad
from handpose.training.recipe import Recipe
from handpose.training.train_config import TrainConfig


class ToyData(Dataset):
    """N deterministic samples: x (4,) and y = A x + b (2,), plus an image-like (3, 8, 8)."""

    def __init__(self, n: int = 32) -> None:
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 4, generator=g)
        a = torch.randn(2, 4, generator=g)
        self.y = self.x @ a.T + 0.5
        self.img = torch.rand(n, 3, 8, 8, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i], "img": self.img[i], "index": torch.tensor(i)}


class ToyNet(nn.Module):
    def __init__(self, bn: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4) if bn else nn.Identity()
        self.fc1 = nn.Linear(4 + 4, 16)
        self.fc2 = nn.Linear(16, 2)
        self.proj = nn.Linear(16, 8)

    def features(self, x: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.bn(self.conv(img))).mean(dim=(2, 3))
        return torch.tanh(self.fc1(torch.cat([x, f], dim=1)))

    def forward(self, x: torch.Tensor, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x, img)
        return self.fc2(h), F.normalize(self.proj(h), dim=1)


class ToyRecipe(Recipe):
    """Regression with a random input jitter (consumes the torch RNG: tests RNG restore).

    ``kind="contrastive"`` adds an NT-Xent-style loss over two deterministic views whose
    embeddings are gathered across ranks with gradient.
    """

    name = "toy"

    def __init__(self, n: int = 32, jitter: float = 0.05, kind: str = "regression") -> None:
        self.n, self.jitter, self.kind = n, jitter, kind
        self.seen: list[int] = []
        self.evals = 0

    def build_model(self) -> nn.Module:
        return ToyNet()

    def train_dataset(self) -> Dataset:
        return ToyData(self.n)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        self.seen.extend(batch["index"].tolist())
        x = batch["x"]
        if self.jitter:
            x = x + self.jitter * torch.randn_like(x)
        if self.kind != "contrastive":
            pred, _ = self.model(x, batch["img"])
            mse = F.mse_loss(pred, batch["y"])
            return {"loss": mse, "mse": mse}
        n = x.shape[0]
        img = batch["img"]
        pred, z = self.model(torch.cat([x, 0.9 * x]), torch.cat([img, img.flip(-1)]))
        mse = F.mse_loss(pred[:n], batch["y"])
        za, zb = gather_with_grad(z[:n]), gather_with_grad(z[n:])
        con = nt_xent_reference(za, zb, 0.5)
        return {"loss": mse + con, "mse": mse, "contrastive": con}

    def evaluate(self, step: int) -> dict[str, float]:
        self.evals += 1
        data = ToyData(self.n)
        with torch.no_grad():
            pred, _ = self.raw_model(data.x, data.img)
        return {"mse": float(F.mse_loss(pred, data.y))}

    def images(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        return {"inputs": batch["img"][:2]}

    def state_dict(self) -> dict[str, Any]:
        return {"evals": self.evals}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.evals = int(state["evals"])


def nt_xent_reference(za: torch.Tensor, zb: torch.Tensor, tau: float) -> torch.Tensor:
    """NT-Xent over 2N anchors of two L2-normalised views (N, D) (a plain reference)."""
    z = torch.cat([za, zb])
    n = za.shape[0]
    sim = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), -math.inf)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


def tiny_cfg(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(
        steps=6, batch_size=8, lr=0.05, optimizer="sgd", amp="off", device="cpu",
        log_every=1, progress=False, seed=3,
    )
    base.update(kw)
    return TrainConfig(**base)


@dataclass(frozen=True)
class ToyDataCfg:
    root: str = ""
    n: int = 32


@dataclass(frozen=True)
class ToyConfig:
    """A recipe config for the CLI tests."""

    out: str = ""
    kind: Literal["regression", "contrastive"] = "regression"
    data: ToyDataCfg = field(default_factory=ToyDataCfg)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2, batch_size=8))


Config = ToyConfig  # the recipe-module interface of the CLI registry


def run(cfg: ToyConfig, run_dir: Path) -> dict[str, Any]:
    from handpose.training.loop import train

    res = train(ToyRecipe(n=cfg.data.n, kind=cfg.kind), cfg.train, run_dir)
    return {"steps": res.steps, "losses": res.losses}


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from handpose.training.state import list_checkpoints, load_state

    return load_state(list_checkpoints(run_dir / "checkpoints")[-1])["model"]


def run_killed(run_dir: str, kill_after: int, resume: str) -> None:
    """Subprocess entry: train, SIGKILL ourselves right after update ``kill_after``."""
    import os
    import signal

    from handpose.training.loop import train

    torch.set_num_threads(1)

    def hook(step: int, _: dict[str, float]) -> None:
        if step == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    cfg = tiny_cfg(checkpoint_every=2, resume=resume, keep_checkpoints=5)
    train(ToyRecipe(), cfg, run_dir, hooks=[hook] if kill_after > 0 else [])


if __name__ == "__main__":
    run_killed(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
