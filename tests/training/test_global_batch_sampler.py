"""The resumable batch sampler: same samples per update for any process count, exact restart."""

from __future__ import annotations

import pytest

from handpose.training.sampler import GlobalBatchSampler


def _updates(n: int, B: int, m: int, world: int, epoch: int = 0, start: int = 0) -> list[set[int]]:
    """The set of samples of every update of an epoch, over all ranks and micro-batches."""
    per_rank = []
    for r in range(world):
        s = GlobalBatchSampler(n, B, m, world, r, seed=7)
        s.set_epoch(epoch, start)
        per_rank.append(list(s))
        assert len(per_rank[-1]) == len(s)
        assert all(len(b) == m for b in per_rank[-1])
    accum = B // (m * world)
    steps = len(per_rank[0]) // accum
    return [
        {i for r in range(world) for b in per_rank[r][u * accum : (u + 1) * accum] for i in b}
        for u in range(steps)
    ]


def test_every_split_of_the_global_batch_sees_the_same_samples_per_update() -> None:
    ref = _updates(50, 8, 8, 1)
    assert len(ref) == 6 and all(len(u) == 8 for u in ref)
    assert _updates(50, 8, 4, 1) == ref  # accumulation 2
    assert _updates(50, 8, 4, 2) == ref  # two processes
    assert _updates(50, 8, 1, 4) == ref  # four processes, accumulation 2
    # no sample twice within an epoch, the incomplete last block (2 samples) dropped
    assert len(set().union(*ref)) == 48


def test_restart_mid_epoch_continues_with_the_same_batches() -> None:
    s = GlobalBatchSampler(40, 8, 4, 1, 0, seed=1)
    s.set_epoch(3)
    full = list(s)
    s.set_epoch(3, start_step=2)
    assert list(s) == full[2 * 2 :]
    assert _updates(40, 8, 2, 2, epoch=3, start=2) == _updates(40, 8, 2, 2, epoch=3)[2:]


def test_epochs_shuffle_differently_and_reproducibly() -> None:
    a = GlobalBatchSampler(30, 6, 6, seed=0)
    a.set_epoch(0)
    e0 = list(a)
    a.set_epoch(1)
    e1 = list(a)
    b = GlobalBatchSampler(30, 6, 6, seed=0)
    b.set_epoch(1)
    assert e0 != e1 and list(b) == e1
    c = GlobalBatchSampler(12, 6, 3, shuffle=False)
    assert list(c) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="multiple of micro_batch"):
        GlobalBatchSampler(10, 6, 4)
    with pytest.raises(ValueError, match="num_samples"):
        GlobalBatchSampler(3, 4, 4)
    with pytest.raises(ValueError, match="rank"):
        GlobalBatchSampler(10, 4, 2, world_size=2, rank=2)
    s = GlobalBatchSampler(10, 4, 4)
    with pytest.raises(ValueError, match="start_step"):
        s.set_epoch(0, 5)
