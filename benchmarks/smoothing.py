"""Temporal smoothing of tracked hands: accuracy, jitter and cost against the previous filter.

The pipeline (default model, one hand, ONNX Runtime) tracks two labelled sequences once with
smoothing and correction off: ``shared/data/real_eval_hgc`` (400 real frames, fast gestures;
as in ``pipeline.py``) and ``assets/demo`` (300 rendered frames at 30 fps, slower). The
filters then run on those same per-frame joints and keypoints (the tracker's crops follow
the raw keypoints, so the filter does not change what the network sees), restarting on every new
track ID, and the biomechanical correction after them, as in the pipeline:

* ``none``; ``per-coordinate``: the previous default, one One Euro filter over the 63
  camera-frame coordinates (1.5 Hz, beta 10 s/m, d_cutoff 1 Hz);
* ``HandFilter`` (:mod:`handpose.core.inference.hand_filter`) at each smoothing level.

Per sequence: 2D PCK@0.2 of the hand box of the reported keypoints (HandFilter's keypoints,
filtered in the image; unfiltered for ``none``; for the per-coordinate filter the projection
of its smoothed joints), PA-EPE (mm) of
the corrected joints and two jitter figures against the labels, mean |second difference of
prediction - of ground truth| over consecutive frames of one track: root-relative corrected 3D
(mm/frame^2) and 2D (px/frame^2). Then the cost: microseconds per hand per frame of each
filter, the per-coordinate one as the peer.

Usage::

    python benchmarks/smoothing.py [--append] [--checkpoint MODEL.pt]

``--checkpoint``: track with another model (default: the shipped ``assets/models/default.pt``;
its int8 model when one was shipped next to it), e.g. a candidate before it replaces it.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from handpose.core.biomech.correct import correct_pose
from handpose.core.data.session_reader import SessionReader
from handpose.core.geometry.camera import project
from handpose.core.inference.estimator import HandPoseEstimator
from handpose.core.inference.filters import OneEuroFilter, OneEuroParams
from handpose.core.inference.hand_filter import SMOOTHING_LEVELS, HandFilter, HandSmoothing
from handpose.core.metrics import pa_epe, pck_2d
from handpose.core.types import Frame

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]
PER_COORDINATE = OneEuroParams(min_cutoff=1.5, beta=10.0, d_cutoff=1.0)
FPS = 30.0


def load_demo(root: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """The demo's frames, K (N, 3, 3), 2D (N, 21, 2) px and 3D (N, 21, 3) m labels (NaN: none)."""
    reader = SessionReader(root)
    frames = [reader.frame(i) for i in range(len(reader))]
    labels = [reader.labels.get((f.index, 0)) for f in frames]
    uv = [np.full((21, 2), np.nan) if lab is None or lab.uv is None else lab.uv
          for lab in labels]
    xyz = [np.full((21, 3), np.nan) if lab is None or lab.joints3d is None else lab.joints3d
           for lab in labels]
    return [f.rgb for f in frames], np.stack([f.K for f in frames]), np.asarray(uv, float), \
        np.asarray(xyz, float)


def track_raw(frames: list[np.ndarray], K: np.ndarray, checkpoint: str | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Unsmoothed, uncorrected joints (N, 21, 3) m and keypoints (N, 21, 2) px (NaN: no
    hand), track IDs (N,) (-1: no hand) and handedness per frame ("" : no hand), tracked by
    ``checkpoint`` (None: the shipped model)."""
    est = HandPoseEstimator(checkpoint, max_hands=1, backend="onnx", smoothing=None,
                            correct=False)
    joints = np.full((len(frames), 21, 3), np.nan)
    keypoints = np.full((len(frames), 21, 2), np.nan)
    ids = np.full(len(frames), -1)
    sides = [""] * len(frames)
    for i, rgb in enumerate(frames):
        r = est.process(Frame(rgb=rgb, K=K[i], timestamp=i / FPS, index=i))
        if r.hands:
            h = r.hands[0]
            joints[i], keypoints[i], ids[i], sides[i] = h.joints, h.uv, h.track_id, h.handedness
    return joints, keypoints, ids, sides


def corrected(joints: np.ndarray, sides: list[str]) -> np.ndarray:
    """The pipeline's correction of each found hand (default hand size, its handedness)."""
    out = joints.copy()
    for i, side in enumerate(sides):
        if side:
            out[i] = correct_pose(joints[i], handedness=side)
    return out


Smoother = Callable[[np.ndarray, np.ndarray, float, np.ndarray],
                    tuple[np.ndarray, np.ndarray]]


def smooth(make: Callable[[], Smoother] | None, joints: np.ndarray, keypoints: np.ndarray,
           ids: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Joints (N, 21, 3) and keypoints (N, 21, 2) through a fresh filter per track (without
    one: as they are); microseconds per call."""
    out, uv = joints.copy(), keypoints.copy()
    f, last, spent, calls = None, None, 0.0, 0
    for i in np.flatnonzero(ids >= 0):
        if make is None:
            continue
        if ids[i] != last:
            f, last = make(), ids[i]
        t0 = time.perf_counter()
        out[i], uv[i] = f(joints[i], K[i], i / FPS, keypoints[i])
        spent += time.perf_counter() - t0
        calls += 1
    return out, uv, 1e6 * spent / max(calls, 1)


def scores(puv: np.ndarray, pred: np.ndarray, ids: np.ndarray, uv: np.ndarray,
           xyz: np.ndarray) -> dict[str, float]:
    """``puv``: the reported keypoints (N, 21, 2) px; ``pred``: the reported (corrected)
    joints (N, 21, 3) m."""
    labelled = np.all(np.isfinite(uv), axis=(1, 2))
    found = ids >= 0
    puv = puv.copy()
    puv[~found] = 1e6  # no hand: every joint a miss
    both = found & labelled & np.all(np.isfinite(xyz), axis=(1, 2))
    run = both[2:] & both[1:-1] & both[:-2] & (ids[2:] == ids[:-2])

    def accel(a: np.ndarray, b: np.ndarray) -> float:
        d = (a[2:] - 2 * a[1:-1] + a[:-2]) - (b[2:] - 2 * b[1:-1] + b[:-2])
        return float(np.linalg.norm(d, axis=-1)[run].mean())

    return {"pck": pck_2d(puv[labelled], uv[labelled], 0.2),
            "pa_mm": 1000 * float(pa_epe(pred[both], xyz[both])),
            "jitter3d_mm": 1000 * accel(pred - pred[:, :1], xyz - xyz[:, :1]),
            "jitter2d_px": accel(puv, uv)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", action="store_true", help="append the results to RESULTS.md")
    ap.add_argument("--checkpoint", default=None,
                    help="model to track with (default: assets/models/default.pt)")
    args = ap.parse_args(argv)
    from pipeline import HGC, load_hgc

    frames, K, uv, xyz = load_hgc(HGC)
    sequences = {"real_eval_hgc": (frames[:400], K[:400], uv[:400], xyz[:400]),
                 "demo": load_demo(REPO / "assets" / "demo")}

    def per_coordinate() -> Smoother:
        f = OneEuroFilter(PER_COORDINATE)

        def run(j: np.ndarray, k: np.ndarray, t: float, _keypoints: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
            out = f(j, t)
            return out, np.asarray(project(out, k, min_depth=1e-3))
        return run

    filters: dict[str, Callable[[], Any] | None] = {"none": None,
                                                    "per-coordinate": per_coordinate}
    for level, strength in SMOOTHING_LEVELS.items():
        settings = HandSmoothing.at_strength(strength)
        if settings is not None:
            filters[f"HandFilter {level}"] = lambda s=settings: HandFilter(s).smooth
    lines = []
    cost: dict[str, list[float]] = {}
    for name, (fr, k, u, x) in sequences.items():
        joints, keypoints, ids, sides = track_raw(fr, k, args.checkpoint)
        for fname, make in filters.items():
            smoothed, puv, us = smooth(make, joints, keypoints, ids, k)
            cost.setdefault(fname, []).append(us)
            s = scores(puv, corrected(smoothed, sides), ids, u, x)
            lines.append(f"{name:14s} {fname:22s} PCK@0.2 {s['pck']:.3f}  PA-EPE "
                         f"{s['pa_mm']:5.1f} mm  jitter 3D {s['jitter3d_mm']:5.1f} mm  "
                         f"2D {s['jitter2d_px']:5.1f} px")
            print(lines[-1], flush=True)
    peer = float(np.mean(cost["per-coordinate"]))
    for fname in filters:
        if filters[fname] is not None:
            us = float(np.mean(cost[fname]))
            lines.append(f"cost {fname:22s} {us:6.1f} us per hand-frame "
                         f"({us / peer:.2f}x the per-coordinate filter)")
            print(lines[-1])
    if args.append:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        with open(REPO / "benchmarks" / "RESULTS.md", "a") as fh:
            model = f" --checkpoint {args.checkpoint}" if args.checkpoint else ""
            fh.write(f"\n### Smoothing ({stamp}, `python benchmarks/smoothing.py --append"
                     f"{model}`)\n\n"
                     "```\n" + "\n".join(lines) + "\n```\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
