"""benchmarks/methods_peclr.py --quick: every arm end to end on tiny data, resumable.

The whole table (2 pre-trainings, 3 encoders x 4 arms, two evaluation sets) on a width-8
ResNet-18 and generated data; a second start with the same workdir skips every finished arm.
"""

from __future__ import annotations

import json
import math
import re
import runpy
import sys
from pathlib import Path

import pytest
import torch
from training_data import write_freihand

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bench() -> dict[str, object]:
    return runpy.run_path(str(REPO / "benchmarks" / "methods_peclr.py"))


def _rows(text: str) -> list[list[str]]:
    """The fine-tune table's body rows (cells), found by their arm names."""
    out = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 2 and re.match(r"(frozen|fine-tune)", cells[1]):
            out.append(cells)
    return out


def test_quick_run_writes_all_rows_and_resumes(tmp_path: Path, bench: dict[str, object],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    evalset = write_freihand(tmp_path / "eval", n=12, size=96, seed=9)
    results = tmp_path / "RESULTS.md"
    work = tmp_path / "work"
    argv = ["--quick", "--workdir", str(work), "--eval", str(evalset), "--append",
            "--results", str(results)]
    main = bench["main"]
    assert callable(main)
    assert main(argv) == 0
    text = results.read_text()
    assert "PeCLR / SimCLR / no pre-training" in text and "--quick smoke run" in text
    rows = _rows(text)
    assert [(r[0], r[1]) for r in rows] == [
        (enc, arm) for enc in ("none (random init)", "SimCLR", "PeCLR")
        for arm in ("frozen + MLP probe", "fine-tune 1%", "fine-tune 10%", "fine-tune 100%")]
    for r in rows:  # labelled samples follow the label share of the 400 generated samples
        assert int(r[2]) == {"frozen + MLP probe": 400, "fine-tune 1%": 4, "fine-tune 10%": 40,
                             "fine-tune 100%": 400}[r[1]]
        assert int(r[3]) == 4  # the same number of updates in every arm
        metrics = [float(x) for x in r[6:]]
        assert len(metrics) == 8 and all(math.isfinite(x) for x in metrics)
        assert all(0 <= x <= 1 for x in (metrics[3], metrics[7]))  # PCK@0.2
    assert "Claim 1" in text and "Claim 2" in text and not re.search(r"\bnan\b", text)
    # the frozen probe really kept the pre-trained encoder; fine-tuning changed it
    pre = torch.load(work / "pretrain-peclr" / "model.pt", weights_only=True)["state_dict"]
    probe = torch.load(work / "peclr-probe-100" / "model.pt", weights_only=True)["state_dict"]
    ft = torch.load(work / "peclr-finetune-100" / "model.pt", weights_only=True)["state_dict"]
    key = "encoder.conv1.weight"
    assert torch.equal(probe[key], pre[key]) and not torch.equal(ft[key], pre[key])
    # every arm is skipped on a second start: nothing is retrained or re-evaluated
    done = {p: p.stat().st_mtime_ns for p in work.glob("*/done.json")}
    assert len(done) == 14
    evals = {p: p.read_text() for p in work.glob("*/eval.json")}
    capsys.readouterr()
    assert main(argv[:-3]) == 0  # no --append: the results file stays as it is
    assert {p: p.stat().st_mtime_ns for p in work.glob("*/done.json")} == done
    assert {p: p.read_text() for p in work.glob("*/eval.json")} == evals
    assert results.read_text() == text
    assert json.loads((work / "none-finetune-1" / "done.json").read_text())["steps"] == 4
    assert len(_rows(capsys.readouterr().out)) == 12


def test_methods_front_door_forwards(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    front = runpy.run_path(str(REPO / "benchmarks" / "methods.py"))
    monkeypatch.setattr(sys, "argv", ["methods.py"])
    assert front["main"](["peclr", "--help"]) == 0
    assert "--budget-minutes" in capsys.readouterr().out


def test_arm_killed_mid_way_resumes_from_its_checkpoint(tmp_path: Path,
                                                        bench: dict[str, object]) -> None:
    data = write_freihand(tmp_path / "fh", n=16, size=64)
    train_arm = bench["train_arm"]
    assert callable(train_arm)
    over = [f"data.root={data}", "train.batch_size=4", "train.steps=12",
            "train.checkpoint_every=5", "train.resume=auto"]
    run = tmp_path / "arm"

    def kill(step: int, _: dict[str, float]) -> None:
        if step == 7:
            raise KeyboardInterrupt  # as a user's Ctrl-C / a killed process mid-arm

    with pytest.raises(KeyboardInterrupt):
        train_arm("finetune", "tiny", over, run, (kill,))
    assert not (run / "done.json").exists()
    assert json.loads((run / "elapsed.json").read_text())["step"] == 5
    seen: list[int] = []
    out = train_arm("finetune", "tiny", over, run, (lambda step, _: seen.append(step),))
    assert seen == list(range(6, 13))  # continued after the step-5 checkpoint
    assert out["steps"] == 12 and out["samples"] == 48 and Path(out["model"]).is_file()
    assert out["minutes"] > 0
    assert train_arm("finetune", "tiny", over, run) == out  # done: skipped, same record
