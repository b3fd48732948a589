"""Recording soak: 640x480 RGB + depth at 30 fps through the app's recorder on a slowed disk.

The app's :class:`handpose.app.recording.Recorder` (bounded queue, writer thread,
``SessionWriter``) is fed like the capture thread feeds it: one frame every 1/30 s by the
wall clock, each followed by its "fate" (a tracking result for every other frame, as a model
slower than the camera would produce, else "not processed"). Frames are real RGB-D frames of
``shared/data/real_rgbd`` (640x480 JPEG + uint16 PNG depth), cycled with a frame counter drawn
in so no two are identical; without the shared data, textured synthetic frames.

How the disk is slowed: every byte the session writer writes goes through the module-level
``handpose.core.data.session_writer._write_all`` (one call per image file and per JSONL line).
The benchmark replaces it with a throttled version that sleeps ``len(data) / (MB/s)`` before
writing (``--disk-mbps``, default 20 MB/s, about 3x the stream's 6 MB/s: the writer is
serial, so each frame's encoding, throttled writes and fsyncs must fit in 33 ms) and, every
``--stall-every`` frames, stalls ``--stall-ms`` more (default 1 s every 300 frames: a
congested disk's periodic flush, which the queue must absorb). A slower disk (e.g.
``--disk-mbps 10``) cannot sustain the stream: the capture thread then waits (back-pressure,
reported) and still no frame is lost. The writer's fsync policy is the app's (``--fsync
close``: the OS gets every byte as it is written, fsync at the end; ``--fsync frame`` fsyncs
every file and folder per frame for real, ~19 ms per frame on the development VM's disk).

Reported: frames offered / written / lost, the capture thread's waits for room
(back-pressure: how often, how long in total, the worst), the largest queue depth, the
producer's worst lag behind the 30 fps schedule, the write throughput. The session is then
checked: its frame count, contiguous indices, and ``--verify`` random frames plus the last one
decoded (RGB and depth).

``--kill`` then runs the crash test: a child process records the same stream (unthrottled,
the app's fsync policy) and is killed with SIGKILL after ``--kill-after`` seconds; the
session must open and replay every frame up to the last complete one (all decoded).

Usage::

    python benchmarks/recording.py [--minutes 10] [--disk-mbps 20] [--kill] [--append]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import handpose.core.data.session_writer as session_writer
from handpose.app.recording import Recorder
from handpose.core.data.session_reader import SessionReader
from handpose.core.data.sources import SessionSource
from handpose.core.types import Frame, FrameResult, HandPose

REPO = Path(__file__).resolve().parents[1]
RGBD = REPO.parent / "shared" / "data" / "real_rgbd"
RESULTS = REPO / "benchmarks" / "RESULTS.md"


def load_frames() -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, str]:
    """(rgb, depth metres) pairs at 640x480, K, and where they came from."""
    from handpose.core.data.imageio import read_depth_png, read_rgb

    meta = RGBD / "frames.json"
    if meta.is_file():
        frames = json.loads(meta.read_text())["frames"]
        out = [(read_rgb(RGBD / f["rgb"]), read_depth_png(RGBD / f["depth"])) for f in frames]
        if all(r.shape == (480, 640, 3) for r, _ in out):
            return out, np.asarray(frames[0]["K"], np.float64), f"{len(out)} real_rgbd frames"
    rng = np.random.default_rng(0)
    out = []
    for k in range(8):
        rgb = cv2.GaussianBlur(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), (0, 0), 3)
        yy, xx = np.mgrid[0:480, 0:640]
        depth = (0.6 + 0.3 * np.sin(xx / 80.0 + k) * np.cos(yy / 60.0)).astype(np.float32)
        out.append((rgb, depth))
    K = np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]])
    return out, K, "8 synthetic textured frames (real_rgbd not found)"


def frame_at(frames: list[tuple[np.ndarray, np.ndarray]], K: np.ndarray, i: int,
             fps: float) -> Frame:
    rgb, depth = frames[i % len(frames)]
    rgb = rgb.copy()
    cv2.putText(rgb, f"{i:06d}", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 0), 2)
    return Frame(rgb=rgb, K=K, depth=depth, timestamp=i / fps, index=i)


_REAL_WRITE = session_writer._write_all


def throttle(mbps: float, stall_every: int, stall_ms: float) -> dict[str, Any]:
    """Replace the writer's byte sink by a slow disk (module docstring); returns counters.
    ``session_writer._write_all = _REAL_WRITE`` restores the real disk."""
    real = _REAL_WRITE
    stats: dict[str, Any] = {"bytes": 0, "lines": 0, "sleep_s": 0.0}
    lock = threading.Lock()

    def slow_write(fd: int, data: bytes) -> None:
        delay = len(data) / (mbps * 1e6) if mbps > 0 else 0.0
        with lock:
            stats["bytes"] += len(data)
            if data.endswith(b"\n") and data.startswith(b'{"index"'):
                stats["lines"] += 1
                if stall_every and stats["lines"] % stall_every == 0:
                    delay += stall_ms / 1000.0
            stats["sleep_s"] += delay
        if delay:
            time.sleep(delay)
        real(fd, data)

    session_writer._write_all = slow_write
    return stats


def fake_result(frame: Frame) -> FrameResult:
    hand = HandPose(joints=np.full((21, 3), 0.5), uv=np.full((21, 2), 320.0))
    return FrameResult(frame, (hand,), {"total": 20.0})


def soak(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    frames, K, what = load_frames()
    disk = throttle(args.disk_mbps, args.stall_every, args.stall_ms)
    rec = Recorder(out, K=K, K_calibrated=True, source="benchmark", capacity=args.capacity,
                   result_wait_s=1.0, fsync=args.fsync)
    n = int(round(args.minutes * 60 * args.fps))
    period = 1.0 / args.fps
    lag_max, wait_max, depth_max = 0.0, 0.0, 0
    t0 = time.monotonic()
    last_print = t0
    for i in range(n):
        due = t0 + i * period
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        lag_max = max(lag_max, time.monotonic() - due)
        f = frame_at(frames, K, i, args.fps)
        w0 = time.monotonic()
        if not rec.put(i, f):
            print(f"recording stopped: {rec.status().error}", file=sys.stderr)
            break
        wait_max = max(wait_max, time.monotonic() - w0)
        if i % 2 == 0:
            rec.add_result(i, fake_result(f))
        else:
            rec.no_result(i)
        depth_max = max(depth_max, rec.status().queued)
        if time.monotonic() - last_print > 30:
            last_print = time.monotonic()
            st = rec.status()
            print(f"  {i}/{n} frames, queue {st.queued}, written {st.written}, blocked "
                  f"{st.blocked_events}x", flush=True)
    t_feed = time.monotonic() - t0
    st = rec.stop(timeout=None)
    t_all = time.monotonic() - t0
    reader = SessionReader(out)
    idx = [r.index for r in reader.records]
    rng = np.random.default_rng(1)
    check = sorted(set(rng.integers(0, len(reader), args.verify).tolist()) | {len(reader) - 1})
    for pos in check:
        fr = reader.frame(pos)
        want = frame_at(frames, K, pos, args.fps)
        assert fr.rgb.shape == (480, 640, 3) and fr.depth is not None
        assert np.abs(fr.depth - want.depth).max() <= 0.0006, "depth differs beyond 1 mm"
    processed = sum(r.processed for r in reader.records)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"frames": what, "n": n, "offered": st.offered, "written": st.written,
            "lost": st.offered - st.written, "in_session": len(reader),
            "contiguous": idx == list(range(len(idx))), "processed": processed,
            "blocked_events": st.blocked_events, "blocked_s": st.blocked_s,
            "wait_max_ms": 1000 * wait_max, "queue_max": depth_max, "capacity": args.capacity,
            "lag_max_ms": 1000 * lag_max, "feed_s": t_feed, "total_s": t_all,
            "mb": size / 1e6, "mb_per_s": size / 1e6 / t_all, "checked": len(check),
            "disk_sleep_s": disk["sleep_s"], "error": st.error}


_CHILD = """
import sys, time
sys.path.insert(0, {bench!r})
from recording import load_frames, frame_at
from handpose.app.recording import Recorder
frames, K, _ = load_frames()
rec = Recorder(sys.argv[1], K=K, capacity=90, result_wait_s=0.0)
t0 = time.monotonic()
i = 0
while True:
    due = t0 + i / 30.0
    if due > time.monotonic():
        time.sleep(due - time.monotonic())
    rec.put(i, frame_at(frames, K, i, 30.0))
    rec.no_result(i)
    i += 1
"""


def kill_test(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM_PLUGIN_PATH"}
    code = _CHILD.format(bench=str(Path(__file__).resolve().parent))
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], env=env)
    poses = out / "poses.jsonl"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120 and not (poses.exists() and poses.stat().st_size > 0):
        time.sleep(0.05)
    time.sleep(args.kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    raw = poses.read_bytes()
    torn = not raw.endswith(b"\n")
    orphans = len(list(out.glob("*/.*.tmp")))
    src = SessionSource(out, skip_bad=False)
    n = len(src)
    decoded = 0
    for f in src:
        assert f.depth is not None and f.rgb.shape == (480, 640, 3)
        decoded += 1
    lines = raw.count(b"\n")
    return {"lines": lines, "torn": torn, "orphans": orphans, "replayed": n,
            "decoded": decoded, "ok": decoded == n == lines}


def append(args: argparse.Namespace, res: dict[str, Any], kill: dict[str, Any] | None,
           load: tuple[float, float]) -> None:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    cmd = "python benchmarks/recording.py " + " ".join(sys.argv[1:])
    lines = [
        f"\n## App: recording soak ({stamp})\n",
        f"`{cmd}`: {args.minutes:g} min of 640x480 RGB + depth at {args.fps:g} fps "
        f"({res['frames']}) through `handpose.app.recording.Recorder` (queue {args.capacity}, "
        f"fsync={args.fsync}) on a disk slowed to {args.disk_mbps:g} MB/s with a "
        f"{args.stall_ms:g} ms stall every {args.stall_every} frames (the writer's "
        f"`_write_all` throttled; {res['disk_sleep_s']:.0f} s of injected sleep). Machine: "
        f"2 cores shared with other engineers (1-min load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end).\n",
        "| frames offered | written | lost | in session, contiguous | capture waits "
        "(back-pressure) | total wait | worst wait | max queue | worst lag vs 30 fps | "
        "written MB | MB/s | frames decoded and checked |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {res['offered']} | {res['written']} | {res['lost']} | {res['in_session']}, "
        f"{'yes' if res['contiguous'] else 'NO'} | {res['blocked_events']} | "
        f"{res['blocked_s']:.1f} s | {res['wait_max_ms']:.0f} ms | {res['queue_max']} / "
        f"{res['capacity']} | {res['lag_max_ms']:.0f} ms | {res['mb']:.0f} | "
        f"{res['mb_per_s']:.1f} | {res['checked']} |",
    ]
    if res["error"]:
        lines.append(f"\nThe recording stopped early: {res['error']}")
    if kill is not None:
        lines += [
            f"\nkill -9 after {args.kill_after:g} s of recording (the app's fsync policy, no "
            "throttle): the session opens and replays every frame up to the last complete "
            "one.\n",
            "| JSONL lines | torn last line | orphan temp files | frames replayed | decoded "
            "(RGB + depth) | all lines replayed |",
            "|---|---|---|---|---|---|",
            f"| {kill['lines']} | {'yes' if kill['torn'] else 'no'} | {kill['orphans']} | "
            f"{kill['replayed']} | {kill['decoded']} | {'yes' if kill['ok'] else 'NO'} |",
        ]
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--disk-mbps", type=float, default=20.0, help="throttle (0 = off)")
    ap.add_argument("--stall-every", type=int, default=300, help="frames between stalls")
    ap.add_argument("--stall-ms", type=float, default=1000.0)
    ap.add_argument("--capacity", type=int, default=90, help="recorder queue (frames)")
    ap.add_argument("--fsync", choices=("frame", "close"), default="close",
                    help="the writer's fsync policy (the app's default: close)")
    ap.add_argument("--verify", type=int, default=200, help="random frames decoded")
    ap.add_argument("--kill", action="store_true", help="also run the kill -9 test")
    ap.add_argument("--kill-after", type=float, default=20.0)
    ap.add_argument("--out", default=None, help="folder for the sessions (default: a temp)")
    ap.add_argument("--keep", action="store_true", help="keep the recorded sessions")
    ap.add_argument("--append", action="store_true", help="append the figures to RESULTS.md")
    args = ap.parse_args(argv)
    root = Path(args.out or tempfile.mkdtemp(prefix="handpose-rec-"))
    root.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()[0]
    try:
        res = soak(args, root / "soak")
        print(json.dumps(res, indent=1))
        kill = None
        if args.kill:
            session_writer._write_all = _REAL_WRITE
            kill = kill_test(args, root / "killed")
            print(json.dumps(kill, indent=1))
        if args.append:
            append(args, res, kill, (load0, os.getloadavg()[0]))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if res["lost"] == 0 and res["contiguous"] else 1


if __name__ == "__main__":
    sys.exit(main())
