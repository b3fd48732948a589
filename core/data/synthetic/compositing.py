"""From rasterised hands to labelled images: compositing over backgrounds with edge
anti-aliasing, camera blur and noise, and the joint visibility test."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import torch

__all__ = ["composite", "contact_occlusion", "joint_visibility"]

_AA = np.array([0.25, 0.5, 0.25], np.float32)
_BANK_SIZE = 512


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed (512, 512, 3) bank of standard normal noise (crops of it make camera noise)."""
    return np.random.default_rng(20261122).standard_normal((_BANK_SIZE, _BANK_SIZE, 3),
                                                           dtype=np.float32)


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(H, W, 3) standard normal noise: a random crop of the bank, randomly flipped and
    negated (tiled when the image is larger than the bank)."""
    bank = _noise_bank()
    reps = (-(-h // _BANK_SIZE), -(-w // _BANK_SIZE), 1)
    src = np.tile(bank, reps) if reps[:2] != (1, 1) else bank
    y0 = int(rng.integers(0, src.shape[0] - h + 1))
    x0 = int(rng.integers(0, src.shape[1] - w + 1))
    out = src[y0:y0 + h, x0:x0 + w]
    if rng.random() < 0.5:
        out = out[::-1]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return out if rng.random() < 0.5 else -out


def contact_occlusion(depth: np.ndarray, reach_px: float, depth_scale: float = 0.02
                      ) -> np.ndarray:
    """Screen-space occlusion of a depth map: how far (clipped to ``depth_scale`` metres) the
    nearest surface within ``reach_px`` pixels lies in front of each pixel, in [0, 1], blurred.
    Skin just behind a finger in front darkens like a contact shadow.

    Args:
        depth: (H, W) metres, 0 = background. reach_px: neighbourhood radius, pixels.

    Returns:
        (H, W) float32, 0 where nothing is in front (and on the background).
    """
    r = max(1, int(round(reach_px)))
    d = np.where(depth > 0, depth, np.float32(1e3)).astype(np.float32)
    near = cv2.erode(d, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    occ = np.clip((d - near) / depth_scale, 0.0, 1.0) * (depth > 0)
    return cv2.GaussianBlur(occ.astype(np.float32), (0, 0), max(0.6, 0.5 * r))


def composite(rgba: np.ndarray, backgrounds: np.ndarray, blur_sigma: np.ndarray,
              noise_sigma: np.ndarray, rngs: list[np.random.Generator],
              antialias: bool = True, depth: np.ndarray | None = None,
              occlusion: np.ndarray | None = None) -> torch.Tensor:
    """Composite rendered hands over backgrounds and add camera blur and noise.

    Args:
        rgba: (B, H, W, 4) uint8 sRGB colour premultiplied by coverage (alpha).
        backgrounds: (B, H, W, 3) float32 sRGB in [0, 1].
        blur_sigma: (B,) Gaussian blur of the whole image, pixels (< 0.05 = none).
        noise_sigma: (B,) standard deviation of additive Gaussian noise, [0, 1] units.
        rngs: B generators for the noise.
        antialias: soften the hand's hard (single-sample) edges: pixels next to the
            silhouette take the 3x3 binomial blur of the premultiplied hand layer.
        depth: (B, H, W) metres of the hand layer, for :func:`contact_occlusion` (reach 2.5 %
            of the image side), darkening by ``occlusion`` (B,) in [0, 1]; None: none.

    Returns:
        (B, H, W, 3) uint8.
    """
    b, h, w, _ = rgba.shape
    layer = rgba.astype(np.float32) * np.float32(1.0 / 255.0)
    alpha = layer[..., 3:]
    if antialias:
        for i in range(b):
            edge = cv2.erode(rgba[i, ..., 3], np.ones((3, 3), np.uint8),
                             borderType=cv2.BORDER_REPLICATE) < 255
            if edge.any():
                soft = cv2.sepFilter2D(layer[i], -1, _AA, _AA, borderType=cv2.BORDER_REPLICATE)
                layer[i][edge] = soft[edge]
    if depth is not None and occlusion is not None:
        for i in np.flatnonzero(np.asarray(occlusion) > 0):
            occ = contact_occlusion(depth[i], 0.025 * max(h, w))
            layer[i, ..., :3] *= (1.0 - float(occlusion[i]) * occ)[..., None]
    img = layer[..., :3] + (1.0 - alpha) * backgrounds
    for i in range(b):
        if float(blur_sigma[i]) >= 0.05:
            img[i] = cv2.GaussianBlur(img[i], (7, 7), float(blur_sigma[i]),
                                      borderType=cv2.BORDER_REPLICATE)
    img *= np.float32(255.0)
    img += np.float32(0.5)
    for i in range(b):
        if noise_sigma[i] > 0:
            img[i] += _noise(rngs[i], h, w) * np.float32(255.0 * noise_sigma[i])
    np.clip(img, 0.0, 255.0, out=img)
    return torch.from_numpy(img.astype(np.uint8))


def joint_visibility(uv: torch.Tensor, z: torch.Tensor, depth: torch.Tensor,
                     tolerance: torch.Tensor) -> torch.Tensor:
    """Which joints are seen: projected inside the image, on the hand, and the rendered
    surface at that pixel at most ``tolerance`` in front of the joint.

    Args:
        uv: (B, J, 2) pixels. z: (B, J) joint depths, metres. depth: (B, H, W) rendered
            depth, metres (0 = background). tolerance: (B, J) metres.

    Returns:
        (B, J) bool.
    """
    b, h, w = depth.shape
    px = torch.round(uv).long()
    inside = (px[..., 0] >= 0) & (px[..., 0] < w) & (px[..., 1] >= 0) & (px[..., 1] < h)
    u = px[..., 0].clamp(0, w - 1)
    v = px[..., 1].clamp(0, h - 1)
    d = depth[torch.arange(b)[:, None], v, u].to(z.dtype)
    return inside & (d > 0) & (d >= z - tolerance.to(z.dtype))
