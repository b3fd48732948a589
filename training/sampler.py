"""A seeded, resumable batch sampler whose data order is independent of the process count.

Epoch ``e`` shuffles all indices with a generator seeded by ``(seed, e)``. Optimiser update
``j`` of the epoch takes the block ``perm[j*B:(j+1)*B]`` (``B`` the global batch); the block is
cut into ``accum`` chunks of ``world * micro`` samples, and rank ``r`` takes every
``world``-th sample of a chunk starting at ``r`` (DistributedSampler's striding). So the set of
samples of every update is the same for 1 process with accumulation and N processes, and a
run restarted at (epoch, update) continues with exactly the batches it would have seen.
An incomplete last block is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["GlobalBatchSampler"]


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches (lists of dataset indices) of one epoch.

    Args:
        num_samples: dataset length N (>= global_batch).
        global_batch: samples per optimiser update over all processes (B).
        micro_batch: samples per forward pass on one process (m); ``B % (m * world) == 0``.
        world_size, rank: this process's place.
        seed: base seed of the shuffles. shuffle: False keeps the dataset order.
    """

    def __init__(
        self,
        num_samples: int,
        global_batch: int,
        micro_batch: int,
        world_size: int = 1,
        rank: int = 0,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        if global_batch < 1 or micro_batch < 1 or global_batch % (micro_batch * world_size):
            raise ValueError(
                f"global_batch ({global_batch}) must be a positive multiple of micro_batch * "
                f"world_size ({micro_batch} * {world_size})"
            )
        if num_samples < global_batch:
            raise ValueError(f"num_samples ({num_samples}) < global_batch ({global_batch})")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.n, self.B, self.m = num_samples, global_batch, micro_batch
        self.world, self.rank, self.seed, self.shuffle = world_size, rank, seed, shuffle
        self.accum = global_batch // (micro_batch * world_size)
        self.steps_per_epoch = num_samples // global_batch
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch (its shuffle) and the update to start from within it."""
        if not 0 <= start_step <= self.steps_per_epoch:
            raise ValueError(f"start_step must be in [0, {self.steps_per_epoch}], got {start_step}")
        self.epoch, self.start_step = int(epoch), int(start_step)

    def permutation(self) -> torch.Tensor:
        """The epoch's order of all N indices (int64)."""
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g)

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.accum

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.permutation()
        used = perm[: self.steps_per_epoch * self.B].view(self.steps_per_epoch, self.accum, -1)
        mine = used[self.start_step :, :, self.rank :: self.world]  # (steps, accum, m)
        yield from mine.reshape(-1, self.m).tolist()
