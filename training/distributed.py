"""Multi-process training through ``torchrun``: process group, device, gathers and broadcasts.

``torchrun --nproc_per_node N -m handpose.training.cli RECIPE ...`` (or ``--nnodes`` for
several machines) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init_distributed` reads them and joins the process group (NCCL on
CUDA, Gloo otherwise). Without them everything here is a no-op for a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "init_distributed",
    "dist_info",
    "pick_device",
    "gather_with_grad",
    "all_reduce_mean",
    "broadcast_object",
    "all_gather_object",
    "barrier",
    "shutdown_distributed",
]


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world_size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """The current process group's rank/world size (a single process when not initialised)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
        )
    return DistInfo()


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """Resolve a device name: "auto" = CUDA (this process's GPU), else MPS, else CPU.

    Raises:
        ValueError: a CUDA/MPS device was asked for and is not available.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"train.device={name!r} but CUDA is not available (use cpu/auto)")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"train.device={name!r} but MPS is not available (use cpu/auto)")
    return dev


def init_distributed(device: torch.device | None = None) -> DistInfo:
    """Join the process group described by torchrun's environment variables, once.

    Args:
        device: the device this process trains on (NCCL for CUDA, Gloo otherwise); when None
            the backend follows CUDA availability.
    Returns:
        the :class:`DistInfo`; a single process when ``WORLD_SIZE`` is unset or 1.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return dist_info()
    if not dist.is_initialized():
        cuda = device.type == "cuda" if device is not None else torch.cuda.is_available()
        backend = "nccl" if cuda else "gloo"
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)
    return dist_info()


def shutdown_distributed(timeout_s: float = 60.0) -> None:
    """Leave the process group if one is initialised.

    The ranks meet first (Gloo: for at most ``timeout_s`` seconds, so a rank that died is not
    waited for), so that rank 0, which hosts the rendezvous store, does not leave while another
    rank still talks to it: that peer then aborted ("terminate called without an active
    exception") in about one run in five.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=timeout_s))
        else:
            dist.barrier()
    except RuntimeError:
        pass  # a rank is gone (it failed): leave without it
    finally:
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all processes along dim 0, keeping gradients to every rank.

    The backward pass sums each rank's gradient w.r.t. the gathered tensor and returns this
    rank's slice, so a loss computed on the gathered embeddings (e.g. NT-Xent whose negatives
    span all ranks) trains every rank's encoder as if the whole batch were on one process
    (with DDP's gradient averaging: identical to a single process on the global batch).

    Args:
        x: (B, ...) on this rank; B must be equal on all ranks.
    Returns:
        (world_size * B, ...) in rank order; ``x`` itself for a single process.
    """
    if not _active():
        return x
    return _GatherWithGrad.apply(x)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward: all_reduce(SUM) of the gathered gradient, own slice."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.n = rank, x.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        g = grad.contiguous().clone()
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        return g[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over processes (a new tensor; no gradient)."""
    if not _active():
        return x.detach().clone()
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / dist.get_world_size()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every process (pickled)."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Every process's ``obj`` in rank order (pickled)."""
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait for every process (no-op for one)."""
    if _active():
        dist.barrier()
