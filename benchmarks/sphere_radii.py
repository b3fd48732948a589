"""Calibrate the sphere model's ``radius_scale`` on the real RGB-D frames.

For each candidate scale (radii = published radius_mm x scale x hand_scale, hand_scale the
pose's mean bone-length ratio to the template), on every frame of ``real_rgbd``:

* points: the depth pixels with a reading, back-projected, that lie within 3 cm of a sphere
  centre (a fixed set for all scales);
* ``|d|``: mean over points of the distance to the nearest sphere surface
  ``min_j | |p - c_j| - r_j |``; ``signed``: the mean of the signed distance (positive outside);
* ``agree``: the share of rendered-hand pixels (hard render, mask > 0.5) with a reading whose
  observed depth is within 1 cm of the rendered depth;
* ``cover``: the share of the points' pixels that the rendered silhouette covers.

Usage: ``python benchmarks/sphere_radii.py [--data DIR] [--append]`` (``--append`` adds the
table to benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from handpose.core.handmodel import default_hand_model_path, load_hand_model
from handpose.core.render import render_depth_perspective
from handpose.core.spheres import estimate_hand_scale

REPO = Path(__file__).resolve().parents[1]
#: a coarse sweep plus a fine one around the optimum found by the coarse one (0.65-0.70)
SCALES = sorted({round(0.30 + 0.05 * i, 2) for i in range(15)}
                | {round(0.60 + 0.01 * i, 2) for i in range(16)})


def load_frames(data: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    meta = json.loads((data / "frames.json").read_text())
    out = []
    for f in meta["frames"]:
        depth = cv2.imread(str(data / f["depth"]), cv2.IMREAD_UNCHANGED).astype(np.float64) / 1e3
        out.append((depth, np.asarray(f["K"], float), np.asarray(f["joints_m"], float)))
    return out


def measure(frames, scales) -> list[dict]:
    model = load_hand_model()
    with open(default_hand_model_path()) as fh:
        radius_mm = np.array([s["radius_mm"] for s in json.load(fh)["spheres"]["values"]])
    weights = torch.tensor(model.sphere_weights)
    rows = {s: {"d": [], "signed": [], "agree_n": 0, "agree_d": 0, "cov_n": 0, "cov_d": 0}
            for s in scales}
    for depth, K, joints in frames:
        j = torch.tensor(joints)
        centres = weights @ j
        hand_scale = float(estimate_hand_scale(j))
        h, w = depth.shape
        vv, uu = np.nonzero(depth > 0)
        z = depth[vv, uu]
        pts = np.stack([(uu - K[0, 2]) / K[0, 0] * z, (vv - K[1, 2]) / K[1, 1] * z, z], -1)
        dist = torch.cdist(torch.tensor(pts), centres).numpy()  # (M, 41)
        axis = (joints[9] - joints[0]) / np.linalg.norm(joints[9] - joints[0])
        distal = (pts - joints[0]) @ axis > 0  # drop the forearm: points behind the wrist
        near = (dist.min(1) < 0.03) & distal
        dist, pu, pv = dist[near], uu[near], vv[near]
        for s in scales:
            radii = radius_mm / 1000.0 * s * hand_scale
            signed = (dist - radii[None]).min(axis=1)  # signed distance to the union
            r = rows[s]
            r["d"].append(np.abs(signed))
            r["signed"].append(signed)
            rd, rm = render_depth_perspective(
                centres[None], torch.tensor(radii)[None], torch.tensor(K), (h, w),
                far=10.0, tau=1e-5, sigma=0.01)
            rd, rm = rd[0].numpy(), rm[0].numpy() > 0.5
            seen = rm & (depth > 0)
            r["agree_n"] += int((np.abs(rd - depth)[seen] < 0.01).sum())
            r["agree_d"] += int(seen.sum())
            r["cov_n"] += int(rm[pv, pu].sum())
            r["cov_d"] += len(pu)
    out = []
    for s in scales:
        r = rows[s]
        d, sg = np.concatenate(r["d"]), np.concatenate(r["signed"])
        out.append({"scale": s, "mean_abs_mm": 1e3 * d.mean(), "median_abs_mm": 1e3 * np.median(d),
                    "signed_mm": 1e3 * sg.mean(), "agree": r["agree_n"] / max(r["agree_d"], 1),
                    "cover": r["cov_n"] / max(r["cov_d"], 1), "points": len(d)})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| radius_scale | mean abs dist mm | median mm | mean signed mm | agree <1 cm "
             "| cover |", "|---|---|---|---|---|---|"]
    best = min(rows, key=lambda r: r["mean_abs_mm"])
    for r in rows:
        mark = " **best**" if r is best else ""
        lines.append(f"| {r['scale']:.2f}{mark} | {r['mean_abs_mm']:.2f} "
                     f"| {r['median_abs_mm']:.2f} | {r['signed_mm']:+.2f} | {r['agree']:.3f} "
                     f"| {r['cover']:.3f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "real_rgbd")
    ap.add_argument("--append", action="store_true", help="append the table to RESULTS.md")
    args = ap.parse_args()
    frames = load_frames(args.data)
    rows = measure(frames, SCALES)
    text = table(rows)
    print(f"{len(frames)} frames, {rows[0]['points']} points within 3 cm of a sphere centre")
    print(text)
    if args.append:
        stamp = datetime.date.today().isoformat()
        with open(REPO / "benchmarks" / "RESULTS.md", "a") as fh:
            fh.write(f"\n## Sphere radius calibration ({stamp})\n\n"
                     f"`python benchmarks/sphere_radii.py --append` on {args.data.name} "
                     f"({len(frames)} frames, {rows[0]['points']} depth points within 3 cm of a "
                     f"sphere centre).\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
