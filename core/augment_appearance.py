"""Batched appearance augmentation: colour jitter, grayscale, Gaussian blur, random erasing.

Images are (B, 3, H, W) RGB floats in [0, 1] (before the network normalisation); each sample
draws its own parameters from the ``generator`` (torch.Generator, int seed or None), on the
CPU, so a seed gives the same result on every device. The pixel operations are kornia's.
Geometry is untouched: keypoints stay valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from kornia.color import rgb_to_grayscale
from kornia.enhance import adjust_hue, adjust_saturation
from kornia.filters import gaussian_blur2d
from torch import Tensor

from .augment_geometric import as_generator, uniform

__all__ = [
    "color_jitter",
    "random_grayscale",
    "random_gaussian_blur",
    "random_erasing",
    "AppearanceAugmentation",
]


def _check_rgb(images: Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f"images must be (B, 3, H, W) float RGB in [0, 1]; got "
                         f"{tuple(images.shape)} {images.dtype}")


def _range(name: str, r: tuple[float, float], lo_min: float = 0.0) -> None:
    if len(r) != 2 or not lo_min <= r[0] <= r[1]:
        raise ValueError(f"{name} must be (lo, hi) with {lo_min} <= lo <= hi; got {r}")


def _chosen(p: float, b: int, gen: torch.Generator | None, device: torch.device) -> Tensor:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be in [0, 1]; got {p}")
    return uniform(b, 0.0, 1.0, gen, device) < p


def color_jitter(images: Tensor, hue: float = 0.05, saturation: tuple[float, float] = (0.6, 1.4),
                 value: tuple[float, float] = (0.6, 1.4), value_shift: float = 0.1,
                 generator: torch.Generator | int | None = None) -> Tensor:
    """HSV colour jitter (PeCLR: hue, saturation, value).

    Per sample: hue rotated by U(-hue, hue) turns (1 turn = 360 deg), saturation times
    U(saturation), then RGB (hence V) times U(value) plus U(-value_shift, value_shift),
    clamped to [0, 1]. Defaults *(choose)*.

    Args:
        images: (B, 3, H, W) in [0, 1].

    Returns:
        (B, 3, H, W) in [0, 1].
    """
    _check_rgb(images)
    _range("saturation", saturation)
    _range("value", value)
    gen = as_generator(generator)
    b, dev, dt = images.shape[0], images.device, images.dtype
    h = uniform(b, -hue, hue, gen, dev, dt) * (2 * math.pi)
    s = uniform(b, *saturation, gen, dev, dt)
    v = uniform(b, *value, gen, dev, dt)
    off = uniform(b, -value_shift, value_shift, gen, dev, dt)
    out = adjust_saturation(adjust_hue(images, h), s)
    return (out * v.view(b, 1, 1, 1) + off.view(b, 1, 1, 1)).clamp(0.0, 1.0)


def random_grayscale(images: Tensor, p: float = 0.2,
                     generator: torch.Generator | int | None = None) -> Tensor:
    """Replace each image by its luminance (3 equal channels) with probability ``p``."""
    _check_rgb(images)
    pick = _chosen(p, images.shape[0], as_generator(generator), images.device)
    gray = rgb_to_grayscale(images).expand_as(images)
    return torch.where(pick.view(-1, 1, 1, 1), gray, images)


def random_gaussian_blur(images: Tensor, p: float = 0.5, sigma: tuple[float, float] = (0.1, 2.0),
                         kernel_size: int | None = None,
                         generator: torch.Generator | int | None = None) -> Tensor:
    """Gaussian blur with sigma ~ U(sigma) pixels, with probability ``p`` (SimCLR).

    Args:
        kernel_size: odd side of the kernel; default about 10 % of the image side.
    """
    _check_rgb(images)
    _range("sigma", sigma, lo_min=1e-6)
    gen = as_generator(generator)
    b = images.shape[0]
    pick = _chosen(p, b, gen, images.device)
    sig = uniform(b, *sigma, gen, images.device, images.dtype)
    k = kernel_size or max(3, int(0.1 * min(images.shape[-2:])) | 1)
    if k % 2 == 0 or k < 1:
        raise ValueError(f"kernel_size must be odd and >= 1; got {k}")
    blurred = gaussian_blur2d(images, (k, k), torch.stack([sig, sig], -1))
    return torch.where(pick.view(-1, 1, 1, 1), blurred, images)


def random_erasing(images: Tensor, p: float = 0.5, area: tuple[float, float] = (0.02, 0.2),
                   aspect: tuple[float, float] = (0.3, 3.3), fill: str = "random",
                   generator: torch.Generator | int | None = None) -> Tensor:
    """Erase one axis-aligned rectangle per chosen image (random erasing / cutout).

    Args:
        p: probability per image.
        area: fraction of the image area ~ U(area).
        aspect: height / width ~ log-uniform in ``aspect``.
        fill: "random" (a uniform random colour per image) or "zero".

    Returns:
        (B, 3, H, W) images with the rectangles filled.
    """
    _check_rgb(images)
    _range("area", area)
    _range("aspect", aspect, lo_min=1e-6)
    if fill not in ("random", "zero"):
        raise ValueError(f"fill must be 'random' or 'zero'; got {fill!r}")
    gen = as_generator(generator)
    b, _, h, w = images.shape
    dev, dt = images.device, images.dtype
    pick = _chosen(p, b, gen, dev)
    a = uniform(b, *area, gen, dev, dt) * (h * w)
    r = torch.exp(uniform(b, math.log(aspect[0]), math.log(aspect[1]), gen, dev, dt))
    rh = torch.sqrt(a * r).clamp(1.0, float(h))
    rw = torch.sqrt(a / r).clamp(1.0, float(w))
    y0 = uniform(b, 0.0, 1.0, gen, dev, dt) * (h - rh)
    x0 = uniform(b, 0.0, 1.0, gen, dev, dt) * (w - rw)
    ys = torch.arange(h, device=dev, dtype=dt).view(1, h, 1)
    xs = torch.arange(w, device=dev, dtype=dt).view(1, 1, w)
    inside = ((ys >= y0.view(b, 1, 1)) & (ys < (y0 + rh).view(b, 1, 1))
              & (xs >= x0.view(b, 1, 1)) & (xs < (x0 + rw).view(b, 1, 1)))
    mask = (inside & pick.view(b, 1, 1)).unsqueeze(1)
    colour = uniform(3 * b, 0.0, 1.0, gen, dev, dt).view(b, 3, 1, 1)
    if fill == "zero":
        colour = torch.zeros_like(colour)
    return torch.where(mask, colour.expand_as(images), images)


@dataclass(frozen=True)
class AppearanceAugmentation:
    """The appearance pipeline: colour jitter, grayscale, blur, erasing (in that order).

    Probabilities of 0 switch a step off; ``jitter_prob`` applies the colour jitter to a
    random subset (1 = always, as PeCLR). Defaults *(choose)*.
    """

    jitter_prob: float = 1.0
    hue: float = 0.05
    saturation: tuple[float, float] = (0.6, 1.4)
    value: tuple[float, float] = (0.6, 1.4)
    value_shift: float = 0.1
    grayscale_prob: float = 0.0
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    erase_prob: float = 0.0
    erase_area: tuple[float, float] = (0.02, 0.2)

    def __call__(self, images: Tensor, generator: torch.Generator | int | None = None
                 ) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> augmented (B, 3, H, W) in [0, 1]."""
        gen = as_generator(generator)
        out = images
        if self.jitter_prob > 0:
            pick = _chosen(self.jitter_prob, images.shape[0], gen, images.device)
            jit = color_jitter(out, self.hue, self.saturation, self.value, self.value_shift,
                               generator=gen)
            out = torch.where(pick.view(-1, 1, 1, 1), jit, out)
        if self.grayscale_prob > 0:
            out = random_grayscale(out, self.grayscale_prob, generator=gen)
        if self.blur_prob > 0:
            out = random_gaussian_blur(out, self.blur_prob, self.blur_sigma, generator=gen)
        if self.erase_prob > 0:
            out = random_erasing(out, self.erase_prob, self.erase_area, generator=gen)
        return out
