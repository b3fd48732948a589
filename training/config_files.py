"""Preset files, config resolution (defaults <- preset <- overrides) and the saved run config.

Shipped presets are ``presets/<name>.toml`` (package data): ``tiny`` (tests, seconds), ``cpu``
(a laptop, about an hour), ``paper`` (the papers' settings). A preset file has one table per
recipe (``[pretrain]``, ``[pretrain.train]``, ...); a run's saved ``config.toml`` has the same
shape, so it is a preset that repeats the run.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from .config import ConfigError, apply_overrides, from_dict, to_dict

__all__ = [
    "list_presets",
    "preset_path",
    "load_preset",
    "resolve_config",
    "dumps_toml",
    "save_config",
]

C = TypeVar("C")


def _preset_dir() -> Any:
    return resources.files("handpose.training") / "presets"


def list_presets() -> list[str]:
    """Names of the shipped presets (``presets/*.toml``), sorted."""
    return sorted(p.name[:-5] for p in _preset_dir().iterdir() if p.name.endswith(".toml"))


def preset_path(name: str | Path) -> Path:
    """The TOML file of a shipped preset name, or ``name`` itself when it is a file path.

    Raises:
        ConfigError: neither a shipped preset nor an existing file (lists the presets).
    """
    p = Path(name)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"preset file {p} does not exist")
        return p
    names = list_presets()
    if str(name) not in names:
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown preset {str(name)!r} (presets: {', '.join(names)}){hint}")
    return Path(str(_preset_dir() / f"{name}.toml"))


def load_preset(recipe: str, preset: str | Path) -> dict[str, Any]:
    """The ``[<recipe>]`` table of a preset file (an empty dict when the file has none)."""
    path = preset_path(preset)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"preset {path}: not valid TOML ({e})") from e
    table = data.get(recipe, {})
    if not isinstance(table, dict):
        raise ConfigError(f"preset {path}: [{recipe}] must be a table")
    return table


def resolve_config(
    cls: type[C],
    recipe: str,
    preset: str | Path | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> C:
    """Defaults <- preset ``[recipe]`` table <- overrides; every key and value checked.

    Args:
        cls: the recipe's config dataclass.
        recipe: the recipe name (the table read from the preset).
        preset: a shipped preset name, a TOML path, or None for the dataclass defaults.
        overrides: ``key=value`` strings or a mapping of dotted keys.
    """
    table = load_preset(recipe, preset) if preset is not None else {}
    cfg = from_dict(cls, table, source=f"preset {preset} [{recipe}]")
    return apply_overrides(cfg, overrides) if overrides else cfg



# ---------------------------------------------------------------------------------------------
# saving


def _toml_value(v: Any) -> str:
    if v is None:
        return '"none"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ConfigError(f"cannot write {v!r} ({type(v).__name__}) to TOML")


def dumps_toml(data: Mapping[str, Any], table: str = "") -> str:
    """A nested dict as TOML text (scalars first, then sub-tables); ``None`` -> ``"none"``."""
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
    subs = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    if table and (scalars or not subs):
        lines.append(f"[{table}]")
    for k, v in scalars.items():
        lines.append(f"{k} = {_toml_value(v)}")
    for k, v in subs.items():
        if lines:
            lines.append("")
        lines.append(dumps_toml(v, f"{table}.{k}" if table else k).rstrip("\n"))
    return "\n".join(lines) + "\n"


def save_config(cfg: Any, recipe: str, run_dir: Path) -> tuple[Path, Path]:
    """Write the resolved config as ``config.toml`` (a valid preset) and ``config.json``.

    Args:
        cfg: the resolved config instance.
        recipe: the recipe name: the TOML table name, and a key of the JSON file.
        run_dir: the run folder (created if needed).
    Returns:
        (toml_path, json_path).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    d = to_dict(cfg)
    toml_path, json_path = run_dir / "config.toml", run_dir / "config.json"
    toml_path.write_text(dumps_toml({recipe: d}))
    json_path.write_text(json.dumps({"recipe": recipe, "config": d}, indent=2) + "\n")
    return toml_path, json_path
