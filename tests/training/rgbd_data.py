"""Tiny synthetic RGB + depth + mask sets for the dual / crossvae recipe tests.

:func:`write_freihand_rgbd` writes the FreiHAND layout of ``training_data.write_freihand`` and
adds what ``handpose-data synth`` adds: ``training/depth/%08d.png`` (uint16 mm) and
``training/mask/%08d.png``. The hand's surface is a set of discs along the bones (radius
``radius_px``), each at the depth of its point on the bone, nearest wins: depth and mask are
exactly consistent with the labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from training_data import write_freihand

from handpose.core.skeleton import BONES


def hand_depth(joints: np.ndarray, K: np.ndarray, size: int, radius_px: int = 4
               ) -> np.ndarray:
    """(size, size) float32 metres of the bone-disc hand (0 = background)."""
    t = np.linspace(0.0, 1.0, 10)[:, None]
    pts = np.concatenate([joints[p] + t * (joints[c] - joints[p]) for p, c in BONES])
    pts = pts[np.argsort(-pts[:, 2])]  # far first: nearer discs overwrite
    cam = pts @ K.T
    uv = cam[:, :2] / cam[:, 2:]
    depth = np.zeros((size, size), np.float32)
    for (u, v), z in zip(uv, pts[:, 2], strict=True):
        cv2.circle(depth, (int(round(u)), int(round(v))), radius_px, float(z), -1)
    return depth


def write_freihand_rgbd(root: Path, n: int = 16, size: int = 96, seed: int = 0) -> Path:
    """A FreiHAND-layout folder with depth maps and masks."""
    write_freihand(root, n=n, size=size, seed=seed)
    xyz = np.asarray(json.loads((root / "training_xyz.json").read_text()))
    ks = np.asarray(json.loads((root / "training_K.json").read_text()))
    for sub in ("depth", "mask"):
        (root / "training" / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        d = hand_depth(xyz[i], ks[i], size)
        cv2.imwrite(str(root / "training" / "depth" / f"{i:08d}.png"),
                    np.round(d * 1000).astype(np.uint16))
        cv2.imwrite(str(root / "training" / "mask" / f"{i:08d}.png"),
                    ((d > 0) * 255).astype(np.uint8))
    return root
