"""handpose's tracking pipeline against MediaPipe Hands on the same 640x480 frames, one process.

Frames: ``shared/data/real_eval_hgc`` played as a video (400 real 256x256 frames of one hand,
upscaled 1.5x to 384x384 and centred on a black 640x480 canvas; the labels and K are
transformed the same way), or ``--frames N`` of them, looped if N > 400.

For each system: frames/s over the run, p50/p95 latency per frame (handpose also per stage,
from ``FrameResult.timings_ms``), and against the labels: 2D PCK@0.2 of the hand box (a frame
without a hand counts every joint as a miss), 3D PA-EPE in mm (frames with a hand; MediaPipe's
world landmarks, handpose's metric joints) and the share of frames with a hand. handpose runs
with lifting, correction and filtering on (the defaults), one hand, ONNX Runtime on the CPU.
MediaPipe Hands runs in tracking mode: ``Hands(static_image_mode=False, max_num_hands=1)``.

``--soak N`` then loops the frames N times through handpose alone and reports the resident
memory (psutil) after warm-up and at the end (goal: growth < 5 %).

Network: ``--checkpoint PATH`` (default ``assets/models/default.pt`` when it exists), or
``--random-resnet18``: a random-weight ResNet-18 PoseNet at 128 px whose head bias is the mean
hand pose of the labels (so the tracker keeps its track as with a trained network). Its
accuracy is meaningless: it measures speed only.

Usage::

    python benchmarks/pipeline.py --random-resnet18 [--frames 400] [--soak 10000] [--append]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handpose.core.geometry import apply_affine, crop_from_keypoints, to_25d
from handpose.core.inference.estimator import STAGES, HandPoseEstimator, default_checkpoint_path
from handpose.core.inference.tracker import upright_rotation
from handpose.core.metrics import pa_epe, pck_2d
from handpose.core.types import Frame

REPO = Path(__file__).resolve().parents[1]
HGC = REPO.parent / "shared" / "data" / "real_eval_hgc"
UP, OX, OY = 1.5, 128, 48  # 256 -> 384 px, centred in 640x480


def load_hgc(root: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """640x480 RGB frames, their K (N, 3, 3), 2D labels (N, 21, 2) px and 3D labels (N, 21, 3)."""
    xyz = np.asarray(json.loads((root / "training_xyz.json").read_text()))
    Ks = np.asarray(json.loads((root / "training_K.json").read_text()))
    warp = np.array([[UP, 0.0, OX + 0.5 * UP - 0.5], [0.0, UP, OY + 0.5 * UP - 0.5],
                     [0.0, 0.0, 1.0]])  # pixel-centre convention of a resize by UP
    frames = []
    for i in range(len(xyz)):
        img = cv2.imread(str(root / "training" / "rgb" / f"{i:08d}.jpg"))
        if img is None:
            raise SystemExit(f"cannot read frame {i} of {root}")
        big = cv2.resize(img[..., ::-1], (int(256 * UP), int(256 * UP)),
                         interpolation=cv2.INTER_LINEAR)
        rgb = np.zeros((480, 640, 3), np.uint8)
        rgb[OY:OY + big.shape[0], OX:OX + big.shape[1]] = big
        frames.append(rgb)
    K = warp @ Ks
    p = np.einsum("nij,nkj->nki", K, xyz)
    return frames, K, p[..., :2] / p[..., 2:], xyz


def random_resnet18(uv: np.ndarray, xyz: np.ndarray, K: np.ndarray, out: Path) -> Path:
    """A random-weight posenet_resnet18 at 128 px whose head bias is the labels' mean pose."""
    import torch

    from handpose.core.checkpoint import save_checkpoint
    from handpose.core.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("posenet_resnet18")
    size = 128
    crop_uv, z = [], []
    for i in range(len(uv)):
        A = crop_from_keypoints(uv[i], out_size=size, rotation=upright_rotation(uv[i]))
        crop_uv.append(apply_affine(A, uv[i]))
        z.append(to_25d(xyz[i], K[i])[1])
    mean_uv = np.mean(crop_uv, 0)
    mean_z = np.mean(z, 0)
    bias = np.concatenate([(mean_uv + 0.5) / size - 0.5, mean_z[:, None]], 1).reshape(-1)
    with torch.no_grad():
        model.head.pose.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        model.head.error.bias.fill_(-6.0)  # confidence ~0.95
    return save_checkpoint(out, model, input_size=size,
                           training={"recipe": "none: random weights, mean-pose head bias"})


def percentile(x: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(x), q)) if x else float("nan")


def run_handpose(est: HandPoseEstimator, frames: list[np.ndarray], K: np.ndarray, n: int
                 ) -> dict[str, Any]:
    lat, stages = [], {k: [] for k in STAGES}
    uv_out = np.full((n, 21, 2), 1e6)
    xyz_out = np.full((n, 21, 3), np.nan)
    t0 = time.perf_counter()
    for i in range(n):
        j = i % len(frames)
        s = time.perf_counter()
        r = est.process(Frame(rgb=frames[j], K=K[j], timestamp=i / 30.0, index=i))
        lat.append((time.perf_counter() - s) * 1000.0)
        for k in STAGES:
            stages[k].append(r.timings_ms[k])
        if r.hands:
            uv_out[i], xyz_out[i] = r.hands[0].uv, r.hands[0].joints
    wall = time.perf_counter() - t0
    return {"fps": n / wall, "lat": lat, "stages": stages, "uv": uv_out, "xyz": xyz_out}


def run_mediapipe(frames: list[np.ndarray], n: int) -> dict[str, Any]:
    import mediapipe as mp

    hands = mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=1)
    lat = []
    uv_out = np.full((n, 21, 2), 1e6)
    xyz_out = np.full((n, 21, 3), np.nan)
    t0 = time.perf_counter()
    for i in range(n):
        rgb = frames[i % len(frames)]
        s = time.perf_counter()
        res = hands.process(rgb)
        lat.append((time.perf_counter() - s) * 1000.0)
        if res.multi_hand_landmarks:
            lm = res.multi_hand_landmarks[0].landmark
            uv_out[i] = [[p.x * 640 - 0.5, p.y * 480 - 0.5] for p in lm]
            wl = res.multi_hand_world_landmarks[0].landmark
            xyz_out[i] = [[p.x, p.y, p.z] for p in wl]
    wall = time.perf_counter() - t0
    hands.close()
    return {"fps": n / wall, "lat": lat, "uv": uv_out, "xyz": xyz_out}


def accuracy(r: dict[str, Any], uv: np.ndarray, xyz: np.ndarray) -> dict[str, float]:
    n = len(r["uv"])
    idx = np.arange(n) % len(uv)
    found = np.all(np.isfinite(r["xyz"]), axis=(1, 2))
    out = {"found": float(found.mean()), "pck": pck_2d(r["uv"], uv[idx], 0.2)}
    out["pa_epe_mm"] = 1000.0 * float(pa_epe(r["xyz"][found], xyz[idx][found])) \
        if found.any() else float("nan")
    return out


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--random-resnet18", action="store_true")
    ap.add_argument("--data", default=str(HGC))
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--threads", type=int, default=2, help="network threads (ONNX Runtime)")
    ap.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto",
                    help="network precision (auto: the int8 model shipped next to the "
                    "checkpoint if any)")
    ap.add_argument("--calib", default=None, help="labelled FreiHAND-layout folder (e.g. a "
                    "handpose-data synth folder) to quantize with when --precision int8 finds "
                    "no int8 model; never the evaluation video")
    ap.add_argument("--soak", type=int, default=0)
    ap.add_argument("--skip-mediapipe", action="store_true")
    ap.add_argument("--append", action="store_true", help="append the results to RESULTS.md")
    args = ap.parse_args(argv)
    frames, K, uv, xyz = load_hgc(Path(args.data))
    tmp = Path(tempfile.mkdtemp(prefix="handpose-bench-"))
    if args.random_resnet18:
        ckpt = random_resnet18(uv, xyz, K, tmp / "random_resnet18.pt")
        label = "random-weight ResNet-18, 128 px, mean-pose head bias (UNTRAINED: speed only)"
    else:
        ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint_path()
        if not ckpt.is_file():
            raise SystemExit(f"checkpoint {ckpt} not found: pass --checkpoint or "
                             "--random-resnet18")
        label = str(ckpt)
    load0 = os.getloadavg()[0]
    calibration = None
    if args.calib:
        from handpose.core.checkpoint import load_checkpoint
        from handpose.core.data import FreiHANDDataset

        size = load_checkpoint(ckpt).meta.input_size
        calibration = FreiHANDDataset(args.calib, ("gs",), load_depth=False, load_mask=False,
                                      crop_size=size)
        calibration.crop_upright = True  # as the tracker cuts its crops
    est = HandPoseEstimator(ckpt, backend="onnx", max_hands=1, threads=args.threads,
                            cache_dir=tmp / "cache", precision=args.precision,
                            calibration=calibration)
    label += f"; {est.backend.name}"
    for i in range(20):  # warm-up (graph initialisation, first detections)
        est.process(Frame(rgb=frames[i], K=K[i], timestamp=i / 30.0, index=i))
    est.reset()
    hp = run_handpose(est, frames, K, args.frames)
    mp_res = None if args.skip_mediapipe else run_mediapipe(frames, args.frames)
    load1 = os.getloadavg()[0]
    rows = [("handpose", hp, accuracy(hp, uv, xyz))]
    if mp_res is not None:
        rows.append(("MediaPipe Hands", mp_res, accuracy(mp_res, uv, xyz)))
    lines = [
        f"## Pipeline vs MediaPipe Hands ({datetime.datetime.now():%Y-%m-%d %H:%M})",
        "",
        f"`python benchmarks/pipeline.py {' '.join(sys.argv[1:] if argv is None else argv)}`: "
        f"{args.frames} frames of real_eval_hgc as 640x480 video, one hand; network: {label}; "
        f"ONNX Runtime, {args.threads} threads. Machine: {os.cpu_count()} cores shared with "
        f"other engineers (1-min load average {load0:.1f} at the start, {load1:.1f} at the end).",
        "",
        "| system | frames/s | p50 ms | p95 ms | hand found | PCK@0.2 (2D) | PA-EPE mm |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r, acc in rows:
        lines.append(f"| {name} | {r['fps']:.1f} | {percentile(r['lat'], 50):.1f} | "
                     f"{percentile(r['lat'], 95):.1f} | {acc['found']:.2f} | {acc['pck']:.3f} | "
                     f"{acc['pa_epe_mm']:.1f} |")
    if mp_res is not None:
        lines += ["", f"Throughput ratio handpose / MediaPipe: **{hp['fps'] / mp_res['fps']:.2f}**"]
    lines += ["", "handpose per stage (ms): " + ", ".join(
        f"{k} p50 {percentile(v, 50):.2f} / p95 {percentile(v, 95):.2f} / mean "
        f"{np.mean(v):.2f}" for k, v in hp["stages"].items()),
        f"Detector ran on {np.count_nonzero(hp['stages']['detect'])} of {args.frames} frames."]
    if args.soak:
        est.reset()
        gc.collect()
        for i in range(50):
            est.process(Frame(rgb=frames[i % len(frames)], K=K[i % len(frames)],
                              timestamp=i / 30.0))
        m0 = rss_mb()
        t0 = time.perf_counter()
        for i in range(args.soak):
            j = i % len(frames)
            est.process(Frame(rgb=frames[j], K=K[j], timestamp=(i + 50) / 30.0, index=i))
        gc.collect()
        m1 = rss_mb()
        lines.append(f"Soak: {args.soak} frames in {time.perf_counter() - t0:.0f} s; resident "
                     f"memory {m0:.0f} MiB after warm-up -> {m1:.0f} MiB at the end "
                     f"({100 * (m1 / m0 - 1):+.1f} %).")
    est.close()
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with (REPO / "benchmarks" / "RESULTS.md").open("a", encoding="utf-8") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
