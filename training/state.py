"""Training-state checkpoints of the loop: save atomically, find the latest, RNG capture/restore.

A training-state file (``<run>/checkpoints/step_00000100.pt``) is one ``torch.save`` dict that
loads with ``weights_only=True``: ``format``, ``version``, ``step``, ``world_size``, ``model``,
``optimizer``, ``scheduler``, ``scaler``, ``recipe`` (the recipe's own state), ``rng`` (one
entry per rank: python, numpy, torch and CUDA generator states) and ``train_config``. It is
for resuming a run; the deployable model a recipe writes at the end is a core checkpoint
(``handpose.core.checkpoint``).
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "STATE_FORMAT",
    "seed_everything",
    "capture_rng",
    "restore_rng",
    "save_state",
    "load_state",
    "list_checkpoints",
    "find_checkpoint",
    "prune_checkpoints",
]

STATE_FORMAT = "handpose-train-state"
_VERSION = 1
_NAME = re.compile(r"^step_(\d{8})\.pt$")


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the legacy global generator others may use)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """This process's generator states in a form ``torch.load(weights_only=True)`` accepts."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "python": [version, list(mt), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, state: dict[str, Any]) -> Path:
    """Write a training state atomically (temporary file + rename): a crash leaves no torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save({"format": STATE_FORMAT, "version": _VERSION, **state}, tmp)
    os.replace(tmp, path)
    return path


def load_state(path: Path) -> dict[str, Any]:
    """Load and check a training state.

    Raises:
        ValueError: the file is not a handpose training state (names the path).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a bad file
        raise ValueError(f"{path}: cannot read the training state ({e})") from e
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: not a handpose training state (format {STATE_FORMAT!r})")
    if state.get("version") != _VERSION:
        raise ValueError(f"{path}: training-state version {state.get('version')} != {_VERSION}")
    return state


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """``step_*.pt`` files of a folder, oldest step first."""
    if not ckpt_dir.is_dir():
        return []
    return sorted(p for p in ckpt_dir.iterdir() if _NAME.match(p.name))


def find_checkpoint(resume: str, run_dir: Path) -> Path | None:
    """Resolve ``train.resume``: "" -> None; "auto" -> the run's latest (or None); a run folder
    -> its latest; a file -> itself.

    Raises:
        ValueError: a given path does not exist or a given folder holds no checkpoint.
    """
    if not resume:
        return None
    if resume == "auto":
        found = list_checkpoints(run_dir / "checkpoints")
        return found[-1] if found else None
    p = Path(resume)
    if p.is_file():
        return p
    if p.is_dir():
        found = list_checkpoints(p / "checkpoints") or list_checkpoints(p)
        if not found:
            raise ValueError(f"train.resume: no step_*.pt checkpoint in {p.resolve()}")
        return found[-1]
    raise ValueError(f"train.resume: path {p.resolve()} does not exist")


def prune_checkpoints(ckpt_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest step checkpoints."""
    for p in list_checkpoints(ckpt_dir)[:-keep]:
        p.unlink(missing_ok=True)
