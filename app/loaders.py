"""Opening what the window uses: models and frame sources (Qt-free, run in worker threads).

:func:`open_model` validates a checkpoint (its model card for the dialogs) and builds the
:class:`~handpose.core.inference.estimator.HandPoseEstimator`; :func:`open_app_source` opens
a source spec the way the app plays it (replays paced in real time, the demo looping) and
describes it as a :class:`~handpose.app.state.SourceInfo`. Both raise errors whose message a
user can act on; the window shows them in a dialog.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from handpose.core.data.sources import FrameSource, open_source, parse_spec

from .state import ModelInfo, SourceInfo

__all__ = ["open_model", "describe_checkpoint", "open_app_source", "describe_source",
           "ModelLoadError"]


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why (and how to fix it)."""


def describe_checkpoint(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Validate a checkpoint (or ONNX export) and return (short name, model card).

    Raises:
        ModelLoadError: a missing, unreadable, corrupt or incompatible file (the message
            names it and the cause).
    """
    name, card, _right_only = _read_checkpoint(path)
    return name, card


def _read_checkpoint(path: str | os.PathLike[str]) -> tuple[str, str, bool]:
    """(short name, model card, trained on right hands only) of a checkpoint or ONNX export,
    from one read of its metadata (an export's training is not known: False)."""
    from handpose.core.checkpoint import model_card, read_checkpoint_meta
    from handpose.core.safe_load import CheckpointError

    p = Path(path)
    if p.suffix.lower() == ".onnx":
        if not p.is_file():
            raise ModelLoadError(f"{p}: no such file")
        return p.name, f"ONNX model {p}\n(an export: its training metadata is not stored " \
                       "in the .onnx file)", False
    try:
        meta = read_checkpoint_meta(p)
    except CheckpointError as e:
        raise ModelLoadError(str(e)) from None
    return (f"{p.name} ({meta.arch['name']})", model_card(meta),
            bool(meta.training.get("right_hands_only")))


def open_model(checkpoint: str | os.PathLike[str] | None, device: str = "auto",
               options: dict[str, Any] | None = None, **kwargs: Any) -> tuple[Any, ModelInfo]:
    """Validate a checkpoint and build the estimator.

    Args:
        checkpoint: a ``.pt`` checkpoint or an ``.onnx`` export; None for the default
            checkpoint (``assets/models/default.pt``).
        device: "auto", "cpu" or "cuda[:N]".
        options: ``HandPoseEstimator`` keywords (correct, smoothing, fit_depth, max_hands,
            hand_scale) to build it with.
        **kwargs: more ``HandPoseEstimator`` keywords (tests pass a detector).

    Returns:
        (estimator, ModelInfo).
    Raises:
        ModelLoadError: a missing, corrupt or incompatible checkpoint, or a pipeline that
            cannot start (e.g. the hand detector); the message names the file and the cause.
    """
    from handpose.core.inference.estimator import HandPoseEstimator, default_checkpoint_path
    from handpose.core.safe_load import CheckpointError

    path = Path(checkpoint) if checkpoint is not None else default_checkpoint_path()
    try:
        if checkpoint is None and not path.is_file():
            HandPoseEstimator(None, device=device)  # raises the pipeline's "how to" message
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path}: no such file")
        name, card, right_only = _read_checkpoint(path)
        est = HandPoseEstimator(path, device=device, **dict(options or {}), **kwargs)
    except ModelLoadError:
        raise
    except CheckpointError as e:
        raise ModelLoadError(str(e)) from None
    except (ValueError, RuntimeError, OSError, ImportError) as e:
        raise ModelLoadError(f"cannot start the pipeline with {path}: {e}") from None
    backend = getattr(est.backend, "name", type(est.backend).__name__)
    info = ModelInfo(checkpoint=str(path), name=name, card=card, device=str(backend),
                     right_hands_only=right_only)
    return est, info


def describe_source(spec: str, source: FrameSource) -> SourceInfo:
    """The :class:`SourceInfo` of an open source."""
    length = len(source) if source.seekable else None  # type: ignore[arg-type]
    return SourceInfo(spec=spec, name=source.name, size=tuple(source.size),  # type: ignore
                      live=bool(source.live), has_depth=bool(source.has_depth),
                      has_K=bool(source.has_K), length=length)


def open_app_source(spec: str, K: np.ndarray | None = None) -> tuple[FrameSource, SourceInfo]:
    """Open a source spec for the app: replays in real time, the demo looping.

    Args:
        spec: a source spec (``demo``, ``camera:0@1280x720``, ``video:PATH``, ``folder:DIR``,
            ``rgbd:DIR``, ``session:DIR``, ``realsense``, ``kinect`` or a path).
        K: (3, 3) intrinsics overriding the source's, or None.

    Raises:
        SourceError: the source cannot be opened (SpecError for a malformed spec).
    """
    parsed = parse_spec(spec)
    source = open_source(parsed, realtime=True, K=K)
    return source, describe_source(spec, source)
