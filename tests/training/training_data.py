"""Tiny on-disk datasets for the recipe tests: a FreiHAND-layout labelled set, an image folder.

Images show the hand's bones drawn on a noisy background, so a model can learn something in a
few updates; labels are exact (uv = projection of the 3D joints with K).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from handpose.core.skeleton import BONES

# an open right hand, metres, wrist at the origin, fingers towards -y (up in the image)
_TEMPLATE = np.array(
    [[0, 0, 0],
     [-0.02, -0.02, 0], [-0.035, -0.04, 0], [-0.045, -0.06, 0], [-0.055, -0.075, 0],
     [-0.02, -0.08, 0], [-0.022, -0.11, 0], [-0.024, -0.13, 0], [-0.026, -0.145, 0],
     [0.0, -0.085, 0], [0.0, -0.115, 0], [0.0, -0.14, 0], [0.0, -0.16, 0],
     [0.018, -0.08, 0], [0.02, -0.107, 0], [0.022, -0.128, 0], [0.024, -0.145, 0],
     [0.034, -0.07, 0], [0.038, -0.09, 0], [0.041, -0.105, 0], [0.044, -0.118, 0]],
    dtype=np.float64,
)


def _pose(rng: np.random.Generator) -> np.ndarray:
    a, b, c = rng.uniform(-0.6, 0.6, 3)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    bend = _TEMPLATE.copy()
    bend[:, 2] += rng.uniform(-0.01, 0.01, 21)
    centre = np.array([rng.uniform(-0.02, 0.02), rng.uniform(0.0, 0.04), rng.uniform(0.45, 0.6)])
    return (bend @ (rz @ ry @ rx).T + centre).astype(np.float32)


def _draw(size: int, uv: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    for k, (p, c) in enumerate(BONES):
        colour = (80 + 8 * k, 200 - 6 * k, 120 + 5 * k)
        a = tuple(int(round(x)) for x in uv[p])
        b = tuple(int(round(x)) for x in uv[c])
        cv2.line(img, a, b, colour, 3, cv2.LINE_AA)
    return img


def write_freihand(root: Path, n: int = 16, size: int = 128, seed: int = 0) -> Path:
    """A FreiHAND-layout folder: ``training_{xyz,K,scale}.json`` and ``training/rgb``."""
    rng = np.random.default_rng(seed)
    (root / "training" / "rgb").mkdir(parents=True, exist_ok=True)
    K = np.array([[size * 1.1, 0, (size - 1) / 2], [0, size * 1.1, (size - 1) / 2], [0, 0, 1]])
    xyz, ks, scales = [], [], []
    for i in range(n):
        j = _pose(rng)
        cam = j @ K.T
        uv = cam[:, :2] / cam[:, 2:]
        cv2.imwrite(str(root / "training" / "rgb" / f"{i:08d}.jpg"),
                    cv2.cvtColor(_draw(size, uv, rng), cv2.COLOR_RGB2BGR))
        xyz.append(j.tolist())
        ks.append(K.tolist())
        scales.append(float(np.linalg.norm(j[10] - j[9])))
    for name, data in (("xyz", xyz), ("K", ks), ("scale", scales)):
        (root / f"training_{name}.json").write_text(json.dumps(data))
    return root


def write_image_folder(root: Path, n: int = 16, size: int = 96, seed: int = 1) -> Path:
    """A folder of unlabelled hand-like images in two sub-folders (sources)."""
    rng = np.random.default_rng(seed)
    K = np.array([[size * 1.1, 0, (size - 1) / 2], [0, size * 1.1, (size - 1) / 2], [0, 0, 1]])
    for i in range(n):
        d = root / ("a" if i % 2 else "b")
        d.mkdir(parents=True, exist_ok=True)
        cam = _pose(rng) @ K.T
        img = _draw(size, cam[:, :2] / cam[:, 2:], rng)
        cv2.imwrite(str(d / f"img_{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


def write_masked_freihand(root: Path, n: int = 16, size: int = 96) -> Path:
    """A FreiHAND-layout set whose ``training/mask/%08d.png`` covers the drawn bones."""
    write_freihand(root, n=n, size=size)
    xyz = np.array(json.loads((root / "training_xyz.json").read_text()))
    K = np.array(json.loads((root / "training_K.json").read_text()))
    (root / "training" / "mask").mkdir()
    for i in range(n):
        cam = xyz[i] @ K[i].T
        uv = cam[:, :2] / cam[:, 2:]
        m = np.zeros((size, size), np.uint8)
        for p, c in BONES:
            cv2.line(m, tuple(int(round(x)) for x in uv[p]), tuple(int(round(x)) for x in uv[c]),
                     255, 6)
        cv2.imwrite(str(root / "training" / "mask" / f"{i:08d}.png"), m)
    return root
