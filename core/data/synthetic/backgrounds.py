"""Backgrounds of synthetic hand images: procedural textures (gradients, fractal noise,
stripes and checks, blurred random shapes, indoor-like blocks) or random crops of a folder of
the user's images, each made from one sample's ``numpy.random.Generator``.

Real hand photos must not be used here (they contain hands, which would then be unlabelled
hands in the labelled images): the optional folder is the user's responsibility.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import cv2
import numpy as np

__all__ = ["BACKGROUND_KINDS", "BackgroundSource", "procedural_background"]

BACKGROUND_KINDS: Final = ("gradient", "noise", "stripes", "checks", "shapes", "blocks")
_IMAGE_SUFFIXES: Final = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _palette(rng: np.random.Generator, k: int) -> np.ndarray:
    """k colours (sRGB 0..1) sharing a random mood, mostly the muted, greyish or dark
    colours of rooms and outdoors, sometimes bright or saturated."""
    base = rng.random(3)
    mood = rng.random()
    cols = np.clip(base + rng.normal(0.0, 0.2, (k, 3)), 0.0, 1.0)
    grey = cols.mean(1, keepdims=True)
    if mood < 0.5:  # muted
        cols = grey + rng.uniform(0.1, 0.45) * (cols - grey)
    elif mood < 0.7:  # dark
        cols = (grey + 0.5 * (cols - grey)) * rng.uniform(0.1, 0.5)
    elif mood < 0.88:  # bright, pale
        cols = 1.0 - (1.0 - (grey + 0.4 * (cols - grey))) * rng.uniform(0.2, 0.6)
    return np.clip(cols, 0.0, 1.0).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    g = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)


def _fractal(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    cells = int(rng.integers(2, 5))
    for _ in range(4):
        out += amp * _smooth_noise(rng, h, w, cells)
        total += amp
        amp *= rng.uniform(0.4, 0.65)
        cells *= 2
    out /= total
    return (out - out.min()) / max(float(np.ptp(out)), 1e-6)


def _coords(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel grids rotated by a random angle, in units of the image's longer side."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    a = rng.uniform(0, np.pi)
    return (np.cos(a) * x + np.sin(a) * y), (-np.sin(a) * x + np.cos(a) * y)


def _map(t: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Scalar field in [0, 1] (H, W) -> colours interpolated along a palette (H, W, 3), through
    a 256-entry lookup table (8-bit colours)."""
    k = len(cols) - 1
    s = np.linspace(0.0, k, 256)
    i = np.minimum(s.astype(int), k - 1)
    f = (s - i)[:, None]
    lut = np.clip(((1 - f) * cols[i] + f * cols[i + 1]) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    t8 = np.clip(t * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = cv2.LUT(cv2.merge([t8, t8, t8]), lut[None])
    return out.astype(np.float32) * np.float32(1.0 / 255.0)


def procedural_background(rng: np.random.Generator, width: int, height: int,
                          kind: str | None = None) -> np.ndarray:
    """A random background.

    Args:
        rng: the sample's generator. width, height: pixels.
        kind: one of :data:`BACKGROUND_KINDS`; None picks one at random.

    Returns:
        (H, W, 3) float32 sRGB in [0, 1].
    """
    if kind is None:
        kind = str(rng.choice(BACKGROUND_KINDS))
    if kind not in BACKGROUND_KINDS:
        raise ValueError(f"kind must be one of {BACKGROUND_KINDS}; got {kind!r}")
    h, w = height, width
    cols = _palette(rng, 4)
    if kind == "gradient":
        u, _ = _coords(rng, h, w)
        t = (u - u.min()) / max(float(np.ptp(u)), 1e-6)
        img = _map(t * rng.uniform(0.5, 1.0), cols[:3])
    elif kind == "noise":
        img = _map(_fractal(rng, h, w), cols)
    elif kind in ("stripes", "checks"):
        u, v = _coords(rng, h, w)
        f = rng.uniform(3.0, 25.0)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * f * u)
        if kind == "checks":
            t = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * f * u) * np.sin(2 * np.pi * f * v))
        elif rng.random() < 0.5:
            t = (t > 0.5).astype(np.float32)
        img = _map(t, cols[:2])
    elif kind == "shapes":
        img = np.ones((h, w, 3), np.float32) * cols[0]
        for _ in range(int(rng.integers(4, 16))):
            c = tuple(float(x) for x in np.clip(cols[rng.integers(1, 4)]
                                                + rng.normal(0, 0.1, 3), 0, 1))
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            size = int(rng.integers(max(2, min(h, w) // 12), max(3, min(h, w) // 2)))
            s = rng.random()
            if s < 0.4:
                cv2.ellipse(img, centre, (size, int(size * rng.uniform(0.3, 1.0))),
                            float(rng.uniform(0, 180)), 0, 360, c, -1)
            elif s < 0.8:
                cv2.rectangle(img, centre, (centre[0] + size, centre[1] + size // 2), c, -1)
            else:
                end = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                cv2.line(img, centre, end, c, max(1, size // 6))
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 4.0) * max(h, w) / 128)
    else:  # blocks: walls, furniture-like rectangles, a vertical light gradient
        img = np.ones((h, w, 3), np.float32) * cols[0]
        for _ in range(int(rng.integers(2, 7))):
            x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
            x1, y1 = x0 + int(rng.integers(w // 6, w)), y0 + int(rng.integers(h // 6, h))
            c = tuple(float(x) for x in cols[rng.integers(1, 4)] * rng.uniform(0.6, 1.1))
            cv2.rectangle(img, (x0, y0), (x1, y1), c, -1)
        y = np.linspace(rng.uniform(0.6, 1.2), rng.uniform(0.6, 1.2), h, dtype=np.float32)
        img = img * y[:, None, None]
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 2.5) * max(h, w) / 128)
    # texture, defocus and sensor-like grain shared by every kind
    if kind != "noise" and rng.random() < 0.6:
        img = img * (1.0 + rng.uniform(0.03, 0.2) * (_fractal(rng, h, w)[..., None] - 0.5))
    if rng.random() < 0.4:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0) * max(h, w) / 128)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


class BackgroundSource:
    """Where backgrounds come from: procedural, or (with probability ``folder_prob``) a
    random crop of an image in ``folder`` (searched recursively; decoded images are cached
    up to ``cache_size``).

    Raises:
        ValueError: ``folder`` does not exist or holds no image, or a bad probability.
    """

    def __init__(self, folder: str | Path | None = None, folder_prob: float = 0.5,
                 cache_size: int = 256):
        if not 0.0 <= folder_prob <= 1.0:
            raise ValueError(f"folder_prob must be in [0, 1]; got {folder_prob}")
        self.files: list[Path] = []
        if folder is not None:
            root = Path(folder)
            if not root.is_dir():
                raise ValueError(f"background folder {root} does not exist")
            self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
            if not self.files:
                raise ValueError(f"background folder {root} holds no image "
                                 f"({', '.join(_IMAGE_SUFFIXES)})")
        self.folder_prob = folder_prob if self.files else 0.0
        self._cache: dict[int, np.ndarray] = {}
        self._cache_size = cache_size

    def _image(self, i: int) -> np.ndarray:
        if i not in self._cache:
            img = cv2.imread(str(self.files[i]), cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f"cannot read background image {self.files[i]}")
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[i] = img[..., ::-1].astype(np.float32) / 255.0
        return self._cache[i]

    def sample(self, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        """(H, W, 3) float32 sRGB in [0, 1] for one sample."""
        if self.files and rng.random() < self.folder_prob:
            img = self._image(int(rng.integers(len(self.files))))
            ih, iw = img.shape[:2]
            scale = rng.uniform(0.3, 1.0)
            ch = max(2, int(ih * scale))
            cw = max(2, min(iw, int(ch * width / height)))
            y0, x0 = int(rng.integers(0, ih - ch + 1)), int(rng.integers(0, iw - cw + 1))
            crop = img[y0:y0 + ch, x0:x0 + cw]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            out = cv2.resize(np.ascontiguousarray(crop), (width, height),
                             interpolation=cv2.INTER_AREA)
            return np.clip(out * rng.uniform(0.7, 1.2), 0.0, 1.0).astype(np.float32)
        return procedural_background(rng, width, height)
