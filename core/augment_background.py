"""Background replacement of labelled hand crops: the hand (and its forearm) kept where the
keypoints say it is, everything else swapped for a procedural background.

Most real photos with varied gestures in ``shared/data/real_hands`` show the hand on a plain
backdrop (white, black, a wall), and a network trained on them learns the backdrop with the
pose: the shipped model, given 1500 of its own training crops with the backdrop outside the
keypoints' hand region swapped for real scenes, fell from PCK@0.2 0.978 to 0.858 against the
teacher's keypoints, 0.12-0.14 on the gesture sources and 0.01 on the open palms
(``benchmarks/background_reliance.py``). Swapping backgrounds during training puts those
gestures in front of other backdrops, as a webcam sees them.

The hand region is drawn from the 21 keypoints alone (no segmentation is available): a
capsule along each bone, the palm polygon, a disc at each joint and, optionally, the forearm
as a band leaving the wrist away from the middle finger's base; all widths are fractions of the
keypoint box side. It is generous on purpose (a halo of the old background is better than a
cut finger), and its edge is feathered so the swap leaves no hard seam.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .data.synthetic.backgrounds import BackgroundSource
from .skeleton import BONES, NUM_JOINTS

__all__ = ["hand_region_mask", "swap_background"]

#: Bone capsule width / keypoint box side (a finger is ~0.10-0.12 of the hand's length).
BONE_WIDTH = 0.13
#: Forearm band width / palm width (index to little finger base) and length / box side.
FOREARM_WIDTH = 1.1
FOREARM_LENGTH = 0.7
_PALM = (0, 1, 2, 5, 9, 13, 17)
_ON = (255.0,)  # the mask's drawing colour
_PROCEDURAL = BackgroundSource()


def hand_region_mask(uv: Any, height: int, width: int, forearm: bool = True,
                     feather_px: float = 1.5) -> np.ndarray:
    """Where the hand of these keypoints is, as a soft mask.

    Args:
        uv: (21, 2) keypoints, pixels of the image (x right, y down).
        height, width: the image's size, pixels.
        forearm: include a band leaving the wrist away from the middle finger's base.
        feather_px: Gaussian blur of the mask's edge, pixels (0: a hard 0/1 mask).

    Returns:
        (H, W) float32 in [0, 1]: 1 on the hand.
    """
    p = np.asarray(uv, dtype=np.float64)
    if p.shape != (NUM_JOINTS, 2) or not np.all(np.isfinite(p)):
        raise ValueError(f"uv must be finite ({NUM_JOINTS}, 2) pixels; got shape {p.shape}")
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive pixels; got {height} x {width}")
    side = float(np.max(p.max(0) - p.min(0)))
    m = np.zeros((height, width), np.uint8)
    thick = max(2, int(round(BONE_WIDTH * side)))
    q = np.round(p).astype(np.int32)
    for a, b in BONES:
        cv2.line(m, (int(q[a, 0]), int(q[a, 1])), (int(q[b, 0]), int(q[b, 1])), _ON, thick)
    cv2.fillConvexPoly(m, cv2.convexHull(q[list(_PALM)]), _ON)
    for x, y in q:
        cv2.circle(m, (int(x), int(y)), thick // 2 + 1, _ON, -1)
    if forearm:
        away = p[0] - p[9]
        n = float(np.linalg.norm(away))
        if n > 1e-6:
            end = p[0] + away / n * FOREARM_LENGTH * side
            band = max(2, int(round(FOREARM_WIDTH * float(np.linalg.norm(p[5] - p[17])))))
            cv2.line(m, (int(q[0, 0]), int(q[0, 1])),
                     (int(round(end[0])), int(round(end[1]))), _ON, band)
    hard = m.astype(np.float32) * np.float32(1.0 / 255.0)
    if feather_px <= 0:
        return hard
    soft = np.asarray(cv2.GaussianBlur(hard, (0, 0), float(feather_px)), dtype=np.float32)
    return np.maximum(soft, hard * np.float32(0.5))  # the region itself stays >= 1/2


def swap_background(rgb: np.ndarray, uv: Any, rng: np.random.Generator,
                    forearm: bool = True, source: BackgroundSource | None = None
                    ) -> np.ndarray:
    """The image with everything outside the keypoints' hand region replaced by a new
    background.

    Args:
        rgb: (H, W, 3) uint8 RGB image.
        uv: (21, 2) its hand's keypoints, pixels.
        rng: draws the background.
        forearm: keep the forearm band too (see :func:`hand_region_mask`).
        source: where backgrounds come from (a folder of images without hands, mixed with
            procedural ones; :class:`~.data.synthetic.backgrounds.BackgroundSource`); None:
            procedural only.

    Returns:
        (H, W, 3) uint8, a new array; pixels where the mask is 1 are unchanged.
    """
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"rgb must be (H, W, 3) uint8; got {img.shape} {img.dtype}")
    h, w = img.shape[:2]
    mask = hand_region_mask(uv, h, w, forearm)[..., None]
    bg = (source or _PROCEDURAL).sample(rng, w, h) * np.float32(255.0)
    out = mask * img.astype(np.float32) + (1.0 - mask) * bg
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
