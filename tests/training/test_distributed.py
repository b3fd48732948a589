"""DDP on two CPU processes (Gloo) equals one process on the same global batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from training_toys import ToyRecipe, final_weights, nt_xent_reference, tiny_cfg

from handpose.training.distributed import DistInfo, gather_with_grad, pick_device
from handpose.training.loop import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gather_check(rank: int, world: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    za = torch.nn.functional.normalize(torch.randn(2 * world, 5, generator=g), dim=1)
    zb = torch.nn.functional.normalize(torch.randn(2 * world, 5, generator=g), dim=1)
    mine_a = za[2 * rank : 2 * rank + 2].clone().requires_grad_(True)
    mine_b = zb[2 * rank : 2 * rank + 2].clone().requires_grad_(True)
    loss = nt_xent_reference(gather_with_grad(mine_a), gather_with_grad(mine_b), 0.5)
    loss.backward()
    assert mine_a.grad is not None and mine_b.grad is not None
    return {"a": mine_a.grad, "b": mine_b.grad, "loss": loss.detach()}


def _worker(rank: int, world: int, port: int, run_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
        WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from handpose.training.distributed import shutdown_distributed

    recipe = ToyRecipe(jitter=0.0, kind="contrastive")
    try:
        train(recipe, tiny_cfg(steps=4, micro_batch_size=4, checkpoint_every=0), run_dir)
        out = {"seen": sorted(recipe.seen), **_gather_check(rank, world)}
        torch.save(out, Path(run_dir) / f"rank{rank}.pt")
    finally:
        shutdown_distributed()


def test_gather_with_grad_is_identity_for_one_process() -> None:
    x = torch.randn(3, 2, requires_grad=True)
    assert gather_with_grad(x) is x
    assert DistInfo().is_main and not DistInfo().distributed
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        if not torch.cuda.is_available():
            pick_device("cuda")
        else:
            raise ValueError("CUDA is not available (skipped on a GPU machine)")


def test_ddp_two_processes_match_one_process_with_contrastive_gather(tmp_path: Path) -> None:
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    torch.set_num_threads(1)
    one = ToyRecipe(jitter=0.0, kind="contrastive")
    res = train(one, tiny_cfg(steps=4, checkpoint_every=0), single)
    assert res.plan.accum == 1 and res.plan.micro == 8

    world = 2
    mp.spawn(_worker, args=(world, _free_port(), str(ddp)), nprocs=world)
    w1, w2 = final_weights(single), final_weights(ddp)
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-5, atol=1e-6, msg=f"parameter {k}")
    # the update really moved the weights, so the comparison is not trivially equal
    init = ToyRecipe().build_model
    torch.manual_seed(3)
    w0 = init().state_dict()
    assert max((w1[k] - w0[k]).abs().max().item() for k in w1) > 1e-3
    # the two ranks saw disjoint halves of exactly the samples the single process saw
    got = [torch.load(ddp / f"rank{r}.pt") for r in range(world)]
    s0, s1 = got[0]["seen"], got[1]["seen"]
    assert not set(s0) & set(s1)
    assert sorted(s0 + s1) == sorted(one.seen)

    # gather_with_grad on its own: every rank computes the full loss on gathered embeddings;
    # the gradient of its own rows is the sum over ranks = world * the one-process gradient.
    g = torch.Generator().manual_seed(0)
    za = torch.nn.functional.normalize(torch.randn(4, 5, generator=g), dim=1).requires_grad_(True)
    zb = torch.nn.functional.normalize(torch.randn(4, 5, generator=g), dim=1).requires_grad_(True)
    ref = nt_xent_reference(za, zb, 0.5)
    ref.backward()
    assert za.grad is not None and zb.grad is not None
    for r in range(world):
        torch.testing.assert_close(got[r]["loss"], ref.detach())
        torch.testing.assert_close(got[r]["a"], world * za.grad[2 * r : 2 * r + 2])
        torch.testing.assert_close(got[r]["b"], world * zb.grad[2 * r : 2 * r + 2])
