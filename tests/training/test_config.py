"""Config mechanism: types from strings, dotted overrides, suggestions, presets, save/load."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from handpose.training.config import (
    ConfigError,
    apply_overrides,
    check_input_paths,
    config_keys,
    from_dict,
    input_path,
    parse_overrides,
    to_dict,
)
from handpose.training.config_files import (
    dumps_toml,
    list_presets,
    load_preset,
    preset_path,
    resolve_config,
    save_config,
)
from handpose.training.train_config import TrainConfig


@dataclass(frozen=True)
class Data:
    root: str = input_path("", doc="the images")
    sizes: tuple[int, ...] = (64, 128)
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"data.fraction must be in (0, 1], got {self.fraction}")


@dataclass(frozen=True)
class Cfg:
    method: Literal["peclr", "simclr"] = "peclr"
    name: str = "x"
    limit: int | None = None
    where: Path = Path("runs")
    data: Data = field(default_factory=Data)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=10, lr=0.5))


def test_keys_are_dotted_and_typed() -> None:
    keys = config_keys(Cfg)
    assert keys["train.lr"] is float and keys["data.sizes"] == tuple[int, ...]
    assert "data" not in keys and "train.betas" in keys


def test_overrides_convert_strings_to_field_types() -> None:
    cfg = apply_overrides(
        Cfg(),
        ["train.lr=1e-4", "train.steps=2_000", "train.lars=yes", "limit=7", "method=simclr",
         "data.sizes=32,48", "where=/tmp/r", "train.betas=[0.8, 0.9]", "name=a=b"],
    )
    assert cfg.train.lr == 1e-4 and cfg.train.steps == 2000 and cfg.train.lars is True
    assert cfg.limit == 7 and cfg.method == "simclr" and cfg.data.sizes == (32, 48)
    assert cfg.where == Path("/tmp/r") and cfg.train.betas == (0.8, 0.9) and cfg.name == "a=b"
    assert apply_overrides(cfg, ["limit=none"]).limit is None
    # untouched keys keep the base values, including a non-default section default
    assert cfg.train.batch_size == 32 and apply_overrides(Cfg(), ["name=y"]).train.lr == 0.5


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("train.lrr=1", r"unknown key 'train.lrr'; did you mean 'train.lr'\?"),
        ("lr=1", r"unknown key 'lr'; did you mean 'train.lr'\?"),
        ("dta.root=x", r"did you mean 'data.root'\?"),
        ("train.steps=ten", r"train.steps: expected int, got 'ten'"),
        ("train.lars=maybe", r"train.lars: expected bool"),
        ("method=peclrr", r"expected one of 'peclr' \| 'simclr', got 'peclrr'; did you mean"),
        ("train=3", r"'train' is a section"),
        ("data.fraction=2", r"\[data\] data.fraction must be in \(0, 1\]"),
        ("train.epochs=3", r"exactly one of train.steps and train.epochs"),
        ("novalue", r"not key=value"),
    ],
)
def test_bad_overrides_name_the_key_and_the_problem(item: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        apply_overrides(Cfg(), [item])


def test_duplicate_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        parse_overrides(["a=1", "a=2"])


def test_toml_values_are_checked_like_strings() -> None:
    cfg = from_dict(Cfg, {"train": {"lr": 1, "steps": 3.0}, "data.sizes": [1, 2]})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float) and cfg.train.steps == 3
    assert cfg.data.sizes == (1, 2)
    with pytest.raises(ConfigError, match="train.steps: expected int, got 2.5"):
        from_dict(Cfg, {"train": {"steps": 2.5}})
    with pytest.raises(ConfigError, match="train.lars: expected bool, got 1"):
        from_dict(Cfg, {"train": {"lars": 1}})


def test_save_writes_a_toml_preset_and_json_that_load_back(tmp_path: Path) -> None:
    cfg = apply_overrides(Cfg(), ["limit=3", "train.lr=0.25", 'name=q"uote', "data.sizes=5"])
    toml_path, json_path = save_config(cfg, "toy", tmp_path)
    again = resolve_config(Cfg, "toy", toml_path)
    assert again == cfg
    assert json.loads(json_path.read_text())["config"] == to_dict(cfg)
    none_cfg = resolve_config(Cfg, "toy", save_config(Cfg(), "toy", tmp_path / "b")[0])
    assert none_cfg.limit is None
    text = dumps_toml({"toy": to_dict(cfg)})
    assert tomllib.loads(text)["toy"]["train"]["lr"] == 0.25


def test_shipped_presets_exist_and_unknown_names_are_suggested(tmp_path: Path) -> None:
    assert {"tiny", "cpu", "paper"} <= set(list_presets())
    assert preset_path("tiny").is_file()
    with pytest.raises(ConfigError, match=r"unknown preset 'tny'.*did you mean 'tiny'"):
        preset_path("tny")
    with pytest.raises(ConfigError, match="does not exist"):
        preset_path(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[toy\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_preset("toy", bad)
    p = tmp_path / "p.toml"
    p.write_text("[toy]\nname = 'p'\n[toy.train]\nlr = 0.125\nstep = 4\n")
    with pytest.raises(ConfigError, match=r"preset .* unknown key 'train.step'; did you mean"):
        resolve_config(Cfg, "toy", p)


def test_preset_then_overrides_take_precedence(tmp_path: Path) -> None:
    p = tmp_path / "p.toml"
    p.write_text("[toy]\nname = 'p'\n[toy.train]\nlr = 0.125\n[other]\nname = 'z'\n")
    cfg = resolve_config(Cfg, "toy", p, ["train.lr=0.5"])
    assert (cfg.name, cfg.train.lr, cfg.train.steps) == ("p", 0.5, 10)
    assert resolve_config(Cfg, "absent", p) == Cfg()


def test_missing_input_path_is_named(tmp_path: Path) -> None:
    check_input_paths(Cfg())  # "" = not set
    check_input_paths(apply_overrides(Cfg(), [f"data.root={tmp_path}"]))
    with pytest.raises(ConfigError, match=r"data.root: path .*nowhere does not exist \(the imag"):
        check_input_paths(apply_overrides(Cfg(), [f"data.root={tmp_path / 'nowhere'}"]))


@pytest.mark.parametrize("preset", ["tiny", "cpu", "paper"])
def test_every_recipe_section_of_the_shipped_presets_resolves(preset: str) -> None:
    """A preset value that its recipe's Config refuses (e.g. a crop size the model cannot
    take) is found here, not an hour into a benchmark."""
    from handpose.training.config_files import resolve_config
    from handpose.training.recipes import RECIPES

    names = [n for n in RECIPES if load_preset(n, preset)]
    assert {"pretrain", "finetune", "semihand", "dual", "crossvae"} <= set(names)
    for name in names:
        resolve_config(RECIPES[name].load().Config, name, preset)
