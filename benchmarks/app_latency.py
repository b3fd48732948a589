"""The app's responsiveness: does the UI keep up with 30 fps input, and does the GUI thread
ever wait for inference? Run under an X server (``xvfb-run`` here: software OpenGL).

The real main window (:class:`handpose.app.main_window.MainWindow`) plays a source in real
time (30 fps) with the real :class:`~handpose.core.inference.estimator.HandPoseEstimator`
(MediaPipe palm detector + ONNX Runtime network), everything on: 2D overlay, 3D skeleton,
spheres, point cloud (RGB-D), live plots. Over ``--seconds`` after a warm-up it measures:

* GUI event-loop latency: a 10 ms precise timer's lateness (p50 / p95 / p99 / max). The GUI
  thread only draws; if it ever waited for the network this would show the network's time.
* frames captured, processed by the model and shown per second; ticks never shown
  (coalesced because the GUI was busy);
* capture-to-display latency of the shown frames (p50 / p95);
* GUI time per shown frame (drawing the video, overlay and 3D items; the window's repaint
  and OpenGL composition come on top and are in the event-loop figure);
* the pipeline's own mean stage times.

Source: ``--source SPEC``; default ``demo`` when ``assets/demo`` exists, else a session made
from ``shared/data/real_eval_hgc`` (400 real frames, 640x480 as in benchmarks/pipeline.py);
``--rgbd`` uses ``shared/data/real_rgbd`` (25 RGB-D frames, looped) for the point cloud.
Model: ``--checkpoint PATH`` (default ``assets/models/default.pt`` when it exists), else the
random-weight ResNet-18 of benchmarks/pipeline.py (mean-pose head bias so the tracker keeps
its track: speed only); ``--no-model`` measures the GUI alone (recorded poses).

Usage::

    xvfb-run -a -s "-screen 0 1280x1024x24" python benchmarks/app_latency.py [--rgbd] [--append]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def make_hgc_session(out: Path) -> tuple[Path, Any]:
    """A 30 fps session of the 400 real_eval_hgc frames; also (uv, xyz, K) for the model."""
    from pipeline import load_hgc

    from handpose.core.data.session_writer import SessionWriter
    from handpose.core.types import Frame

    frames, K, uv, xyz = load_hgc(SHARED / "real_eval_hgc")
    with SessionWriter(out, K=K[0], source="real_eval_hgc", fsync="close") as w:
        for i, rgb in enumerate(frames):
            w.append_frame(Frame(rgb=rgb, K=K[i], timestamp=i / 30.0, index=i))
    return out, (uv, xyz, K)


def make_rgbd_session(out: Path) -> Path:
    from handpose.core.data.imageio import read_depth_png, read_rgb
    from handpose.core.data.session_writer import SessionWriter
    from handpose.core.types import Frame

    meta = json.loads((SHARED / "real_rgbd" / "frames.json").read_text())["frames"]
    with SessionWriter(out, source="real_rgbd", fsync="close") as w:
        for i, f in enumerate(meta):
            Kf = np.asarray(f["K"], np.float64)
            w.append_frame(Frame(rgb=read_rgb(SHARED / "real_rgbd" / f["rgb"]), K=Kf,
                                 depth=read_depth_png(SHARED / "real_rgbd" / f["depth"]),
                                 timestamp=i / 30.0, index=i))
    return out


def pct(x: list[float], q: float) -> float:
    return float(np.percentile(x, q)) if x else float("nan")


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from handpose.app.main import make_application

    app = make_application()
    from PyQt6.QtCore import QTimer

    from handpose.app.latency import EventLoopProbe
    from handpose.app.main_window import MainWindow
    from handpose.app.state import AppState

    labels = None
    if args.source:
        spec, what = args.source, args.source
    elif args.rgbd:
        spec, what = f"session:{make_rgbd_session(tmp / 'rgbd')}", "real_rgbd (25 RGB-D, looped)"
    elif (REPO / "assets" / "demo" / "session.json").is_file():
        spec, what = "demo", "the demo (assets/demo: synthetic RGB-D 480x360, looped)"
    else:
        path, labels = make_hgc_session(tmp / "hgc")
        spec, what = f"session:{path}", "real_eval_hgc as a 30 fps session (400 frames, looped)"
    ckpt, model_what = args.checkpoint, ""
    if not args.no_model and ckpt is None:
        from handpose.core.inference.estimator import default_checkpoint_path

        if default_checkpoint_path().is_file():
            ckpt, model_what = str(default_checkpoint_path()), "assets/models/default.pt"
        else:
            from pipeline import load_hgc, random_resnet18

            if labels is None:
                _, K, uv, xyz = load_hgc(SHARED / "real_eval_hgc")
                labels = (uv, xyz, K)
            ckpt = str(random_resnet18(*labels, tmp / "random_resnet18.pt"))
            model_what = "random-weight ResNet-18, 128 px (UNTRAINED: speed only)"
    elif ckpt:
        model_what = ckpt
    w = MainWindow(AppState())
    w.resize(1280, 760)
    w.show()
    if not args.no_model:
        w.load_checkpoint(ckpt)
    w.open_source(spec)
    src_loop = {"done": False}

    def loop_replay(_tick: Any) -> None:  # sessions play once: loop them like the demo
        src = w.engine.source
        if src is not None and not src_loop["done"] and hasattr(src, "loop"):
            src.loop, src_loop["done"] = True, True

    w.frame_shown.connect(loop_replay)
    probe = EventLoopProbe(10)
    draw_ms: list[float] = []
    lat_ms: list[float] = []
    stages: dict[str, list[float]] = {}
    orig = w._draw

    def timed(tick: Any) -> None:
        t0 = time.perf_counter()
        orig(tick)
        draw_ms.append(1000 * (time.perf_counter() - t0))
        lat_ms.append(1000 * (time.monotonic() - tick.captured_at))
        if tick.processed:
            for k, v in tick.result.timings_ms.items():
                stages.setdefault(k, []).append(float(v))

    w._draw = timed  # type: ignore[method-assign]
    marks: dict[str, Any] = {}

    def start() -> None:
        draw_ms.clear()
        lat_ms.clear()
        stages.clear()
        marks["c0"] = (w.engine.captured, w.engine.processed, w.ticks_shown, w.bridge.coalesced,
                       time.monotonic())
        probe.start()

    def stop() -> None:
        probe.stop()
        marks["c1"] = (w.engine.captured, w.engine.processed, w.ticks_shown, w.bridge.coalesced,
                       time.monotonic())
        app.quit()  # type: ignore[attr-defined]

    def when_ready() -> None:
        if w.engine.source is None or (not args.no_model and not w.state.model.loaded):
            if not w.jobs and not args.no_model and not w.state.model.loaded:
                print(f"model failed: {w.state.model.error}", file=sys.stderr)
                app.quit()  # type: ignore[attr-defined]
                return
            QTimer.singleShot(200, when_ready)
            return
        QTimer.singleShot(int(args.warmup * 1000), start)
        QTimer.singleShot(int((args.warmup + args.seconds) * 1000), stop)

    QTimer.singleShot(200, when_ready)
    app.exec()  # type: ignore[attr-defined]
    if "c1" not in marks:
        raise SystemExit("the run did not complete (no model or no source)")
    (c0, p0, s0, k0, t0), (c1, p1, s1, k1, t1) = marks["c0"], marks["c1"]
    dt = t1 - t0
    ev = probe.summary()
    w.close()
    return {"source": what, "model": model_what or "none (the session's poses/labels)",
            "device": w.state.model.device, "captured_fps": (c1 - c0) / dt,
            "model_fps": (p1 - p0) / dt, "shown_fps": (s1 - s0) / dt,
            "coalesced": k1 - k0, "seconds": dt, "loop_p50": ev["p50"], "loop_p95": ev["p95"],
            "loop_p99": ev["p99"], "loop_max": ev["max"], "loop_n": ev["n"],
            "latency_p50": pct(lat_ms, 50), "latency_p95": pct(lat_ms, 95),
            "draw_p50": pct(draw_ms, 50), "draw_p95": pct(draw_ms, 95),
            "stages": {k: float(np.mean(v)) for k, v in stages.items()}}


def append(args: argparse.Namespace, r: dict[str, Any], load: tuple[float, float]) -> None:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    cmd = "python benchmarks/app_latency.py " + " ".join(sys.argv[1:])
    st = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items() if v >= 0.05) or "-"
    lines = [
        f"\n## App: GUI latency at 30 fps input ({stamp})\n",
        f"`xvfb-run -a -s \"-screen 0 1280x1024x24\" {cmd}`: the main window (1280x760, "
        f"overlay, 3D skeleton + spheres + point cloud, live plots) on {r['source']}; model: "
        f"{r['model']} ({r['device'] or 'no model'}). {r['seconds']:.0f} s after a "
        f"{args.warmup:g} s warm-up. Xvfb with software OpenGL (llvmpipe). Machine: 2 cores "
        f"shared with other engineers (1-min load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end).\n",
        "| captured fps | model fps | shown fps | ticks not shown | event-loop latency p50 / "
        "p95 / p99 / max (ms) | capture->display p50 / p95 (ms) | GUI draw per frame p50 / "
        "p95 (ms) |",
        "|---|---|---|---|---|---|---|",
        f"| {r['captured_fps']:.1f} | {r['model_fps']:.1f} | {r['shown_fps']:.1f} | "
        f"{r['coalesced']} | {r['loop_p50']:.1f} / {r['loop_p95']:.1f} / {r['loop_p99']:.1f} / "
        f"{r['loop_max']:.1f} | {r['latency_p50']:.0f} / {r['latency_p95']:.0f} | "
        f"{r['draw_p50']:.1f} / {r['draw_p95']:.1f} |",
        f"\nPipeline mean ms per processed frame: {st}.",
    ]
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default=None, help="a source spec (default: see the docstring)")
    ap.add_argument("--rgbd", action="store_true", help="real_rgbd frames (point cloud)")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--no-model", action="store_true", help="the GUI alone (recorded poses)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--append", action="store_true", help="append the figures to RESULTS.md")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="handpose-lat-") as tmp:
        r = measure(args, Path(tmp))
    print(json.dumps(r, indent=1))
    if args.append:
        append(args, r, (load0, os.getloadavg()[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
