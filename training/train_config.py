"""The ``train`` section shared by every training recipe: steps, batch, optimiser, AMP, logging."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["TrainConfig", "BatchPlan", "plan_batches", "scaled_lr"]

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class TrainConfig:
    """How to train; every recipe config has one as its ``train`` section.

    Attributes:
        steps: optimiser updates to run (set exactly one of ``steps`` and ``epochs``).
        epochs: passes over the training set; converted to updates with ``batch_size``.
        batch_size: the effective (global) batch of one optimiser update, over all processes
            and accumulation steps.
        micro_batch_size: samples one process puts through the network at once; 0 means
            ``batch_size / world_size`` (no accumulation). ``batch_size`` must be a multiple of
            ``micro_batch_size * world_size``; the quotient is the accumulation count.
        optimizer: the base optimiser.
        lars: wrap the base optimiser in LARS (layer-wise trust ratio; bias/BN excluded).
        lars_eta: LARS trust coefficient. lars_clip: LARC-style clipping of the ratio at 1.
        lr: the learning rate before ``lr_scaling``.
        lr_scaling: "sqrt": lr * sqrt(batch_size) (PeCLR: 1e-4 * sqrt(2048) = 4.5e-3);
            "linear": lr * batch_size / 256; "none": lr as given.
        weight_decay: L2 decay on weights (never on biases or normalisation parameters).
        momentum: SGD momentum. betas: Adam betas.
        schedule: "cosine" (linear warm-up then cosine to ``min_lr_ratio * lr``) or "constant"
            (after the warm-up).
        warmup_steps / warmup_epochs: linear warm-up length (at most one of them non-zero).
        min_lr_ratio: final learning rate as a fraction of the peak (cosine only).
        grad_clip: clip the global gradient norm to this value (0 = off).
        amp: mixed precision: "auto" = fp16 + GradScaler on CUDA, off on CPU and MPS (bf16
            autocast measured 2x slower than fp32 on our CPUs); or force "bf16" (autocast,
            e.g. on CPUs where it pays off), "fp16" (with a GradScaler) or "off".
        channels_last: NHWC memory format for models and 4-D inputs ("auto" = on CUDA only).
        device: "auto" (CUDA, else MPS, else CPU), "cpu", "cuda", "cuda:N", "mps".
        seed: seeds python, numpy and torch (plus the rank for per-process randomness).
        deterministic: ``torch.use_deterministic_algorithms(True)``.
        num_workers: DataLoader worker processes.
        threads: torch intra-op threads of each process (0 = torch's default, one per core).
            On a CPU that other jobs share, 1 is often several times faster than the default
            (measured 3x here at load 4-5: threads that busy-wait for each other lose their
            core to the other jobs).
        checkpoint_every: save the training state every N updates (0 = only at the end).
        keep_checkpoints: how many step checkpoints to keep (the last one is always kept).
        log_every: scalars to TensorBoard/metrics.jsonl every N updates.
        image_every: images (e.g. predicted skeletons) every N updates (0 = never).
        eval_every: the recipe's evaluation every N updates (0 = only at the end).
        sync_bn: convert BatchNorm to SyncBatchNorm under DDP (CUDA only in PyTorch).
        resume: "" (fresh start), "auto" (the latest checkpoint of the run folder, if any), a
            checkpoint file or a run folder.
        progress: a tqdm progress bar on the main process.
        find_unused_parameters: passed to DistributedDataParallel.
    """

    steps: int = 0
    epochs: float = 0.0
    batch_size: int = 32
    micro_batch_size: int = 0
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lars: bool = False
    lars_eta: float = 1e-3
    lars_clip: bool = False
    lr: float = 1e-3
    lr_scaling: Literal["none", "sqrt", "linear"] = "none"
    weight_decay: float = 0.0
    momentum: float = 0.9
    betas: tuple[float, ...] = (0.9, 0.999)
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 0
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0
    grad_clip: float = 0.0
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    channels_last: Literal["auto", "on", "off"] = "auto"
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    num_workers: int = 0
    threads: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    log_every: int = 10
    image_every: int = 0
    eval_every: int = 0
    sync_bn: bool = False
    resume: str = ""
    progress: bool = True
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        if (self.steps > 0) == (self.epochs > 0):
            raise ValueError(
                f"set exactly one of train.steps and train.epochs to a positive value "
                f"(got steps={self.steps}, epochs={self.epochs})"
            )
        if self.steps < 0 or self.epochs < 0:
            raise ValueError("train.steps and train.epochs must be >= 0")
        if self.batch_size < 1:
            raise ValueError(f"train.batch_size must be >= 1, got {self.batch_size}")
        if self.threads < 0:
            raise ValueError(f"train.threads must be >= 0 (0 = default), got {self.threads}")
        if self.micro_batch_size < 0:
            raise ValueError(f"train.micro_batch_size must be >= 0, got {self.micro_batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"train.lr must be a positive number, got {self.lr}")
        if self.weight_decay < 0 or self.lars_eta <= 0:
            raise ValueError("train.weight_decay must be >= 0 and train.lars_eta > 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"train.betas must be two numbers in [0, 1), got {self.betas}")
        if self.warmup_steps < 0 or self.warmup_epochs < 0:
            raise ValueError("train.warmup_steps and train.warmup_epochs must be >= 0")
        if self.warmup_steps > 0 and self.warmup_epochs > 0:
            raise ValueError("set at most one of train.warmup_steps and train.warmup_epochs")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.grad_clip < 0:
            raise ValueError(f"train.grad_clip must be >= 0, got {self.grad_clip}")
        if not _DEVICE.match(self.device):
            raise ValueError(
                f"train.device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}"
            )
        for name in ("num_workers", "checkpoint_every", "image_every", "eval_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.log_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("train.log_every and train.keep_checkpoints must be >= 1")


@dataclass(frozen=True)
class BatchPlan:
    """How one optimiser update is split: ``global_batch = micro * accum * world``."""

    global_batch: int
    micro: int
    accum: int
    world: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int


def plan_batches(cfg: TrainConfig, dataset_len: int, world_size: int) -> BatchPlan:
    """Resolve micro-batch, accumulation, epoch length and step counts.

    Args:
        cfg: the train section.
        dataset_len: samples in the training set (> 0).
        world_size: number of processes.
    Raises:
        ValueError: the batch does not split evenly, or the dataset is smaller than one batch.
    """
    b = cfg.batch_size
    micro = cfg.micro_batch_size or b // world_size
    if micro < 1 or b % (micro * world_size):
        raise ValueError(
            f"train.batch_size={b} must be a multiple of train.micro_batch_size * world_size = "
            f"{cfg.micro_batch_size or '(batch_size / world_size)'} * {world_size}"
        )
    if dataset_len < b:
        raise ValueError(
            f"the training set has {dataset_len} samples, fewer than train.batch_size={b}"
        )
    spe = dataset_len // b
    total = cfg.steps or max(1, math.ceil(cfg.epochs * spe))
    warm = cfg.warmup_steps or round(cfg.warmup_epochs * spe)
    return BatchPlan(b, micro, b // (micro * world_size), world_size, spe, total, min(warm, total))


def scaled_lr(cfg: TrainConfig) -> float:
    """The peak learning rate after ``lr_scaling`` with the effective batch ``batch_size``."""
    if cfg.lr_scaling == "sqrt":
        return cfg.lr * math.sqrt(cfg.batch_size)
    if cfg.lr_scaling == "linear":
        return cfg.lr * cfg.batch_size / 256
    return cfg.lr
