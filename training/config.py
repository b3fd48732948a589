"""Configs: frozen dataclasses built from TOML tables and ``key=value`` overrides.

A recipe's config is a frozen dataclass whose fields are scalars (``int``, ``float``, ``bool``,
``str``, ``Path``, ``Literal[...]``, ``X | None``, ``tuple[X, ...]``) or nested config
dataclasses (sections). Keys are dotted paths (``train.lr``). Three layers resolve a config:

1. the dataclass defaults,
2. a preset: the ``[<recipe>]`` table of ``presets/<name>.toml`` (shipped: ``tiny`` for tests,
   ``cpu`` for a laptop, ``paper`` for the papers' settings) or of any TOML file given by path
   (a run's saved ``config.toml`` is such a file, so a run can be repeated from its folder),
3. command-line overrides ``key=value``; the value is converted to the field's type.

Presets, resolution and saving are in :mod:`.config_files`. Unknown keys raise
:class:`ConfigError` with a did-you-mean suggestion (``difflib``); a value of the wrong type
raises it naming the key, the expected type and the value received. TOML has no null: an
optional field is written and read as the string ``"none"``.

Fields declared with :func:`input_path` name data that must exist: :func:`check_input_paths`
raises a :class:`ConfigError` naming the missing path.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

__all__ = [
    "ConfigError",
    "input_path",
    "config_keys",
    "from_dict",
    "to_dict",
    "apply_overrides",
    "parse_overrides",
    "check_input_paths",
]

C = TypeVar("C")
_NONE_WORDS = ("none", "null")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class ConfigError(ValueError):
    """A config key, value, preset or path is wrong; the message says which and what to do."""


def input_path(default: str = "", *, doc: str = "") -> Any:
    """A ``str`` field naming an input file/folder that must exist when non-empty.

    Args:
        default: the default path ("" = not set; the recipe decides whether that is allowed).
        doc: what the path is (shown in errors).
    Returns:
        a ``dataclasses.field`` carrying the metadata :func:`check_input_paths` looks for.
    """
    return dataclasses.field(default=default, metadata={"input_path": True, "doc": doc})


# ---------------------------------------------------------------------------------------------
# introspection


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def config_keys(cls: type) -> dict[str, Any]:
    """All dotted leaf keys of a config class with their types, e.g. ``{"train.lr": float}``."""
    out: dict[str, Any] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if _is_section(tp):
            for k, v in config_keys(tp).items():
                out[f"{f.name}.{k}"] = v
        else:
            out[f.name] = tp
    return out


def _sections(cls: type, prefix: str = "") -> set[str]:
    out: set[str] = set()
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if _is_section(hints[f.name]):
            out.add(prefix + f.name)
            out |= _sections(hints[f.name], prefix + f.name + ".")
    return out


def _suggest(key: str, cls: type) -> str:
    keys = list(config_keys(cls))
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if not close:
        leaf = key.rsplit(".", 1)[-1]
        same_leaf = [k for k in keys if k.rsplit(".", 1)[-1] == leaf]
        close = same_leaf[:1] or difflib.get_close_matches(
            leaf, [k.rsplit(".", 1)[-1] for k in keys], n=1, cutoff=0.7
        )
        if close and close[0] not in keys:
            close = [k for k in keys if k.rsplit(".", 1)[-1] == close[0]][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


# ---------------------------------------------------------------------------------------------
# value conversion


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (a TOML value or a command-line string) to the field type ``tp``."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
            return None
        if value is None:
            return None
        errors = []
        for a in args:
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise bad
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        if isinstance(value, str):
            for c in choices:
                if str(c) == value.strip():
                    return c
            close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{key}: expected one of {_type_name(tp)}, got {value!r}{hint}")
        raise bad
    if origin in (tuple, list):
        (elem, *rest) = typing.get_args(tp)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = tomllib.loads(f"v = {text}")["v"]
                except tomllib.TOMLDecodeError as e:
                    raise ConfigError(f"{key}: cannot read {value!r} as a list ({e})") from e
            else:
                value = [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise bad
        items = [_coerce(v, elem, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                try:
                    f = float(value)
                except ValueError:
                    raise bad from None
                if f.is_integer():
                    return int(f)
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad from None
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if tp is Path:
        if isinstance(value, str | Path):
            return Path(value)
        raise bad
    raise ConfigError(f"{key}: unsupported field type {tp!r} in the config class")


# ---------------------------------------------------------------------------------------------
# building and dumping


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _build(cls: type[C], flat: dict[str, Any], prefix: str = "", base: Any = None) -> C:
    """Instantiate ``cls`` from dotted ``flat`` values over ``base`` (an instance) or defaults."""
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = hints[f.name]
        key = prefix + f.name
        if _is_section(tp):
            if base is not None:
                sub = getattr(base, f.name)
            elif f.default_factory is not dataclasses.MISSING:
                sub = f.default_factory()
            else:
                sub = None
            kwargs[f.name] = _build(tp, flat, key + ".", sub)
        elif key in flat:
            kwargs[f.name] = _coerce(flat[key], tp, key)
        elif base is not None:
            kwargs[f.name] = getattr(base, f.name)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        where = f"[{prefix[:-1]}] " if prefix else ""
        raise ConfigError(f"{where}{e}") from e


def from_dict(cls: type[C], data: Mapping[str, Any], *, source: str = "config") -> C:
    """Build a config from a nested (TOML-like) or dotted mapping, checking every key.

    Args:
        cls: the config dataclass.
        data: ``{"train": {"lr": 0.1}}`` or ``{"train.lr": 0.1}`` (or a mix).
        source: where the data came from, for error messages (a preset path, "overrides").
    Returns:
        an instance of ``cls``; missing keys keep their defaults.
    Raises:
        ConfigError: unknown key (with a suggestion), a value of the wrong type, or a value the
            dataclass's own validation rejects.
    """
    flat = _flatten(data)
    _check_keys(cls, flat, source)
    return _build(cls, flat)


def _check_keys(cls: type, flat: Mapping[str, Any], source: str) -> None:
    keys = config_keys(cls)
    sections = _sections(cls)
    for k in flat:
        if k in sections:
            raise ConfigError(f"{source}: {k!r} is a section; set one of its keys ({k}.<name>)")
        if k not in keys:
            raise ConfigError(f"{source}: unknown key {k!r}{_suggest(k, cls)}")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config as a nested dict of JSON/TOML-able values (Path -> str, tuple -> list)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, tuple | list):
            return [conv(x) for x in v]
        return v

    out = conv(cfg)
    assert isinstance(out, dict)
    return out


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["train.lr=0.1", "out=runs/x"]`` -> ``{"train.lr": "0.1", "out": "runs/x"}``.

    Raises:
        ConfigError: an item without ``=`` or with an empty key; a key given twice.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value (e.g. train.lr=0.01)")
        if key in out:
            raise ConfigError(f"override key {key!r} given twice")
        out[key] = value
    return out


def apply_overrides(cfg: C, overrides: Sequence[str] | Mapping[str, Any]) -> C:
    """A copy of ``cfg`` with ``key=value`` overrides applied (values converted to field types).

    Args:
        cfg: a config instance.
        overrides: ``["train.lr=0.1", ...]`` or a mapping of dotted keys to values.
    Returns:
        the new config (``cfg`` is frozen and left as is).
    """
    ov = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
    _check_keys(type(cfg), ov, "overrides")
    return _build(type(cfg), ov, base=cfg)


def check_input_paths(cfg: Any, prefix: str = "") -> None:
    """Raise :class:`ConfigError` naming the first :func:`input_path` field that does not exist.

    Empty strings are "not set" and pass (the recipe decides whether one is required).
    """
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(v):
            check_input_paths(v, key + ".")
        elif f.metadata.get("input_path") and v:
            if not Path(v).exists():
                doc = f" ({f.metadata['doc']})" if f.metadata.get("doc") else ""
                raise ConfigError(f"{key}: path {Path(v).resolve()} does not exist{doc}")
