"""File > Export poses: the poses tracked in this run as JSON, JSON lines or CSV (Qt-free).

:class:`PoseLog` keeps the hands of the last ``capacity`` processed frames (poses only, no
images). :func:`export_poses` writes them in the formats of ``handpose-track``, so the same
readers work on both:

* ``.jsonl``: one object per frame ``{"index", "timestamp", "hands": [{"track_id",
  "handedness", "handedness_score", "corrected", "joints_m" 21x3, "uv_px" 21x2,
  "confidence" 21}], "timings_ms"}``;
* ``.json``: ``{"format": "handpose-poses", "source": ..., "frames": [<the same objects>]}``;
* ``.csv``: one row per hand and joint: ``index, timestamp, track_id, handedness,
  handedness_score, joint, x_m, y_m, z_m, u_px, v_px, confidence``.

The file is written to a temporary name and renamed, so a failed export leaves no partial
file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from handpose.core.types import FrameResult, HandPose

__all__ = ["PoseRecord", "PoseLog", "export_poses", "EXPORT_SUFFIXES"]

EXPORT_SUFFIXES = (".json", ".jsonl", ".csv")
_CSV_HEAD = ["index", "timestamp", "track_id", "handedness", "handedness_score", "joint",
             "x_m", "y_m", "z_m", "u_px", "v_px", "confidence"]


@dataclass(frozen=True)
class PoseRecord:
    """The poses of one processed frame (no pixels)."""

    index: int
    timestamp: float
    hands: tuple[HandPose, ...]
    timings_ms: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "timestamp": round(self.timestamp, 6),
            "hands": [{
                "track_id": int(h.track_id), "handedness": h.handedness,
                "handedness_score": round(float(h.handedness_score), 4),
                "corrected": bool(h.corrected),
                "joints_m": np.round(np.asarray(h.joints, np.float64), 6).tolist(),
                "uv_px": np.round(np.asarray(h.uv, np.float64), 3).tolist(),
                "confidence": np.round(np.asarray(h.confidence, np.float64), 4).tolist(),
            } for h in self.hands],
            "timings_ms": {k: round(float(v), 3) for k, v in self.timings_ms.items()},
        }


class PoseLog:
    """The most recent processed frames' poses.

    Args:
        capacity: frames kept (the oldest are forgotten), >= 1; the default is an hour at
            30 frames/s.
    """

    def __init__(self, capacity: int = 108_000) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1; got {capacity!r}")
        self._records: deque[PoseRecord] = deque(maxlen=capacity)
        self.source = ""

    def add(self, result: FrameResult) -> None:
        """Keep the poses of one processed frame."""
        self._records.append(PoseRecord(int(result.frame.index), float(result.frame.timestamp),
                                        tuple(result.hands), dict(result.timings_ms)))

    def clear(self, source: str = "") -> None:
        """Forget everything (a new source named ``source`` starts)."""
        self._records.clear()
        self.source = source

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> list[PoseRecord]:
        return list(self._records)


def _csv_text(records: list[PoseRecord]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_CSV_HEAD)
    for r in records:
        for h in r.hands:
            lead = [r.index, f"{r.timestamp:.6f}", h.track_id, h.handedness,
                    f"{h.handedness_score:.4f}"]
            for k in range(21):
                x, y, z = h.joints[k]
                u, v = h.uv[k]
                w.writerow(lead + [k, f"{x:.6f}", f"{y:.6f}", f"{z:.6f}", f"{u:.3f}",
                                   f"{v:.3f}", f"{float(h.confidence[k]):.4f}"])
    return buf.getvalue()


def export_poses(path: str | os.PathLike[str], log: PoseLog) -> int:
    """Write the log to ``path``; the suffix picks the format (module docstring).

    Returns:
        the number of frames written.
    Raises:
        ValueError: an unknown suffix, or nothing to export. OSError: the file cannot be
            written (the message names it).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise ValueError(f"the export file must end in {', '.join(EXPORT_SUFFIXES)}; got "
                         f"{p.name!r}")
    records = log.records()
    if not records:
        raise ValueError("no poses to export yet: load a model and track some frames first")
    if suffix == ".csv":
        text = _csv_text(records)
    elif suffix == ".jsonl":
        text = "".join(json.dumps(r.to_json(), separators=(",", ":")) + "\n" for r in records)
    else:
        text = json.dumps({"format": "handpose-poses", "source": log.source,
                           "frames": [r.to_json() for r in records]}) + "\n"
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return len(records)
