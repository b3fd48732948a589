"""``handpose-track``: run the tracking pipeline headless on any frame source.

::

    handpose-track SOURCE --out FILE.jsonl|.csv [--checkpoint PATH] [--max-hands N]
                   [--no-correct] [--smoothing off|light|medium|strong|maximum|STRENGTH]
                   [--fit-depth] [--hand-length METRES] [--limit N] [--csv-layout joints|hands]
                   [--backend auto|onnx|torch] [--precision auto|fp32|int8]
                   [--device auto|cpu|cuda] [--no-progress]

SOURCE is a source spec (``demo``, ``camera:0``, a video path, ``folder:DIR``, ``rgbd:DIR``,
``session:DIR``, ``realsense``, ``kinect``); replays run as fast as they decode, without
looping.

Output, chosen by the suffix of ``--out``:

* ``.jsonl``: one JSON object per processed frame, hands or not:
  ``{"index", "timestamp", "hands": [{"track_id", "handedness", "handedness_score",
  "corrected", "joints_m" (21 x [x, y, z] metres, camera frame), "uv_px" (21 x [u, v]),
  "confidence" (21)}], "timings_ms": {stage: ms}}``. ``uv_px`` are the network's smoothed
  keypoints in the image; ``joints_m`` the corrected 3D pose, whose projection can differ
  from them (``HandPose``).
* ``.csv`` with ``--csv-layout joints`` (default): one row per hand and joint:
  ``index, timestamp, track_id, handedness, handedness_score, joint, x_m, y_m, z_m, u_px,
  v_px, confidence``; ``--csv-layout hands``: one row per hand with ``x0_m ... conf20``
  columns. Frames without a hand have no CSV row.

At the end (also after Ctrl-C) a summary is printed: frames, frames/s, frames with a hand,
tracks started, mean milliseconds per stage. Exit status: 0 done; 1 an error before the run
(bad source, missing or corrupt checkpoint, unwritable output: one line on stderr);
3 the source failed mid-run (the output so far is kept); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..types import FrameResult
from .hand_filter import SMOOTHING_LEVELS, HandSmoothing

__all__ = ["main", "build_parser", "result_to_json", "Summary"]

_PROG = "handpose-track"


def _smoothing(text: str) -> HandSmoothing | None:
    level = SMOOTHING_LEVELS.get(text.strip().lower())
    try:
        return HandSmoothing.at_strength(level if level is not None else float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(SMOOTHING_LEVELS)} or a strength in [0, 1] "
            f"(0 = off, 0.5 = medium, the default); got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see the module docstring)."""
    p = argparse.ArgumentParser(prog=_PROG, description="Track hands in a frame source "
                                "and write the 3D poses (one JSON line per frame, or CSV).")
    p.add_argument("source", help="demo, camera:0, a video path, folder:DIR, rgbd:DIR, "
                   "session:DIR, realsense, kinect")
    p.add_argument("--out", required=True, help="output file, .jsonl or .csv")
    p.add_argument("--checkpoint", default=None,
                   help="model checkpoint (.pt or .onnx; default: assets/models/default.pt)")
    p.add_argument("--max-hands", type=int, default=2, help="at most this many hands (2)")
    p.add_argument("--no-correct", action="store_true", help="skip biomechanical correction")
    p.add_argument("--no-mirror-left", action="store_true",
                   help="show the network left hands as they are (by default a hand voted "
                        "left is mirrored for it: the shipped model reads right hands only, "
                        "for a model trained on both hands this option is safe)")
    p.add_argument("--smoothing", type=_smoothing, default="medium",
                   help="temporal smoothing of the 3D joints and 2D keypoints: off, light, "
                   "medium (default), strong, maximum, or a strength in [0, 1]")
    p.add_argument("--fit-depth", action="store_true",
                   help="refine poses against the depth map (RGB-D sources)")
    p.add_argument("--hand-length", type=float, default=None, metavar="METRES",
                   help="the user's hand length (wrist crease to middle fingertip) for the "
                   "metric scale; default: an average adult hand")
    p.add_argument("--limit", type=int, default=None, help="stop after N frames")
    p.add_argument("--csv-layout", choices=("joints", "hands"), default="joints",
                   help="CSV rows per hand-joint (default) or per hand")
    p.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto")
    p.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto",
                   help="network precision: auto = the int8 model shipped next to the "
                   "checkpoint (NAME.int8.onnx) when it was made from it, else float32")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:N]")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def result_to_json(result: FrameResult) -> dict[str, Any]:
    """One frame's result as plain JSON data (the ``.jsonl`` line)."""
    return {
        "index": int(result.frame.index),
        "timestamp": float(result.frame.timestamp),
        "hands": [{
            "track_id": int(h.track_id),
            "handedness": h.handedness,
            "handedness_score": round(float(h.handedness_score), 4),
            "corrected": bool(h.corrected),
            "joints_m": np.round(h.joints, 6).tolist(),
            "uv_px": np.round(h.uv, 3).tolist(),
            "confidence": np.round(h.confidence.astype(np.float64), 4).tolist(),
        } for h in result.hands],
        "timings_ms": {k: round(float(v), 3) for k, v in result.timings_ms.items()},
    }


class _Writer:
    """Writes results as JSON lines or CSV rows to an open text file."""

    def __init__(self, f: TextIO, kind: str, layout: str) -> None:
        self.f, self.kind, self.layout = f, kind, layout
        self.csv: Any = None
        if kind == "csv":
            self.csv = csv.writer(f)
            head = ["index", "timestamp", "track_id", "handedness", "handedness_score"]
            if layout == "joints":
                head += ["joint", "x_m", "y_m", "z_m", "u_px", "v_px", "confidence"]
            else:
                for k in range(21):
                    head += [f"x{k}_m", f"y{k}_m", f"z{k}_m", f"u{k}_px", f"v{k}_px", f"conf{k}"]
            self.csv.writerow(head)

    def write(self, r: FrameResult) -> None:
        if self.kind == "jsonl":
            self.f.write(json.dumps(result_to_json(r)) + "\n")
            return
        for h in r.hands:
            lead = [r.frame.index, f"{r.frame.timestamp:.6f}", h.track_id, h.handedness,
                    f"{h.handedness_score:.4f}"]
            per = [[f"{h.joints[k, 0]:.6f}", f"{h.joints[k, 1]:.6f}", f"{h.joints[k, 2]:.6f}",
                    f"{h.uv[k, 0]:.3f}", f"{h.uv[k, 1]:.3f}", f"{h.confidence[k]:.4f}"]
                   for k in range(21)]
            if self.layout == "joints":
                self.csv.writerows([lead + [k] + per[k] for k in range(21)])
            else:
                self.csv.writerow(lead + [v for row in per for v in row])


class Summary:
    """Running totals of a tracking run."""

    def __init__(self) -> None:
        self.frames = 0
        self.with_hands = 0
        self.track_ids: set[int] = set()
        self.stage_ms: dict[str, float] = {}
        self.start = time.perf_counter()

    def add(self, r: FrameResult) -> None:
        self.frames += 1
        self.with_hands += bool(r.hands)
        self.track_ids.update(h.track_id for h in r.hands)
        for k, v in r.timings_ms.items():
            self.stage_ms[k] = self.stage_ms.get(k, 0.0) + float(v)

    def text(self) -> str:
        wall = time.perf_counter() - self.start
        fps = self.frames / wall if wall > 0 else 0.0
        n = max(self.frames, 1)
        pct = 100.0 * self.with_hands / n
        stages = ", ".join(f"{k} {v / n:.2f}" for k, v in self.stage_ms.items())
        return (f"frames: {self.frames}, {fps:.1f} frames/s; hands found in {self.with_hands} "
                f"frames ({pct:.0f} %), {len(self.track_ids)} tracks\n"
                f"mean ms per frame: {stages or '-'}")


def _fail(msg: str, code: int = 1) -> int:
    print(f"{_PROG}: error: {msg}", file=sys.stderr)
    return code


def _check_output(path: Path) -> str | None:
    """The output kind ("jsonl" / "csv"), or raise ValueError naming the problem."""
    kind = {".jsonl": "jsonl", ".csv": "csv"}.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"--out must end in .jsonl or .csv; got {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"--out {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"cannot write {path}: permission denied")
    return kind


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``handpose-track``; returns the exit status."""
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    try:
        kind = _check_output(out)
        if args.max_hands < 1:
            raise ValueError(f"--max-hands must be >= 1; got {args.max_hands}")
        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit must be >= 1; got {args.limit}")
        hand_scale = None
        if args.hand_length is not None:
            from .calibration import hand_scale_from_length

            hand_scale = hand_scale_from_length(args.hand_length)
    except ValueError as e:
        return _fail(str(e))
    from ..data.sources import SourceError, open_source

    try:
        source = open_source(args.source, realtime=False, loop=False)
    except (SourceError, ValueError, OSError) as e:
        return _fail(f"cannot open source {args.source!r}: {e}")
    with source:
        from ..safe_load import CheckpointError
        from .estimator import HandPoseEstimator

        try:
            est = HandPoseEstimator(args.checkpoint, device=args.device, backend=args.backend,
                                    max_hands=args.max_hands, correct=not args.no_correct,
                                    smoothing=args.smoothing, hand_scale=hand_scale,
                                    fit_depth=args.fit_depth, precision=args.precision,
                                    mirror_left=not args.no_mirror_left)
        except (CheckpointError, ValueError, RuntimeError) as e:
            return _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
        try:
            f = out.open("w", newline="" if kind == "csv" else None, encoding="utf-8")
        except OSError as e:
            est.close()
            return _fail(f"cannot write {out}: {e.strerror or e}")
        with est, f:
            return _run(args, source, est, _Writer(f, kind or "jsonl", args.csv_layout),
                        SourceError)


def _run(args: argparse.Namespace, source: Any, est: Any, writer: _Writer,
         source_error: type[Exception]) -> int:
    from tqdm import tqdm

    total = len(source) if hasattr(source, "__len__") else None
    if args.limit is not None:
        total = min(total, args.limit) if total is not None else args.limit
    summary = Summary()
    code = 0
    bar = tqdm(total=total, unit="frame", disable=args.no_progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        while args.limit is None or summary.frames < args.limit:
            try:
                frame = source.read()
            except source_error as e:
                bar.close()
                print(f"{_PROG}: the source failed after {summary.frames} frames: {e}",
                      file=sys.stderr)
                code = 3
                break
            if frame is None:
                break
            result = est.process(frame)
            writer.write(result)
            summary.add(result)
            bar.update(1)
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        code = 130
    finally:
        bar.close()
        writer.f.flush()
    print(summary.text())
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
