"""The one training loop every recipe shares.

:func:`train` runs a :class:`~handpose.training.recipe.Recipe` under a
:class:`~handpose.training.train_config.TrainConfig`: device choice, AMP (fp16 + GradScaler on
CUDA, bf16 autocast on CPUs with native bf16), channels_last, DDP (through ``torchrun``),
gradient accumulation, LARS, warm-up + cosine, checkpoints every N updates with exact resume
(weights, optimiser, schedule, scaler, step, every rank's RNG states, the data position), and
logging (TensorBoard, ``metrics.jsonl``, tqdm, images).

One update = ``accum`` micro-batches per process; each micro-batch's ``"loss"`` is divided by
``accum`` before backward, and DDP averages over processes, so the gradient is that of the
mean loss over the global batch whatever the split.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from .config import to_dict
from .distributed import (
    all_gather_object,
    all_reduce_mean,
    barrier,
    init_distributed,
    pick_device,
)
from .logging import RunLogger
from .optim import WarmupCosine, build_optimizer
from .recipe import Recipe
from .sampler import GlobalBatchSampler
from .state import (
    capture_rng,
    find_checkpoint,
    load_state,
    prune_checkpoints,
    restore_rng,
    save_state,
    seed_everything,
)
from .train_config import BatchPlan, TrainConfig, plan_batches, scaled_lr

__all__ = ["TrainResult", "train", "resolve_amp", "to_device"]

Hook = Callable[[int, dict[str, float]], None]


@dataclass
class TrainResult:
    """What a run did: updates done, the last logged losses and eval metrics, files written."""

    run_dir: Path
    steps: int
    plan: BatchPlan
    losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.amp`` on ``device`` (None = full precision).

    "auto": fp16 (with a GradScaler) on CUDA; full precision on CPU and MPS. bf16 autocast on
    the CPU is available as ``amp="bf16"`` but is not the default: on the development
    machines (AVX512-BF16/AMX reported) a ResNet-18 update ran 2x slower in bf16 than in fp32
    (benchmarks/training.py).
    """
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    return torch.float16 if device.type == "cuda" else None


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move tensors of a (nested dict/list/tuple) batch to ``device``; 4-D tensors optionally
    to channels_last."""
    if isinstance(batch, torch.Tensor):
        t = batch.to(device, non_blocking=device.type == "cuda")
        if channels_last and t.ndim == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device, channels_last) for v in batch)
    return batch


def _epoch_batches(
    loader: DataLoader[Any], sampler: GlobalBatchSampler, gen: torch.Generator, seed: int,
    step: int,
) -> Iterator[Any]:
    epoch, in_epoch = divmod(step, sampler.steps_per_epoch)
    sampler.set_epoch(epoch, in_epoch)
    gen.manual_seed(seed * 7919 + epoch)  # worker seeds; never the global generator
    return iter(loader)


def train(
    recipe: Recipe,
    cfg: TrainConfig,
    run_dir: Path | str,
    hooks: Sequence[Hook] = (),
) -> TrainResult:
    """Train ``recipe`` for ``cfg.steps`` updates (or ``cfg.epochs``), resuming if asked.

    Args:
        recipe: supplies model, data and losses.
        cfg: the train section.
        run_dir: the run folder: ``checkpoints/``, ``tb/``, ``metrics.jsonl`` go there.
        hooks: called on every process after each update (after its checkpoint) with the
            update count and that update's losses (local means).
    Returns:
        a :class:`TrainResult`.
    Raises:
        ValueError: bad batch split / dataset size / resume path; FloatingPointError: a
            non-finite loss without a GradScaler to skip it.
    """
    run_dir = Path(run_dir)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device, int(os.environ.get("LOCAL_RANK", 0)))
    info = init_distributed(device)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
    recipe.device, recipe.dist, recipe.run_dir = device, info, run_dir

    seed_everything(cfg.seed)  # identical initial weights on every rank
    raw: nn.Module = recipe.build_model().to(device)
    channels_last = cfg.channels_last == "on" or (
        cfg.channels_last == "auto" and device.type == "cuda"
    )
    if channels_last:
        raw = raw.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if info.distributed and cfg.sync_bn:
        if device.type != "cuda":
            raise ValueError("train.sync_bn=true needs CUDA (PyTorch's SyncBatchNorm runs on "
                             f"GPUs only; this run is on {device.type})")
        raw = nn.SyncBatchNorm.convert_sync_batchnorm(raw)
    dataset = recipe.train_dataset()
    plan = plan_batches(cfg, len(dataset), info.world_size)  # type: ignore[arg-type]
    opt = build_optimizer(recipe.param_groups(raw, cfg.weight_decay), cfg, scaled_lr(cfg))
    sched = WarmupCosine(opt, plan.total_steps, plan.warmup_steps, cfg.min_lr_ratio, cfg.schedule)
    amp_dtype = resolve_amp(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    ckpt_dir = run_dir / "checkpoints"
    start = 0
    resume_from = find_checkpoint(cfg.resume, run_dir)
    if resume_from is not None:
        state = load_state(resume_from)
        raw.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sched.total, sched.warmup = plan.total_steps, plan.warmup_steps  # a run may be extended
        scaler.load_state_dict(state["scaler"])
        recipe.load_state_dict(state["recipe"])
        start = int(state["step"])
        if int(state["world_size"]) == info.world_size:
            restore_rng(state["rng"][info.rank])
        else:  # data order stays exact (it does not depend on the world size); RNG cannot
            seed_everything(cfg.seed + 1_000 * start + info.rank)
    else:
        seed_everything(cfg.seed + info.rank)  # per-rank augmentation randomness

    model: nn.Module = raw
    if info.distributed:
        model = DistributedDataParallel(
            raw,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.find_unused_parameters,
        )
    recipe.model, recipe.raw_model = model, raw

    sampler = GlobalBatchSampler(
        len(dataset), plan.global_batch, plan.micro, info.world_size, info.rank, cfg.seed  # type: ignore[arg-type]
    )
    gen = torch.Generator()
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=recipe.collate,
        num_workers=cfg.num_workers,
        generator=gen,
        pin_memory=device.type == "cuda",
    )
    autocast = (
        (lambda: torch.autocast(device.type, dtype=amp_dtype))
        if amp_dtype is not None
        else contextlib.nullcontext
    )
    log = RunLogger(run_dir, plan.total_steps, start, enabled=info.is_main, progress=cfg.progress)
    result = TrainResult(run_dir, start, plan)
    sums: dict[str, torch.Tensor] = {}
    n_sum, t0, step = 0, time.perf_counter(), start
    data_s = 0.0  # time waiting for batches (loading, decoding, collating) since the last log
    batches: Iterator[Any] | None = None
    try:
        while step < plan.total_steps:
            if batches is None:
                batches = _epoch_batches(loader, sampler, gen, cfg.seed, step)
            model.train()
            step_losses: dict[str, torch.Tensor] = {}
            for a in range(plan.accum):
                t_data = time.perf_counter()
                batch = to_device(next(batches), device, channels_last)
                data_s += time.perf_counter() - t_data
                sync = (
                    model.no_sync()  # type: ignore[operator]
                    if info.distributed and a < plan.accum - 1
                    else contextlib.nullcontext()
                )
                with sync:
                    with autocast():
                        out = recipe.training_step(batch, step)
                    if "loss" not in out:
                        raise KeyError(f"{type(recipe).__name__}.training_step returned no 'loss'")
                    loss = out["loss"].float()
                    if not scaler.is_enabled() and not torch.isfinite(loss):
                        raise FloatingPointError(f"loss is {loss.item()} at update {step}")
                    scaler.scale(loss / plan.accum).backward()
                for k, v in out.items():
                    step_losses[k] = step_losses.get(k, 0.0) + v.detach().float() / plan.accum
            if cfg.grad_clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
            lrs = sched.set_step(step)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step % plan.steps_per_epoch == 0:
                batches = None  # the epoch's batches are used up
            for k, v in step_losses.items():
                sums[k] = sums.get(k, 0.0) + v
            n_sum += 1
            local = {k: float(v) for k, v in step_losses.items()}

            if step % cfg.log_every == 0 or step == plan.total_steps:
                means = {k: float(all_reduce_mean(v / n_sum)) for k, v in sums.items()}
                dt = time.perf_counter() - t0
                log.scalars(
                    {
                        **{f"train/{k}": v for k, v in means.items()},
                        "opt/lr": lrs[0],
                        "opt/samples_per_s": n_sum * plan.global_batch / max(dt, 1e-9),
                        "opt/data_wait_share": data_s / max(dt, 1e-9),
                    },
                    step,
                )
                log.progress(step, means)
                result.losses = means
                sums, n_sum, t0, data_s = {}, 0, time.perf_counter(), 0.0
            else:
                log.progress(step)
            if info.is_main and cfg.image_every and step % cfg.image_every == 0:
                with torch.no_grad():
                    for tag, img in recipe.images(batch, step).items():
                        log.images(tag, img, step)
            if cfg.eval_every and step % cfg.eval_every == 0 and step < plan.total_steps:
                result.metrics = _evaluate(recipe, raw, step, log, info.is_main)
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or (
                step == plan.total_steps
            ):
                result.checkpoint = _save(
                    ckpt_dir, step, info.world_size, info.is_main, raw, opt, sched, scaler,
                    recipe, cfg, keep=cfg.keep_checkpoints,
                )
            for hook in hooks:
                hook(step, local)
        if start < plan.total_steps or not result.metrics:
            result.metrics = _evaluate(recipe, raw, step, log, info.is_main)
        result.steps = step
        if info.is_main:
            result.outputs = recipe.on_train_end()
        barrier()
    finally:
        log.close()
    return result


def _evaluate(
    recipe: Recipe, raw: nn.Module, step: int, log: RunLogger, is_main: bool
) -> dict[str, float]:
    metrics: dict[str, float] = {}
    if is_main:
        was_training = raw.training
        raw.eval()
        with torch.no_grad():
            metrics = recipe.evaluate(step)
        raw.train(was_training)
        if metrics:
            log.scalars(metrics, step, "eval")
    barrier()
    return metrics


def _save(
    ckpt_dir: Path,
    step: int,
    world: int,
    is_main: bool,
    raw: nn.Module,
    opt: torch.optim.Optimizer,
    sched: WarmupCosine,
    scaler: torch.amp.GradScaler,
    recipe: Recipe,
    cfg: TrainConfig,
    keep: int,
) -> Path:
    rng = all_gather_object(capture_rng())  # every rank's generators, in rank order
    path = ckpt_dir / f"step_{step:08d}.pt"
    if is_main:
        save_state(
            path,
            {
                "step": step,
                "world_size": world,
                "model": raw.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(),
                "recipe": recipe.state_dict(),
                "rng": rng,
                "train_config": to_dict(cfg),
            },
        )
        prune_checkpoints(ckpt_dir, keep)
    barrier()
    return path
