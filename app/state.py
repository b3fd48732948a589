"""The app's state without Qt: options, what is open, live statistics, settings round trip.

:class:`AppState` is everything the window shows that is not a widget: the view toggles
(:class:`ViewOptions`), the pipeline options (:class:`PipelineOptions`, turned into
``HandPoseEstimator.with_options`` keywords by :meth:`PipelineOptions.estimator_options`),
the open source and model, the intrinsics override, the recording folder, the frame-rate
meters and the plots' histories. Widgets read it; only the GUI thread writes it.

Settings are a flat ``{"group/key": value}`` dict (:meth:`AppState.to_settings`,
:meth:`AppState.apply_settings`); values that come back as strings (QSettings' INI files)
are parsed, and a bad value keeps the default and is reported, never raised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from handpose.core.inference.hand_filter import SMOOTHING_LEVELS, HandSmoothing
from handpose.core.types import FrameResult

from .stats import History, RateMeter

__all__ = [
    "ViewOptions",
    "PipelineOptions",
    "SourceInfo",
    "ModelInfo",
    "AppState",
    "SMOOTHING_LEVELS",
    "PLOT_STAGES",
    "choose_startup_spec",
]

#: Pipeline stages plotted (the keys of ``FrameResult.timings_ms``; others are ignored).
PLOT_STAGES: tuple[str, ...] = ("detect", "crop", "network", "track", "lift", "filter",
                                "correct", "fit", "total")
_MAX_HANDS = 2


def choose_startup_spec(cli_spec: str | None, camera_indices: list[int]) -> str:
    """The source to start on: the command line's, else the first camera, else ``demo``."""
    if cli_spec:
        return cli_spec
    return f"camera:{camera_indices[0]}" if camera_indices else "demo"


@dataclass(frozen=True)
class ViewOptions:
    """What the views draw."""

    overlay: bool = True        # 2D skeleton, joints and labels on the video
    skeleton: bool = True       # 3D skeleton
    spheres: bool = True        # 3D: the 41 spheres of each hand
    point_cloud: bool = True    # 3D: the coloured point cloud (RGB-D sources)
    grid: bool = True           # 3D: the floor grid
    plots: bool = True          # the live plots panel


@dataclass(frozen=True)
class PipelineOptions:
    """Options of the tracking pipeline.

    Attributes:
        correct: biomechanical correction on/off.
        smoothing: strength in [0, 1] (:meth:`HandSmoothing.at_strength
            <handpose.core.inference.hand_filter.HandSmoothing.at_strength>`; 0 = off).
        fit_depth: test-time sphere fit to the depth map (RGB-D sources).
        max_hands: at most this many hands (1 or 2).
        hand_length_m: the user's hand length (wrist crease to middle fingertip, metres) or
            None for the default adult hand.
        hand_bones: (20,) calibrated bone lengths in metres (overrides ``hand_length_m``).
        show_recorded: with no model loaded, replays show what the session holds: its recorded
            poses, else its labels.
        mirror_left: show the network a hand voted left mirrored, as a right hand (the shipped
            model reads right hands only; off for a model trained on both hands).
    """

    correct: bool = True
    smoothing: float = 0.5
    fit_depth: bool = False
    max_hands: int = _MAX_HANDS
    hand_length_m: float | None = None
    hand_bones: tuple[float, ...] | None = None
    show_recorded: bool = True
    mirror_left: bool = True

    def __post_init__(self) -> None:
        HandSmoothing.at_strength(self.smoothing)  # validates
        if self.max_hands not in (1, 2):
            raise ValueError(f"max_hands must be 1 or 2; got {self.max_hands!r}")
        if self.hand_length_m is not None and not 0.10 <= self.hand_length_m <= 0.30:
            raise ValueError(f"hand_length_m must be in [0.10, 0.30] metres or None; got "
                             f"{self.hand_length_m!r}")
        if self.hand_bones is not None:
            b = np.asarray(self.hand_bones, np.float64)
            if b.shape != (20,) or not np.all(np.isfinite(b)) or not np.all(b > 0):
                raise ValueError(f"hand_bones must be 20 positive bone lengths in metres; got "
                                 f"shape {b.shape}")

    def hand_scale(self) -> Any:
        """The ``hand_scale`` argument of the estimator: (20,) metres, or None."""
        if self.hand_bones is not None:
            return np.asarray(self.hand_bones, np.float64)
        if self.hand_length_m is not None:
            from handpose.core.inference.calibration import hand_scale_from_length

            return hand_scale_from_length(float(self.hand_length_m))
        return None

    def estimator_options(self) -> dict[str, Any]:
        """Keywords of ``HandPoseEstimator.with_options`` for these options."""
        return {"correct": self.correct, "smoothing": HandSmoothing.at_strength(self.smoothing),
                "fit_depth": self.fit_depth, "max_hands": self.max_hands,
                "hand_scale": self.hand_scale(), "mirror_left": self.mirror_left}


@dataclass(frozen=True)
class SourceInfo:
    """The open frame source as the window describes it."""

    spec: str = ""
    name: str = ""
    size: tuple[int, int] = (0, 0)
    live: bool = False
    has_depth: bool = False
    has_K: bool = False
    length: int | None = None  # frames of a replay (seekable), None for live sources

    @property
    def seekable(self) -> bool:
        return self.length is not None


@dataclass(frozen=True)
class ModelInfo:
    """The loaded model (or why there is none)."""

    checkpoint: str | None = None   # path, None when no model is loaded
    name: str = ""                  # short name for the status bar
    card: str = ""                  # the model card (Help > About, the load dialog)
    device: str = ""
    error: str = ""                 # why no model is loaded ("" when one is)
    right_hands_only: bool = False  # trained on right hands only: needs left hands mirrored

    @property
    def loaded(self) -> bool:
        return self.checkpoint is not None


def _parse_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return bool(v)
    s = str(v).strip().lower()
    if s in ("true", "1", "yes", "on"):
        return True
    if s in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {v!r}")


def _parse_opt_float(v: Any) -> float | None:
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none")):
        return None
    return float(v)


def _parse_bones(v: Any) -> tuple[float, ...] | None:
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none")):
        return None
    parts = v.split(",") if isinstance(v, str) else list(v)
    return tuple(float(p) for p in parts)


class AppState:
    """Everything the window shows that is not a widget (see the module docstring).

    Args:
        history: samples kept for the live plots.
    """

    def __init__(self, history: int = 300) -> None:
        self.view = ViewOptions()
        self.pipeline = PipelineOptions()
        self.source = SourceInfo()
        self.model = ModelInfo()
        self.device = "auto"
        # CPU threads of the network: leave one core to the GUI thread (a network using every
        # core starves the event loop on small machines; benchmarks/app_latency.py)
        self.model_threads = max(1, (os.cpu_count() or 2) - 1)
        self.K_override: np.ndarray | None = None
        self.saved_checkpoint = ""  # the checkpoint of the last run (settings), to reload
        self.K_file = ""
        self.recordings_dir = ""
        self.last_dirs: dict[str, str] = {}
        self.display_rate = RateMeter(1.0)
        self.model_rate = RateMeter(1.0)
        series = ("display_fps", "model_fps", "latency", *PLOT_STAGES, "confidence_0",
                  "confidence_1")
        self.history = History(series, history)
        self.frames_shown = 0
        self.frames_processed = 0

    # -- live statistics ------------------------------------------------------------------
    def record_result(self, now: float, result: FrameResult, processed: bool,
                      latency_s: float) -> None:
        """Account for one displayed result.

        Args:
            now: display time in seconds (monotonic clock).
            result: what is shown.
            processed: the model ran on this frame (its timings count).
            latency_s: capture-to-display time in seconds.
        """
        self.frames_shown += 1
        self.display_rate.add(now)
        values: dict[str, float] = {"display_fps": self.display_rate.rate(),
                                    "latency": 1000.0 * float(latency_s)}
        if processed:
            self.frames_processed += 1
            self.model_rate.add(now)
            values["model_fps"] = self.model_rate.rate()
            for k, v in result.timings_ms.items():
                if k in PLOT_STAGES:
                    values[k] = float(v)
        for slot, hand in enumerate(result.hands[:2]):
            values[f"confidence_{slot}"] = float(np.mean(hand.confidence))
        self.history.append(now, values)

    def reset_stats(self) -> None:
        """Forget rates and histories (a new source)."""
        self.display_rate.reset()
        self.model_rate.reset()
        self.history.clear()
        self.frames_shown = self.frames_processed = 0

    def fps(self, now: float) -> tuple[float, float]:
        """(display frames/s, model frames/s) over the last second."""
        return self.display_rate.rate(now), self.model_rate.rate(now)

    def status_fields(self, now: float) -> dict[str, str]:
        """Texts of the status bar: source, model, device, fps."""
        shown, model = self.fps(now)
        src = self.source.name or self.source.spec or "no source"
        if self.source.has_depth:
            src += " (RGB-D)"
        if self.model.loaded:
            mdl = self.model.name
        elif self.pipeline.show_recorded and self.source.spec.startswith(("session", "demo")):
            mdl = "no model (showing the session's poses/labels)"
        else:
            mdl = "no model"
        fps = f"{shown:.1f} fps" + (f" (model {model:.1f})" if self.model.loaded else "")
        return {"source": src, "model": mdl, "device": self.model.device or self.device,
                "fps": fps}

    # -- settings -------------------------------------------------------------------------
    def to_settings(self) -> dict[str, Any]:
        """The persistent part as a flat ``{"group/key": value}`` dict."""
        out: dict[str, Any] = {f"view/{f.name}": getattr(self.view, f.name)
                               for f in fields(ViewOptions)}
        p = self.pipeline
        out.update({
            "pipeline/correct": p.correct, "pipeline/smoothing": p.smoothing,
            "pipeline/fit_depth": p.fit_depth, "pipeline/max_hands": p.max_hands,
            "pipeline/hand_length_m": "" if p.hand_length_m is None else p.hand_length_m,
            "pipeline/hand_bones": "" if p.hand_bones is None else
            ",".join(f"{b:.6f}" for b in p.hand_bones),
            "pipeline/show_recorded": p.show_recorded, "pipeline/mirror_left": p.mirror_left,
            "model/checkpoint": self.model.checkpoint or "",
            "model/device": self.device,
            "camera/K_file": self.K_file,
            "recording/dir": self.recordings_dir,
        })
        for k, v in self.last_dirs.items():
            out[f"dirs/{k}"] = v
        return out

    def apply_settings(self, values: dict[str, Any]) -> list[str]:
        """Restore settings saved by :meth:`to_settings`.

        Unknown keys are ignored; a bad value keeps the current one. The checkpoint and
        the intrinsics file are only remembered here (the window loads them).

        Returns:
            one message per rejected value ("pipeline/smoothing: ... (kept 0.5)").
        """
        problems: list[str] = []
        view: dict[str, Any] = {}
        for f in fields(ViewOptions):
            key = f"view/{f.name}"
            if key in values:
                try:
                    view[f.name] = _parse_bool(values[key])
                except ValueError as e:
                    problems.append(f"{key}: {e}")
        self.view = replace(self.view, **view)
        parsers = {"correct": _parse_bool, "smoothing": float, "fit_depth": _parse_bool,
                   "max_hands": int, "hand_length_m": _parse_opt_float,
                   "hand_bones": _parse_bones, "show_recorded": _parse_bool,
                   "mirror_left": _parse_bool}
        for name, parse in parsers.items():
            key = f"pipeline/{name}"
            if key not in values:
                continue
            try:
                self.pipeline = replace(self.pipeline, **{name: parse(values[key])})
            except (ValueError, TypeError) as e:
                problems.append(f"{key}: {e} (kept {getattr(self.pipeline, name)!r})")
        ckpt = values.get("model/checkpoint")
        if ckpt:
            self.saved_checkpoint = str(ckpt)
        dev = str(values.get("model/device", self.device) or "auto")
        if dev in ("auto", "cpu") or dev.startswith("cuda"):
            self.device = dev
        else:
            problems.append(f"model/device: unknown device {dev!r} (kept {self.device!r})")
        self.K_file = str(values.get("camera/K_file", self.K_file) or "")
        self.recordings_dir = str(values.get("recording/dir", self.recordings_dir) or "")
        for k, v in values.items():
            if k.startswith("dirs/") and v:
                self.last_dirs[k[5:]] = str(v)
        return problems
