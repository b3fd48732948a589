"""``handpose-train``: help, presets, overrides, errors that name the problem, run folders."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from handpose.training.cli import main
from handpose.training.config_files import list_presets
from handpose.training.recipes import RECIPES, RecipeEntry, get_recipe, register


@pytest.fixture
def toy_recipe() -> Iterator[str]:
    RECIPES["toy"] = RecipeEntry("toy", "training_toys", "a toy regression", {"kind": "kind"})
    yield "toy"
    del RECIPES["toy"]


def test_help_lists_recipes_and_presets(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("pretrain", "finetune", "eval", "export"):
        assert re.search(rf"^\s+{name}\s+\S", out, re.M), name
    for preset in list_presets():
        assert preset in out


def test_help_runs_as_a_module_without_loading_torch() -> None:
    code = (
        "import sys, runpy; sys.argv = ['handpose-train', '--help']\n"
        "try:\n    runpy.run_module('handpose.training.cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pretrain" in out.stdout and out.stdout.strip().endswith("False")


def test_registry_names_unknown_recipes_and_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="did you mean 'pretrain'"):
        get_recipe("pretrian")
    with pytest.raises(ValueError, match="already registered"):
        register("eval", "x", "y")
    with pytest.raises(SystemExit) as e:
        main(["pretrian"])
    assert e.value.code == 2


def test_print_config_applies_preset_flags_and_overrides(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(["pretrain", "--preset", "paper", "--method", "simclr", "--print-config",
               "train.micro_batch_size=64"])
    assert rc == 0
    cfg = tomllib.loads(capsys.readouterr().out)["pretrain"]
    assert cfg["method"] == "simclr" and cfg["model"]["depth"] == 152
    assert cfg["train"]["batch_size"] == 2048 and cfg["train"]["micro_batch_size"] == 64
    assert cfg["train"]["lars"] is True and cfg["train"]["lr_scaling"] == "sqrt"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pretrain", "--preset", "tiny", "train.lrr=1"], "did you mean 'train.lr'"),
        (["pretrain", "--preset", "tiny", "--method", "peclrr"], "did you mean 'peclr'"),
        (["pretrain", "--preset", "tny"], "did you mean 'tiny'"),
        (["pretrain", "--preset", "tiny"], "data.root is not set"),
        (["finetune", "--preset", "tiny", "data.root=/no/such/folder"],
         "data.root: path /no/such/folder does not exist"),
        (["eval", "--preset", "tiny", "checkpoint=/no/model.pt"], "/no/model.pt does not exist"),
        (["export", "--preset", "tiny"], "checkpoint is not set"),
        (["finetune", "--preset", "tiny", "train.steps=0"], "exactly one of train.steps"),
    ],
)
def test_bad_usage_exits_2_naming_the_problem(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("handpose-train: error: ") and message in err
    assert not (tmp_path / "runs").exists()  # nothing is written for a config that cannot run


def test_a_run_writes_its_folder_config_and_result(
    toy_recipe: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "p.toml"
    preset.write_text("[toy.train]\nsteps = 2\nlog_every = 1\nprogress = false\ndevice = 'cpu'\n"
                      "amp = 'off'\n")
    assert main([toy_recipe, "--preset", str(preset), "--kind", "regression",
                 "train.lr=0.01"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert re.fullmatch(r"toy-\d{8}-\d{6}", run.name)
    saved = tomllib.loads((run / "config.toml").read_text())["toy"]
    assert saved["train"]["lr"] == 0.01 and saved["train"]["steps"] == 2
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == 2 and result["run_dir"] == str(Path("runs") / run.name)
    assert json.loads(capsys.readouterr().out) == result  # the summary is printed as JSON
    # the saved config repeats the run: same preset file, explicit out= folder
    assert main([toy_recipe, "--preset", str(run / "config.toml"), "out=again"]) == 0
    again = json.loads((tmp_path / "again/config.json").read_text())["config"]
    assert again == {**json.loads((run / "config.json").read_text())["config"], "out": "again"}
    # data errors during the run exit 1 with the message (no traceback)
    assert main([toy_recipe, "--preset", str(preset), "data.n=4"]) == 1
    assert "fewer than train.batch_size=8" in capsys.readouterr().err
