"""Augmentation front door: the PeCLR view sampler, plus the geometric and appearance parts.

:class:`PeclrViewSampler` makes one augmented view per image, as METHODS §2 specifies:
rotation U(-45, 45) deg about the hand, crop side = U(0.9, 1.5) x the hand's size, translation
jitter up to 15 px, resized to 128 px, HSV colour jitter. The geometric parameters come back
with the views (:class:`GeometricParams`: the 2x3 matrices, angle, translation in view pixels)
so :func:`handpose.core.losses.contrastive.peclr_loss` can invert them. Call it twice for
the two views of a pair (each draws its own parameters).

Views are RGB in [0, 1]; normalise them for the network with
:func:`handpose.core.models.normalize_images`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .augment_appearance import (
    AppearanceAugmentation,
    color_jitter,
    random_erasing,
    random_gaussian_blur,
    random_grayscale,
)
from .augment_geometric import (
    GeometricAugmentation,
    GeometricParams,
    affine_matrices,
    as_generator,
    flip_handedness,
    transform_points,
    uniform,
    warp_images,
)

__all__ = [
    "PeclrViewSampler",
    "GeometricParams",
    "GeometricAugmentation",
    "AppearanceAugmentation",
    "affine_matrices",
    "warp_images",
    "transform_points",
    "flip_handedness",
    "color_jitter",
    "random_grayscale",
    "random_gaussian_blur",
    "random_erasing",
]


@dataclass(frozen=True)
class PeclrViewSampler:
    """One PeCLR view per image (METHODS §2).

    Attributes:
        out_size: side L of the square view in pixels (128).
        max_angle_deg: rotation ~ U(-max, max) degrees about the hand centre (45).
        margin_range: crop side ~ U(lo, hi) x the hand size (0.9, 1.5).
        max_translation_px: t_x, t_y ~ U(-max, max) view pixels (15).
        input_margin: when no hand boxes are given, the images are taken to be hand crops
            whose side is ``input_margin`` x the hand size *(choose: 1.2)*.
        appearance: the appearance pipeline (colour jitter by default).
        border: "constant" (zeros) or "replicate" outside the source image.
    """

    out_size: int = 128
    max_angle_deg: float = 45.0
    margin_range: tuple[float, float] = (0.9, 1.5)
    max_translation_px: float = 15.0
    input_margin: float = 1.2
    appearance: AppearanceAugmentation = field(default_factory=AppearanceAugmentation)
    border: str = "constant"

    def __post_init__(self) -> None:
        lo, hi = self.margin_range
        if not 0 < lo <= hi:
            raise ValueError(f"margin_range must satisfy 0 < lo <= hi; got {self.margin_range}")
        if self.out_size < 1 or self.input_margin <= 0:
            raise ValueError(f"out_size must be >= 1 and input_margin > 0; got "
                             f"{self.out_size}, {self.input_margin}")

    def sample(self, centers: Tensor, sides: Tensor,
               generator: torch.Generator | int | None = None) -> GeometricParams:
        """Draw the geometric parameters for hands at ``centers`` (B, 2) px of size
        ``sides`` (B,) px; returns the matrices source pixels -> view pixels."""
        gen = as_generator(generator)
        b, dev = centers.shape[0], centers.device
        a = math.radians(self.max_angle_deg)
        angle = uniform(b, -a, a, gen, dev, centers.dtype)
        margin = uniform(b, *self.margin_range, gen, dev, centers.dtype)
        scale = self.out_size / (margin * sides)
        tr = self.max_translation_px
        translation = uniform(2 * b, -tr, tr, gen, dev, centers.dtype).view(b, 2)
        flip = torch.zeros(b, dtype=torch.bool, device=dev)
        c = (self.out_size - 1) / 2
        cout = torch.tensor([c, c], device=dev, dtype=centers.dtype)
        m = affine_matrices(angle, scale, translation, flip, centers, cout)
        return GeometricParams(m, angle, scale, translation, flip,
                               (self.out_size, self.out_size))

    def __call__(self, images: Tensor, centers: Tensor | None = None,
                 sides: Tensor | None = None, generator: torch.Generator | int | None = None,
                 keypoints: Tensor | None = None) -> tuple[Tensor, GeometricParams, Any]:
        """Make one view of each image.

        Args:
            images: (B, 3, H, W) RGB float in [0, 1], on the training device.
            centers: (B, 2) hand centre in image pixels (default: the image centre).
            sides: (B,) hand size in image pixels, e.g. the larger side of the keypoint box
                (default: min(H, W) / input_margin).
            generator: torch.Generator, int seed, or None (global RNG).
            keypoints: optional (B, N, 2) image pixels, returned in view pixels.

        Returns:
            (views (B, 3, L, L) in [0, 1], params, keypoints in view pixels or None).
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W); got {tuple(images.shape)}")
        b, _, h, w = images.shape
        dev, dt = images.device, images.dtype
        if centers is None:
            centers = torch.tensor([(w - 1) / 2, (h - 1) / 2], device=dev, dtype=dt).expand(b, 2)
        if sides is None:
            sides = torch.full((b,), min(h, w) / self.input_margin, device=dev, dtype=dt)
        if centers.shape != (b, 2) or sides.shape != (b,):
            raise ValueError(f"centers must be ({b}, 2) and sides ({b},); got "
                             f"{tuple(centers.shape)} and {tuple(sides.shape)}")
        if not bool(torch.all(sides > 0)):
            raise ValueError(f"sides must be > 0 pixels; got min {float(sides.min())}")
        gen = as_generator(generator)
        params = self.sample(centers.to(dev, dt), sides.to(dev, dt), gen)
        views = warp_images(images, params.matrix, params.out_size, self.border)
        views = self.appearance(views, gen)
        kp = None if keypoints is None else transform_points(keypoints, params.matrix)
        return views, params, kp
