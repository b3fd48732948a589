"""The shared loop: exact resume after a kill, accumulation, logging, checkpoints, AMP."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from training_toys import ToyRecipe, final_weights, tiny_cfg

from handpose.training.loop import resolve_amp, to_device, train
from handpose.training.state import list_checkpoints, load_state

HERE = Path(__file__).parent


# identical float reductions in this process and in the subprocess
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs by {(a[k] - b[k]).abs().max().item()}"


def test_resume_after_sigkill_reaches_the_same_weights(tmp_path: Path) -> None:
    full, killed = tmp_path / "full", tmp_path / "killed"
    whole = ToyRecipe()
    train(whole, tiny_cfg(checkpoint_every=2, keep_checkpoints=5), full)

    proc = subprocess.run(
        [sys.executable, str(HERE / "training_toys.py"), str(killed), "3"],
        cwd=HERE, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    # killed after update 3: the last checkpoint is the one of update 2
    assert [p.name for p in list_checkpoints(killed / "checkpoints")] == ["step_00000002.pt"]

    resumed = ToyRecipe()
    res = train(resumed, tiny_cfg(checkpoint_every=2, keep_checkpoints=5, resume="auto"), killed)
    assert res.steps == 6
    _assert_same(final_weights(full), final_weights(killed))
    # the resumed run saw exactly the uninterrupted run's samples of updates 3..6
    assert resumed.seen == whole.seen[2 * 8 :]
    # its intermediate checkpoints equal the uninterrupted ones too (optimizer state included)
    a, b = load_state(full / "checkpoints/step_00000004.pt"), load_state(
        killed / "checkpoints/step_00000004.pt"
    )
    _assert_same(a["model"], b["model"])
    ma, mb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(ma[k]["momentum_buffer"], mb[k]["momentum_buffer"]) for k in ma)


def test_resume_after_an_exception_in_process_with_lars_adam_and_accumulation(
    tmp_path: Path,
) -> None:
    kw = dict(
        optimizer="adam", lars=True, weight_decay=1e-4, lr=0.01, micro_batch_size=4,
        warmup_steps=2, steps=5, checkpoint_every=1, keep_checkpoints=2,
    )
    train(ToyRecipe(), tiny_cfg(**kw), tmp_path / "a")

    class Stop(Exception):
        pass

    def stop(step: int, _: dict[str, float]) -> None:
        if step == 3:
            raise Stop

    with pytest.raises(Stop):
        train(ToyRecipe(), tiny_cfg(**kw), tmp_path / "b", hooks=[stop])
    # keep_checkpoints=2 pruned the older ones
    names = [p.name for p in list_checkpoints(tmp_path / "b/checkpoints")]
    assert names == ["step_00000002.pt", "step_00000003.pt"]
    train(ToyRecipe(), tiny_cfg(**kw, resume=str(tmp_path / "b")), tmp_path / "b")
    _assert_same(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"))


def test_without_rng_restore_the_resumed_run_would_differ(tmp_path: Path) -> None:
    # guards the test above: the jitter really depends on the restored generator state
    kw = dict(checkpoint_every=3, steps=6)
    train(ToyRecipe(), tiny_cfg(**kw), tmp_path / "a")

    def stop(step: int, _: dict[str, float]) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(ToyRecipe(), tiny_cfg(**kw), tmp_path / "b", hooks=[stop])
    state_path = list_checkpoints(tmp_path / "b/checkpoints")[-1]
    state = load_state(state_path)
    state["rng"][0]["torch"] = torch.manual_seed(99).get_state()
    torch.save(state, state_path)
    train(ToyRecipe(), tiny_cfg(**kw, resume="auto"), tmp_path / "b")
    wa, wb = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)


def test_accumulation_equals_one_big_batch(tmp_path: Path) -> None:
    train(ToyRecipe(jitter=0.0), tiny_cfg(steps=3), tmp_path / "big")
    res = train(ToyRecipe(jitter=0.0), tiny_cfg(steps=3, micro_batch_size=2), tmp_path / "acc")
    assert res.plan.accum == 4
    a, b = final_weights(tmp_path / "big"), final_weights(tmp_path / "acc")
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)


def test_logs_losses_lr_images_and_evaluates(tmp_path: Path) -> None:
    recipe = ToyRecipe()
    cfg = tiny_cfg(
        steps=8, warmup_steps=2, eval_every=4, image_every=4, log_every=2, lr=0.1,
        checkpoint_every=0,
    )
    res = train(recipe, cfg, tmp_path)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_lines = [x for x in lines if "train/loss" in x]
    assert [x["step"] for x in train_lines] == [2, 4, 6, 8]
    # lr of update t (0-based) is logged at step t + 1: warm-up 2, cosine over the other 6
    c = lambda t: 0.1 * 0.5 * (1 + math.cos(math.pi * (t - 2) / 6))  # noqa: E731
    expect = {2: 0.1, 4: c(3), 8: c(7)}
    got = {x["step"]: x["opt/lr"] for x in train_lines}
    for s, v in expect.items():
        assert got[s] == pytest.approx(v, rel=1e-9)
    assert train_lines[-1]["train/loss"] < train_lines[0]["train/loss"]
    # the share of each logging window spent waiting for batches (a fraction of the wall time)
    assert all(0 <= x["opt/data_wait_share"] < 1 for x in train_lines)
    # evaluation at update 4 and at the end; metrics logged under eval/
    assert recipe.evals == 2 and [x["step"] for x in lines if "eval/mse" in x] == [4, 8]
    assert res.metrics["mse"] > 0 and res.steps == 8
    # only the final checkpoint (checkpoint_every=0)
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step_00000008.pt"]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0, "scalars": 0})
    ev.Reload()
    assert {"train/loss", "opt/lr", "eval/mse"} <= set(ev.Tags()["scalars"])
    assert [e.step for e in ev.Images("inputs")] == [4, 8]


def test_non_finite_loss_is_reported_with_the_step(tmp_path: Path) -> None:
    class Bad(ToyRecipe):
        def training_step(self, batch, step):  # type: ignore[no-untyped-def]
            out = super().training_step(batch, step)
            return {"loss": out["loss"] * (float("nan") if step == 1 else 1.0)}

    with pytest.raises(FloatingPointError, match="at update 1"):
        train(Bad(), tiny_cfg(), tmp_path)


def test_bad_batch_split_and_tiny_dataset_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of train.micro_batch_size"):
        train(ToyRecipe(), tiny_cfg(micro_batch_size=3), tmp_path)
    with pytest.raises(ValueError, match="fewer than train.batch_size"):
        train(ToyRecipe(n=4), tiny_cfg(), tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        train(ToyRecipe(), tiny_cfg(resume=str(tmp_path / "nowhere")), tmp_path)


def test_bf16_autocast_on_cpu_trains(tmp_path: Path) -> None:
    res = train(ToyRecipe(), tiny_cfg(amp="bf16", steps=4, lr=0.02), tmp_path)
    assert torch.isfinite(torch.tensor(res.losses["loss"]))
    assert resolve_amp("off", torch.device("cpu")) is None
    assert resolve_amp("auto", torch.device("cuda")) is torch.float16
    assert resolve_amp("auto", torch.device("mps")) is None
    assert resolve_amp("auto", torch.device("cpu")) is None
    assert resolve_amp("bf16", torch.device("cpu")) is torch.bfloat16


def test_to_device_moves_nested_batches_and_sets_channels_last() -> None:
    batch = {"img": torch.rand(2, 3, 4, 5), "meta": [torch.zeros(2), "name"], "k": (1,)}
    out = to_device(batch, torch.device("cpu"), channels_last=True)
    assert out["img"].is_contiguous(memory_format=torch.channels_last)
    assert out["meta"][1] == "name" and out["k"] == (1,)
    torch.testing.assert_close(out["img"], batch["img"])


def test_threads_option_sets_torch_threads(tmp_path: Path) -> None:
    from handpose.training.train_config import TrainConfig

    with pytest.raises(ValueError, match="train.threads"):
        TrainConfig(steps=1, threads=-1)
    assert torch.get_num_threads() == 1  # the fixture's
    train(ToyRecipe(), tiny_cfg(steps=1, threads=2), tmp_path)
    assert torch.get_num_threads() == 2
