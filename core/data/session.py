"""The session (recording) format: one folder per recording, readable while it grows.

Layout (``NNNNNN`` = the zero-padded session frame index, 0, 1, 2, ...)::

    session.json     SessionInfo: format, version, camera K, K_calibrated, source, app and
                     model versions, created (ISO 8601 UTC), extra. Written atomically (temp
                     file + fsync + os.replace); rewritten only to fill in K at frame 0.
    rgb/NNNNNN.jpg   the colour frame (JPEG)
    depth/NNNNNN.png uint16 millimetres aligned to rgb, 0 = no reading (when the frame has depth)
    poses.jsonl      one line per recorded frame, appended after its image files exist:
                       {"index", "timestamp" (s), "source_index" (Frame.index),
                        "rgb": "rgb/NNNNNN.jpg", "depth": "depth/NNNNNN.png" | null,
                        "K": 3x3 (only when it differs from session.json's),
                        "hands": null (not processed) | [hand, ...], "timings_ms": {...}}
                     hand = {"joints" 21x3 m, "uv" 21x2 px, "handedness" "left"|"right",
                             "handedness_score", "confidence" 21, "corrected", "track_id",
                             "spheres" 41x4 | absent}
    labels.jsonl     annotations, appended; for the same (index, hand) a later line overrides
                     an earlier one:
                       {"index", "hand" (slot, default 0), "uv" 21x2 px | null,
                        "joints3d" 21x3 m | null, "visible" 21 bools | null,
                        "handedness" "left"|"right"|null, "author" (who: a person or a
                        model id), "method" (what: "manual", "model", "fit", ...),
                        "done" bool, "time" (unix s)}

Numbers are rounded when written: metres to 1e-6, pixels to 1e-3, scores to 1e-4.
A crash loses at most the frame being written: a JSONL line is written in one ``write`` after
the frame's images were renamed into place, and readers skip a torn last line.

This module holds the format (names, records, JSON conversion); the writer is in
:mod:`.session_writer`, the reader and the training dataset in :mod:`.session_reader`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..types import HandPose

__all__ = [
    "SESSION_FORMAT", "SESSION_VERSION", "INFO_FILE", "POSES_FILE", "LABELS_FILE", "RGB_DIR",
    "DEPTH_DIR", "frame_stem", "SessionInfo", "Label", "hand_to_json", "hand_from_json",
    "rounded",
]

SESSION_FORMAT = "handpose-session"
SESSION_VERSION = 1
INFO_FILE = "session.json"
POSES_FILE = "poses.jsonl"
LABELS_FILE = "labels.jsonl"
RGB_DIR = "rgb"
DEPTH_DIR = "depth"


def frame_stem(index: int) -> str:
    """File stem of session frame ``index`` ("000042")."""
    return f"{index:06d}"


def rounded(a: Any, decimals: int) -> Any:
    """A numpy array as nested lists of Python floats rounded to ``decimals``."""
    return np.round(np.asarray(a, np.float64), decimals).tolist()


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _matrix(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    a = np.asarray(value, np.float64)
    if a.shape != shape or not np.isfinite(a).all():
        raise ValueError(f"{what} must be a finite {shape} array; got shape {a.shape}")
    return a


@dataclass(frozen=True)
class SessionInfo:
    """The contents of ``session.json``.

    Attributes:
        K: (3, 3) float64 intrinsics of the recording in pixels, or None before frame 0.
        K_calibrated: True when K comes from a calibration / the device, False for a default.
        source: what was recorded (a source spec such as "camera:0", a file, ...).
        app_version: version of the recording software.
        model_version: the checkpoint / model that produced ``poses.jsonl`` ("" if none).
        created: ISO 8601 UTC creation time.
        extra: free-form JSON-able metadata.
    """

    K: np.ndarray | None = None
    K_calibrated: bool = True
    source: str = ""
    app_version: str = ""
    model_version: str = ""
    created: str = field(default_factory=_utc_now)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SESSION_FORMAT, "version": SESSION_VERSION,
            "K": None if self.K is None else rounded(self.K, 6),
            "K_calibrated": bool(self.K_calibrated), "source": self.source,
            "app_version": self.app_version, "model_version": self.model_version,
            "created": self.created, "extra": self.extra,
        }

    @classmethod
    def from_json(cls, d: Any) -> SessionInfo:
        """Parse ``session.json`` contents; raises ValueError/TypeError on a bad document."""
        if not isinstance(d, dict) or d.get("format") != SESSION_FORMAT:
            raise ValueError(f"not a {SESSION_FORMAT} document (format="
                             f"{d.get('format') if isinstance(d, dict) else None!r})")
        if not isinstance(d.get("version"), int) or d["version"] > SESSION_VERSION:
            raise ValueError(f"unsupported session version {d.get('version')!r} (this reader "
                             f"knows <= {SESSION_VERSION})")
        K = None if d.get("K") is None else _matrix(d["K"], (3, 3), "K")
        extra = d.get("extra") or {}
        if not isinstance(extra, dict):
            raise TypeError("extra must be an object")
        return cls(K=K, K_calibrated=bool(d.get("K_calibrated", True)),
                   source=str(d.get("source", "")), app_version=str(d.get("app_version", "")),
                   model_version=str(d.get("model_version", "")),
                   created=str(d.get("created", "")), extra=extra)


@dataclass(frozen=True)
class Label:
    """One annotation of one hand in one session frame (a ``labels.jsonl`` line).

    Attributes:
        index: session frame index.
        hand: hand slot in that frame (0, 1, ...); (index, hand) identifies the label.
        uv: (21, 2) float64 pixels, or None.
        joints3d: (21, 3) float64 metres (camera frame), or None.
        visible: (21,) bool, or None.
        handedness: "left", "right" or None.
        author: who made it (a person's name, or a model id).
        method: what made it ("manual", "model", "fit", ...).
        done: the annotator marked it finished.
        time: unix seconds when it was written.
    """

    index: int
    hand: int = 0
    uv: np.ndarray | None = None
    joints3d: np.ndarray | None = None
    visible: np.ndarray | None = None
    handedness: str | None = None
    author: str = ""
    method: str = "manual"
    done: bool = False
    time: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.index, int) or self.index < 0:
            raise ValueError(f"Label.index must be an int >= 0; got {self.index!r}")
        if not isinstance(self.hand, int) or self.hand < 0:
            raise ValueError(f"Label.hand must be an int >= 0; got {self.hand!r}")
        if self.uv is not None:
            object.__setattr__(self, "uv", _matrix(self.uv, (21, 2), "Label.uv"))
        if self.joints3d is not None:
            object.__setattr__(self, "joints3d",
                               _matrix(self.joints3d, (21, 3), "Label.joints3d"))
        if self.visible is not None:
            v = np.asarray(self.visible, bool)
            if v.shape != (21,):
                raise ValueError(f"Label.visible must have shape (21,); got {v.shape}")
            object.__setattr__(self, "visible", v)
        if self.handedness not in (None, "left", "right"):
            raise ValueError(f"Label.handedness must be 'left', 'right' or None; got "
                             f"{self.handedness!r}")

    @property
    def has_pose(self) -> bool:
        """True when the label holds 2D or 3D joints."""
        return self.uv is not None or self.joints3d is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "hand": self.hand,
            "uv": None if self.uv is None else rounded(self.uv, 3),
            "joints3d": None if self.joints3d is None else rounded(self.joints3d, 6),
            "visible": None if self.visible is None else self.visible.tolist(),
            "handedness": self.handedness, "author": self.author, "method": self.method,
            "done": bool(self.done), "time": round(float(self.time), 3),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Label:
        """Parse one ``labels.jsonl`` object; raises ValueError/TypeError/KeyError if bad."""
        return cls(index=d["index"], hand=d.get("hand", 0), uv=d.get("uv"),
                   joints3d=d.get("joints3d"), visible=d.get("visible"),
                   handedness=d.get("handedness"), author=str(d.get("author", "")),
                   method=str(d.get("method", "")), done=bool(d.get("done", False)),
                   time=float(d.get("time", 0.0)))


def hand_to_json(h: HandPose) -> dict[str, Any]:
    """A :class:`HandPose` as a JSON object (rounded as the module docstring says)."""
    d: dict[str, Any] = {
        "joints": rounded(h.joints, 6), "uv": rounded(h.uv, 3), "handedness": h.handedness,
        "handedness_score": round(float(h.handedness_score), 4),
        "confidence": rounded(h.confidence, 4), "corrected": bool(h.corrected),
        "track_id": int(h.track_id),
    }
    if h.spheres is not None:
        d["spheres"] = rounded(h.spheres, 6)
    return d


def hand_from_json(d: dict[str, Any]) -> HandPose:
    """Inverse of :func:`hand_to_json`; raises ValueError/TypeError/KeyError on a bad object."""
    return HandPose(
        joints=np.asarray(d["joints"], np.float64), uv=np.asarray(d["uv"], np.float64),
        handedness=d.get("handedness", "right"),
        handedness_score=float(d.get("handedness_score", 0.5)),
        confidence=np.asarray(d.get("confidence", np.ones(21)), np.float64),
        corrected=bool(d.get("corrected", False)), track_id=int(d.get("track_id", 0)),
        spheres=None if d.get("spheres") is None else np.asarray(d["spheres"], np.float64),
    )
