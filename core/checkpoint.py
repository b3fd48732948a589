"""Checkpoints: save atomically, load with validation, describe for humans (DESIGN.md).

A checkpoint is one ``torch.save`` dict of plain data and tensors, so it loads with
``torch.load(weights_only=True)`` and never runs code::

    format_version   int (FORMAT_VERSION)
    arch             {"name": registry name, "kwargs": {...}}  (handpose.core.models.registry)
    state_dict       name -> tensor (CPU; float16 when dtype == "float16")
    dtype            "float32" | "float16" (how the floating weights are stored)
    input_size       int, side of the square network input in pixels
    normalization    {"mean": [3], "std": [3]} of [0, 1] RGB
    joint_order      "handpose" (FreiHAND / MediaPipe order, skeleton.JOINT_ORDERS)
    reference_bone   [9, 10]  (skeleton.REFERENCE_BONE)
    training         {"recipe", "config", "data", "steps", ...} plain data
    metrics          {name: number, ...}
    handpose_version str;  created  ISO 8601 UTC time

:func:`load_checkpoint` checks every field and raises :class:`CheckpointError` (a
``ValueError``) with a message a user can act on.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .models.normalization import IMAGENET_NORMALIZATION, check_normalization
from .models.registry import available_models, build_model, get_arch
from .safe_load import CheckpointError, safe_torch_load
from .skeleton import JOINT_ORDERS, REFERENCE_BONE

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "CheckpointMeta",
    "LoadedCheckpoint",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_meta",
    "model_card",
]

FORMAT_VERSION = 1
_REQUIRED = ("format_version", "arch", "state_dict", "input_size", "normalization",
             "joint_order", "reference_bone", "training", "metrics")
_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def _handpose_version() -> str:
    try:
        return version("handpose")
    except PackageNotFoundError:
        return "0.0.0+source"


def _plain(value: Any, where: str) -> Any:
    """Convert to data torch.load(weights_only=True) accepts, or raise naming ``where``."""
    if value is None:
        return None
    for kind in (bool, int, float, str):  # exact builtins (np.float64 subclasses float)
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, PathLike):
        return os.fspath(value)
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        return value.item()  # numpy scalar
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where} keys must be strings; got {k!r}")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    raise ValueError(f"{where} must be plain data (numbers, strings, lists, dicts); got "
                     f"{type(value).__name__}")


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything in a checkpoint except the weights (validated)."""

    format_version: int
    arch: dict[str, Any]
    input_size: int
    normalization: dict[str, tuple[float, float, float]]
    joint_order: str
    reference_bone: tuple[int, int]
    training: dict[str, Any]
    metrics: dict[str, Any]
    dtype: str
    num_parameters: int
    handpose_version: str = "unknown"
    created: str = ""
    path: str = ""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A loaded checkpoint: the model (eval mode, on the requested device) and its meta.

    Unpacks as ``model, meta = load_checkpoint(path)``.
    """

    model: nn.Module
    meta: CheckpointMeta

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.meta))


def save_checkpoint(path: str | PathLike[str], model: nn.Module,
                    arch: Mapping[str, Any] | None = None, input_size: int = 128,
                    normalization: Mapping[str, Any] = IMAGENET_NORMALIZATION,
                    training: Mapping[str, Any] | None = None,
                    metrics: Mapping[str, Any] | None = None, dtype: str = "float32",
                    joint_order: str = "handpose") -> Path:
    """Write a checkpoint atomically (temporary file in the same folder, then os.replace).

    Args:
        path: destination file (``.pt``); its folder is created.
        model: the network; its ``state_dict`` is stored on the CPU.
        arch: ``{"name", "kwargs"}``; default: the model's :func:`get_arch`.
        input_size: side of the square input in pixels (> 0).
        normalization: ``{"mean", "std"}`` (ImageNet by default).
        training: plain data, e.g. ``{"recipe", "config", "data", "steps"}``.
        metrics: plain data, e.g. ``{"epe_mm": 12.3}``.
        dtype: "float32", or "float16" to halve the file for shipping (loads back as
            float32).
        joint_order: a name of ``skeleton.JOINT_ORDERS`` ("handpose").

    Returns:
        the path written.

    Raises:
        ValueError: a bad argument (named), e.g. non-plain data in ``training``.
    """
    arch_d = dict(get_arch(model) if arch is None else arch)
    if set(arch_d) != {"name", "kwargs"} or arch_d["name"] not in available_models():
        raise ValueError(f"arch must be {{'name': <registered model>, 'kwargs': {{...}}}}; "
                         f"got {arch_d!r}")
    if not isinstance(input_size, int) or input_size <= 0:
        raise ValueError(f"input_size must be a positive int (pixels); got {input_size!r}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}; got {dtype!r}")
    if joint_order not in JOINT_ORDERS:
        raise ValueError(f"joint_order must be one of {sorted(JOINT_ORDERS)}; got "
                         f"{joint_order!r}")
    norm = check_normalization(normalization)
    state = {}
    for k, v in model.state_dict().items():
        t = v.detach().to("cpu")
        state[k] = t.to(_DTYPES[dtype]) if t.is_floating_point() else t
    ckpt = {
        "format_version": FORMAT_VERSION,
        "arch": _plain(arch_d, "arch"),
        "state_dict": state,
        "dtype": dtype,
        "input_size": input_size,
        "normalization": {k: list(v) for k, v in norm.items()},
        "joint_order": joint_order,
        "reference_bone": list(REFERENCE_BONE),
        "training": _plain(dict(training or {}), "training"),
        "metrics": _plain(dict(metrics or {}), "metrics"),
        "handpose_version": _handpose_version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as f:
            torch.save(ckpt, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _fail(path: Path, msg: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path}: {msg}")


def _validate(obj: Any, path: Path) -> CheckpointMeta:
    if not isinstance(obj, Mapping):
        raise _fail(path, f"holds a {type(obj).__name__}, not a handpose checkpoint dict")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        hint = ""
        if "format_version" not in obj and any(isinstance(v, Tensor) for v in obj.values()) \
                or "state_dict" in obj and "arch" not in obj:
            hint = (" It looks like bare weights, not a handpose checkpoint: for ResNet / "
                    "PeCLR weights use handpose.core.models.import_peclr_weights.")
        raise _fail(path, f"missing entries {missing}; it was not written by "
                          f"handpose.core.save_checkpoint.{hint}")
    fv = obj["format_version"]
    if not isinstance(fv, int) or isinstance(fv, bool) or fv < 1:
        raise _fail(path, f"format_version must be an int >= 1; got {fv!r}")
    if fv > FORMAT_VERSION:
        raise _fail(path, f"written by a newer handpose (format {fv}, this version reads up "
                          f"to {FORMAT_VERSION}); upgrade handpose to load it")
    arch = obj["arch"]
    if not isinstance(arch, Mapping) or not isinstance(arch.get("name"), str) or \
            not isinstance(arch.get("kwargs"), Mapping):
        raise _fail(path, f"'arch' must be {{'name': str, 'kwargs': dict}}; got {arch!r}")
    if arch["name"] not in available_models():
        raise _fail(path, f"unknown model architecture {arch['name']!r} (this handpose knows "
                          f"{available_models()}); it needs a newer or customised handpose")
    size = obj["input_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise _fail(path, f"'input_size' must be a positive int (pixels); got {size!r}")
    try:
        norm = check_normalization(obj["normalization"])
    except ValueError as e:
        raise _fail(path, str(e)) from None
    if obj["joint_order"] not in JOINT_ORDERS:
        raise _fail(path, f"unknown joint_order {obj['joint_order']!r}; expected one of "
                          f"{sorted(JOINT_ORDERS)}")
    bone = obj["reference_bone"]
    if list(bone) != list(REFERENCE_BONE):
        raise _fail(path, f"reference_bone {list(bone)} differs from this handpose's "
                          f"{list(REFERENCE_BONE)}: its z_rel outputs would be misread")
    for key in ("training", "metrics"):
        if not isinstance(obj[key], Mapping):
            raise _fail(path, f"'{key}' must be a dict; got {type(obj[key]).__name__}")
    sd = obj["state_dict"]
    if not isinstance(sd, Mapping) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise _fail(path, "'state_dict' must map parameter names to tensors")
    dtype = obj.get("dtype", "float32")
    if dtype not in _DTYPES:
        raise _fail(path, f"'dtype' must be one of {sorted(_DTYPES)}; got {dtype!r}")
    stats = ("running_mean", "running_var", "num_batches_tracked")
    n_params = sum(v.numel() for k, v in sd.items() if not k.endswith(stats))
    return CheckpointMeta(
        format_version=fv, arch={"name": arch["name"], "kwargs": dict(arch["kwargs"])},
        input_size=size, normalization=norm, joint_order=str(obj["joint_order"]),
        reference_bone=(int(bone[0]), int(bone[1])), training=dict(obj["training"]),
        metrics=dict(obj["metrics"]), dtype=dtype, num_parameters=int(n_params),
        handpose_version=str(obj.get("handpose_version", "unknown")),
        created=str(obj.get("created", "")), path=str(path),
    )


def read_checkpoint_meta(path: str | PathLike[str]) -> CheckpointMeta:
    """Read and validate a checkpoint's fields without building the model.

    Raises:
        CheckpointError: see :func:`load_checkpoint`.
    """
    p = Path(path)
    return _validate(safe_torch_load(p, what="checkpoint"), p)


def load_checkpoint(path: str | PathLike[str], device: str | torch.device = "cpu"
                    ) -> LoadedCheckpoint:
    """Load, validate and rebuild a checkpoint's model.

    Args:
        path: a file written by :func:`save_checkpoint`.
        device: where to put the model (float32 weights, eval mode).

    Returns:
        :class:`LoadedCheckpoint` (``model, meta = load_checkpoint(path)``).

    Raises:
        CheckpointError: missing file, not a torch file (an image, a text file, ...),
            truncated/corrupt, a pickle that would run code, a missing or malformed entry,
            an unknown architecture, a newer format, missing/unexpected parameters or a
            shape mismatch (the first one is named with both shapes).
    """
    p = Path(path)
    obj = safe_torch_load(p, what="checkpoint")
    meta = _validate(obj, p)
    try:
        model = build_model(meta.arch["name"], **meta.arch["kwargs"])
    except (ValueError, TypeError) as e:
        raise _fail(p, f"cannot build {meta.arch['name']!r} with {meta.arch['kwargs']}: {e}"
                    ) from None
    sd = obj["state_dict"]
    ref = model.state_dict()
    missing = [k for k in ref if k not in sd]
    extra = [k for k in sd if k not in ref]
    if missing or extra:
        raise _fail(p, f"weights do not match {meta.arch['name']}: missing {missing[:5]}, "
                       f"unexpected {extra[:5]}")
    for k, v in ref.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise _fail(p, f"parameter {k!r} has shape {tuple(sd[k].shape)} in the file but "
                           f"{meta.arch['name']} {meta.arch['kwargs']} needs {tuple(v.shape)}")
        if sd[k].is_floating_point() and not bool(torch.isfinite(sd[k]).all()):
            raise _fail(p, f"parameter {k!r} contains NaN or infinite values")
    model.load_state_dict(sd, strict=True)
    model.to(device).eval()
    return LoadedCheckpoint(model=model, meta=meta)


def _fmt(v: Any, width: int = 80) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    s = str(v)
    return s if len(s) <= width else s[:width - 3] + "..."


def model_card(meta: CheckpointMeta | LoadedCheckpoint) -> str:
    """A short human-readable summary (for the app's "load checkpoint" dialog)."""
    m = meta.meta if isinstance(meta, LoadedCheckpoint) else meta
    kw = ", ".join(f"{k}={_fmt(v)}" for k, v in m.arch["kwargs"].items()) or "defaults"
    norm = "ImageNet" if m.normalization == IMAGENET_NORMALIZATION else \
        f"mean {m.normalization['mean']}, std {m.normalization['std']}"
    lines = [
        f"Model: {m.arch['name']} ({kw})",
        f"Size: {m.num_parameters / 1e6:.2f} M parameters, stored as {m.dtype}",
        f"Input: {m.input_size} x {m.input_size} px RGB, {norm} normalisation",
        f"Joints: {m.joint_order} order, reference bone {m.reference_bone[0]}->"
        f"{m.reference_bone[1]}",
    ]
    t = m.training
    if t:
        parts = [f"recipe {t['recipe']}" if "recipe" in t else "",
                 f"{t['steps']} steps" if "steps" in t else "",
                 f"data {_fmt(t['data'])}" if "data" in t else ""]
        lines.append("Training: " + ", ".join(p for p in parts if p) if any(parts)
                     else f"Training: {', '.join(sorted(t))}")
    if m.metrics:
        lines.append("Metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in m.metrics.items()))
    lines.append(f"Format: v{m.format_version}, handpose {m.handpose_version}"
                 + (f", created {m.created}" if m.created else ""))
    return "\n".join(lines)
