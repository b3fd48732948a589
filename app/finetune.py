"""Annotate > Fine-tune on sessions: the training run as a plan, a command and its progress
(Qt-free; the dialog in :mod:`handpose.app.finetune_dialog` runs it with QProcess).

The app never trains in its own process (DESIGN.md): it runs the ``handpose-train`` CLI::

    handpose-train finetune --preset P data.root=SESSION data.format=session out=RUN
                   [init=CHECKPOINT model.depth=D model.width=W input_size=S] [train.steps=N]
    handpose-train semihand --preset P unlabelled.root=SESSION unlabelled.format=session
                   labelled.root=LABELLED out=RUN [init=... model.*=...] [train.steps=N]

``finetune`` needs labels with 3D joints (the annotation tool's model auto-label, or its
depth-assisted 3D); a session without them can still be used by ``semihand`` as unlabelled
data, next to a labelled set (e.g. a synthetic one). With a current model, its encoder
initialises the run (``init``) and its depth, width and input size are kept.

Several sessions are merged into one new session folder first (``merge_from``, by
:func:`prepare`; :mod:`handpose.app.session_merge`), since a recipe reads one folder.

Progress is read from the run folder, not parsed from the terminal: ``config.json`` (written
before training starts) holds ``train.steps`` and ``metrics.jsonl`` one line per logged
step; at the end ``result.json`` names the new ``model``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FinetunePlan",
    "SessionSummary",
    "summarize_session",
    "choose_recipe",
    "model_overrides",
    "train_command",
    "prepare",
    "read_progress",
    "result_model",
    "RECIPES",
]

#: Recipes the dialog can run: (name, what it needs).
RECIPES = {"finetune": "labels with 3D joints", "semihand": "unlabelled frames + a labelled set"}
_TQDM = re.compile(r"(\d+)/(\d+)\s*\[")


@dataclass(frozen=True)
class SessionSummary:
    """What a session offers for training: frames, labels with 2D/3D joints, done labels."""

    path: str
    frames: int
    labels_2d: int
    labels_3d: int
    done: int


def summarize_session(path: str | os.PathLike[str]) -> SessionSummary:
    """Count a session's frames and labels (DataError if it is not a readable session)."""
    from handpose.core.data.session_reader import SessionReader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = SessionReader(path, skip_bad=True)
    labs = [lab for (i, _), lab in r.labels.items() if r.has_frame(i)]
    return SessionSummary(str(path), len(r), sum(lab.uv is not None for lab in labs),
                          sum(lab.joints3d is not None for lab in labs),
                          sum(lab.done and lab.has_pose for lab in labs))


def choose_recipe(summary: SessionSummary) -> str:
    """``finetune`` when the session has labels with 3D joints, else ``semihand``."""
    return "finetune" if summary.labels_3d > 0 else "semihand"


def model_overrides(checkpoint: str | os.PathLike[str] | None) -> list[str]:
    """``init=`` and the architecture keys that keep a checkpoint's encoder shape.

    Returns [] without a checkpoint or for an ONNX export (no weights to start from).
    Raises CheckpointError for a bad checkpoint.
    """
    if not checkpoint or str(checkpoint).lower().endswith(".onnx"):
        return []
    from handpose.core.checkpoint import read_checkpoint_meta

    meta = read_checkpoint_meta(checkpoint)
    out = [f"init={checkpoint}"]
    m = re.search(r"resnet(\d+)", meta.arch["name"])
    if m:
        out.append(f"model.depth={m.group(1)}")
    if "width" in meta.arch["kwargs"]:
        out.append(f"model.width={int(meta.arch['kwargs']['width'])}")
    out.append(f"input_size={meta.input_size}")
    return out


@dataclass(frozen=True)
class FinetunePlan:
    """One training run.

    Attributes:
        recipe: "finetune" or "semihand".
        session: the session folder.
        out: the run folder (created by the CLI).
        preset: the settings preset ("tiny", "cpu", "paper" or a TOML file).
        steps: training updates (None: the preset's).
        checkpoint: the current model (its encoder initialises the run), or None.
        labelled_root: semihand's labelled set (FreiHAND layout).
        extra: more ``key=value`` overrides.
        merge_from: sessions to merge into ``session`` before the run (empty: ``session``
            is an existing session).
    """

    recipe: str
    session: str
    out: str
    preset: str = "cpu"
    steps: int | None = None
    checkpoint: str | None = None
    labelled_root: str = ""
    extra: tuple[str, ...] = ()
    merge_from: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {sorted(RECIPES)}; got {self.recipe!r}")
        if not self.session:
            raise ValueError("session must name a session folder")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1 or None; got {self.steps}")
        if len(self.merge_from) == 1:
            raise ValueError("merge_from needs two or more sessions (one: use session=)")
        if self.recipe == "semihand" and not self.labelled_root:
            raise ValueError("semihand needs a labelled set (labelled_root), e.g. a synthetic "
                             "FreiHAND-layout folder")

    def overrides(self) -> list[str]:
        """The ``key=value`` arguments of the run."""
        if self.recipe == "finetune":
            out = [f"data.root={self.session}", "data.format=session"]
            sections = ("data",)
        else:
            out = [f"unlabelled.root={self.session}", "unlabelled.format=session",
                   f"labelled.root={self.labelled_root}"]
            sections = ("labelled", "unlabelled")
        # the crops as the tracker shows them to the network: upright, left hands mirrored
        out += [f"{sec}.{key}=true" for sec in sections for key in ("upright", "mirror_left")]
        out.append(f"out={self.out}")
        out += model_overrides(self.checkpoint)
        if self.steps is not None:
            out.append(f"train.steps={self.steps}")
        return out + list(self.extra)


def prepare(plan: FinetunePlan) -> Path:
    """Make the plan's data ready: merge ``merge_from`` into ``session`` when asked (and not
    done yet). Returns the session folder the run reads."""
    target = Path(plan.session)
    if plan.merge_from and not (target / "session.json").is_file():
        from .session_merge import merge_sessions

        merge_sessions(plan.merge_from, target)
    return target


def train_command(plan: FinetunePlan, python: str | None = None) -> list[str]:
    """The command line: ``handpose-train`` installed next to the running interpreter, else
    ``PYTHON -m handpose.training.cli`` (always the latter when ``python`` is given)."""
    script = Path(sys.executable).with_name("handpose-train")
    if python is None and script.is_file():
        head = [str(script)]
    else:
        head = [python or sys.executable, "-m", "handpose.training.cli"]
    return head + [plan.recipe, "--preset", plan.preset, *plan.overrides()]


def _total_steps(run: Path) -> int | None:
    try:
        cfg = json.loads((run / "config.json").read_text())
        return int(cfg["config"]["train"]["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_progress(run_dir: str | os.PathLike[str], output: str = "") -> tuple[int, int | None]:
    """(steps done, total steps or None) of a run, from its folder (module docstring);
    a tqdm bar in ``output`` (the process's stderr) is used when the folder says nothing."""
    run = Path(run_dir)
    total = _total_steps(run)
    step = 0
    try:
        with open(run / "metrics.jsonl", encoding="utf-8") as f:
            for line in f:
                try:
                    step = max(step, int(json.loads(line).get("step", 0)))
                except (ValueError, AttributeError):
                    continue  # a line being written
    except OSError:
        pass
    bars = _TQDM.findall(output)
    if bars:
        n, t = (int(v) for v in bars[-1])
        step, total = max(step, n), total or t
    return step, total


def result_model(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint a finished run wrote (``result.json`` "model"), or None."""
    try:
        res: dict[str, Any] = json.loads((Path(run_dir) / "result.json").read_text())
    except (OSError, ValueError):
        return None
    model = res.get("model")
    if not model:
        return None
    p = Path(model)
    return p if p.is_file() else None
