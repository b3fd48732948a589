"""Time the differentiable renderers: forward + backward, culled against dense.

Scenes: ``--batch`` hands (default 32) of the shipped model's rest pose, randomly rotated and
jittered, 41 spheres each, filling a 0.25 m crop: the sphere depth renderer (perspective with
K, and orthographic in the crop cube) at 64x64 and 128x128, and the 55-circle mask renderer at
the same sizes. Each configuration runs ``--warmup`` times, then ``--repeat`` times (the dense
reference fewer, it is slow); the median is reported with the dense/culled ratio measured in
the same run. The loss is ``depth.sum() + mask.sum()`` (resp. ``mask.sum()``).

Usage: ``python benchmarks/render.py [--threads N] [--append]``; ``--append`` adds the table
to ``benchmarks/RESULTS.md`` with the date, the command and the machine load.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from handpose.core.circles import circles_from_joints2d, reference_length_px_3d
from handpose.core.handmodel import load_hand_model
from handpose.core.render import (
    render_circle_mask,
    render_depth_orthographic,
    render_depth_perspective,
)
from handpose.core.spheres import spheres_from_joints

REPO = Path(__file__).resolve().parents[1]
CROP = 0.25  # metres: side of the crop cube
DEPTH = 0.5  # metres: distance of the hand


def hands(batch: int, seed: int = 0) -> torch.Tensor:
    """(batch, 21, 3) metres: rest poses, random rotation, 3 mm joint jitter, at z = 0.5 m."""
    g = torch.Generator().manual_seed(seed)
    rest = torch.tensor(load_hand_model().rest_pose, dtype=torch.float32)
    q, r = torch.linalg.qr(torch.randn(batch, 3, 3, generator=g))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    q = q * torch.sign(torch.linalg.det(q))[:, None, None]  # proper rotations
    centred = rest - rest.mean(0)
    joints = centred @ q.transpose(1, 2) + 0.003 * torch.randn(batch, 21, 3, generator=g)
    return joints + torch.tensor([0.0, 0.0, DEPTH])


def timed(step: Callable[[], None], warmup: int, repeat: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def cases(batch: int, size: int):
    joints = hands(batch)
    centres, radii = spheres_from_joints(joints)
    f = size * DEPTH / CROP
    K = torch.tensor([[f, 0.0, (size - 1) / 2], [0.0, f, (size - 1) / 2], [0.0, 0.0, 1.0]])
    cube = torch.tensor([0.0, 0.0, DEPTH])
    uvw = joints @ K.T
    cc, cr = circles_from_joints2d(uvw[..., :2] / uvw[..., 2:], reference_length_px_3d(joints, K))

    def persp(cull: bool) -> Callable[[], None]:
        def step() -> None:
            c = centres.detach().requires_grad_()
            d, m = render_depth_perspective(c, radii, K, (size, size), far=DEPTH + CROP / 2,
                                            cull=cull)
            (d.sum() + m.sum()).backward()
        return step

    def ortho(cull: bool) -> Callable[[], None]:
        def step() -> None:
            c = centres.detach().requires_grad_()
            d, m = render_depth_orthographic(c, radii, (size, size), cube, CROP, cull=cull)
            (d.sum() + m.sum()).backward()
        return step

    def circle(cull: bool) -> Callable[[], None]:
        def step() -> None:
            c = cc.detach().requires_grad_()
            render_circle_mask(c, cr, (size, size), cull=cull).sum().backward()
        return step

    return [("sphere depth, perspective", persp), ("sphere depth, orthographic", ortho),
            ("55-circle mask", circle)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--dense-repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--append", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    rows = []
    for size in args.sizes:
        for name, make in cases(args.batch, size):
            culled = timed(make(True), args.warmup, args.repeat)
            dense = timed(make(False), 1, args.dense_repeat)
            rows.append((name, size, culled, dense))
            print(f"{name:28s} {size:4d}x{size:<4d} culled {culled:8.1f} ms   dense "
                  f"{dense:8.1f} ms   x{dense / culled:5.1f}", flush=True)
    load_end = os.getloadavg()[0]
    cores, threads = os.cpu_count(), torch.get_num_threads()
    print(f"{cores} cores, {threads} torch threads, load average {load_start:.1f} -> "
          f"{load_end:.1f}")
    if args.append:
        command = "python benchmarks/render.py " + " ".join(sys.argv[1:])
        lines = [
            f"\n## Renderers, fwd+bwd ({datetime.datetime.now():%Y-%m-%d %H:%M})\n",
            f"`{command.strip()}`: batch {args.batch}, 41 spheres / 55 circles, median of "
            f"{args.repeat} runs after {args.warmup} warm-up ({args.dense_repeat} for dense). "
            f"Machine: {cores} cores, {threads} torch threads, shared with other engineers "
            f"(1-min load average {load_start:.1f} at the start, {load_end:.1f} at the end).\n",
            "| renderer | image | culled ms | dense ms | dense / culled |",
            "|---|---|---|---|---|",
        ]
        for name, size, culled, dense in rows:
            lines.append(f"| {name} | {size}x{size} | {culled:.1f} | {dense:.1f} | "
                         f"{dense / culled:.1f} |")
        path = REPO / "benchmarks" / "RESULTS.md"
        with open(path, "a") as fh:
            fh.write("\n".join(lines) + "\n")
        print(f"appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
