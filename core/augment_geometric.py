"""Batched geometric augmentation on the training device: rotation, scale, translation, flip.

Every augmentation is an affine matrix ``M`` (B, 2, 3) mapping input pixels to output pixels,
in the convention of :mod:`handpose.core.geometry.crop` (pixel centres at integers, OpenCV /
``kornia warp_affine(align_corners=True)``), so it composes with crop matrices
(``geometry.crop.compose_affine(M, A_crop)``) and transforms keypoints exactly
(:func:`transform_points`, the same as ``geometry.crop.apply_affine``). With ``c_in`` /
``c_out`` the centres of the input / output images::

    M = [ s R(angle) F | c_out + t - s R(angle) F c_in ]
    R(a) = [[cos a, sin a], [-sin a, cos a]]   (positive a: counter-clockwise as displayed,
                                                as cv2.getRotationMatrix2D / kornia)
    F = diag(-1, 1) when flipped (a mirror about the vertical line through c_in), else I

i.e. mirror, then rotate and scale about the centre, then translate by ``t`` output pixels.
All random draws come from the ``generator`` (a ``torch.Generator``, an int seed, or None for
torch's global RNG), on the CPU, so results are identical on every device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from kornia.geometry.transform import warp_affine
from torch import Tensor

__all__ = [
    "GeometricParams",
    "GeometricAugmentation",
    "as_generator",
    "uniform",
    "affine_matrices",
    "warp_images",
    "transform_points",
    "flip_handedness",
]

_PADDING = {"constant": "zeros", "replicate": "border", "reflect": "reflection"}


def as_generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    """An int seeds a new CPU generator; a generator or None is returned as is."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int):
        return torch.Generator().manual_seed(generator)
    raise ValueError(f"generator must be a torch.Generator, an int seed or None; "
                     f"got {type(generator).__name__}")


def uniform(n: int, lo: float, hi: float, generator: torch.Generator | None,
            device: Any = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """(n,) samples of U(lo, hi), drawn on the CPU from ``generator``, moved to ``device``."""
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU generator; got one on {generator.device}")
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return (lo + (hi - lo) * u).to(device=device, dtype=dtype)


@dataclass(frozen=True)
class GeometricParams:
    """What a geometric augmentation did to each of B samples.

    Attributes:
        matrix: (B, 2, 3) input pixels -> output pixels (see the module docstring).
        angle: (B,) radians, counter-clockwise as displayed.
        scale: (B,) output pixels per input pixel.
        translation: (B, 2) output pixels, the shift (x, y) applied last.
        flip: (B,) bool, horizontal mirror applied first.
        out_size: (H, W) of the output images.
    """

    matrix: Tensor
    angle: Tensor
    scale: Tensor
    translation: Tensor
    flip: Tensor
    out_size: tuple[int, int]

    def to(self, device: Any) -> GeometricParams:
        return GeometricParams(self.matrix.to(device), self.angle.to(device),
                               self.scale.to(device), self.translation.to(device),
                               self.flip.to(device), self.out_size)


def affine_matrices(angle: Tensor, scale: Tensor, translation: Tensor, flip: Tensor,
                    center_in: Tensor, center_out: Tensor) -> Tensor:
    """Build the (B, 2, 3) matrices of the module docstring.

    Args:
        angle: (B,) radians; scale: (B,) output px per input px (> 0);
        translation: (B, 2) output px; flip: (B,) bool;
        center_in: (B, 2) or (2,) input pixels; center_out: (B, 2) or (2,) output pixels.
    """
    b = angle.shape[0]
    if angle.dim() != 1 or scale.shape != (b,) or translation.shape != (b, 2) or \
            flip.shape != (b,):
        raise ValueError(
            f"expected angle (B,), scale (B,), translation (B, 2), flip (B,); got "
            f"{tuple(angle.shape)}, {tuple(scale.shape)}, {tuple(translation.shape)}, "
            f"{tuple(flip.shape)}"
        )
    c, s = torch.cos(angle), torch.sin(angle)
    fx = 1.0 - 2.0 * flip.to(angle.dtype)
    lin = torch.stack([torch.stack([c * fx, s], -1), torch.stack([-s * fx, c], -1)], -2)
    lin = lin * scale[:, None, None]
    cin = center_in.to(angle).expand(b, 2)
    cout = center_out.to(angle).expand(b, 2)
    t = cout + translation - (lin @ cin.unsqueeze(-1)).squeeze(-1)
    return torch.cat([lin, t.unsqueeze(-1)], -1)


def warp_images(images: Tensor, matrix: Tensor, out_size: tuple[int, int],
                border: str = "constant", interpolation: str = "bilinear") -> Tensor:
    """Warp (B, C, H, W) float images with (B, 2, 3) matrices to (B, C, *out_size).

    Args:
        border: "constant" (zeros), "replicate" or "reflect".
        interpolation: "bilinear" or "nearest" (masks, labels).
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a (B, C, H, W) float tensor; got "
                         f"{tuple(images.shape)} {images.dtype}")
    if matrix.shape != (images.shape[0], 2, 3):
        raise ValueError(f"matrix must have shape ({images.shape[0]}, 2, 3); got "
                         f"{tuple(matrix.shape)}")
    if border not in _PADDING:
        raise ValueError(f"border must be one of {tuple(_PADDING)}; got {border!r}")
    return warp_affine(images, matrix.to(images), (int(out_size[0]), int(out_size[1])),
                       mode=interpolation, padding_mode=_PADDING[border], align_corners=True)


def transform_points(uv: Tensor, matrix: Tensor) -> Tensor:
    """Apply (B, 2, 3) matrices to keypoints (B, N, 2) pixels -> (B, N, 2) pixels."""
    if uv.dim() != 3 or uv.shape[-1] != 2 or matrix.shape != (uv.shape[0], 2, 3):
        raise ValueError(f"expected uv (B, N, 2) and matrix (B, 2, 3); got {tuple(uv.shape)} "
                         f"and {tuple(matrix.shape)}")
    m = matrix.to(uv)
    return uv @ m[:, :, :2].transpose(1, 2) + m[:, None, :, 2]


def flip_handedness(is_right: Tensor, flip: Tensor) -> Tensor:
    """A mirrored left hand looks like a right hand: (B,) bool ``is_right XOR flip``."""
    if is_right.shape != flip.shape:
        raise ValueError(f"is_right and flip must have the same shape; got "
                         f"{tuple(is_right.shape)} and {tuple(flip.shape)}")
    return torch.logical_xor(is_right.bool(), flip.bool())


@dataclass(frozen=True)
class GeometricAugmentation:
    """Random rotation, scale, translation and horizontal flip about the image centre.

    Attributes:
        max_angle_deg: angle ~ U(-max, max) degrees.
        scale_range: zoom factor ~ U(lo, hi) (1 = the input resolution, times
            out_size / input size when they differ).
        max_translation_px: each of t_x, t_y ~ U(-max, max) output pixels.
        flip_prob: probability of a horizontal flip.
        out_size: (H, W) of the output, or None for the input size.
        border: see :func:`warp_images`.
    """

    max_angle_deg: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    max_translation_px: float = 0.0
    flip_prob: float = 0.0
    out_size: tuple[int, int] | None = None
    border: str = "constant"

    def __post_init__(self) -> None:
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must satisfy 0 < lo <= hi; got {self.scale_range}")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1]; got {self.flip_prob}")
        if self.max_angle_deg < 0 or self.max_translation_px < 0:
            raise ValueError("max_angle_deg and max_translation_px must be >= 0; got "
                             f"{self.max_angle_deg}, {self.max_translation_px}")

    def sample(self, batch: int, in_hw: tuple[int, int],
               generator: torch.Generator | int | None = None,
               device: Any = None) -> GeometricParams:
        """Draw the parameters of ``batch`` samples for input images of size ``in_hw``."""
        gen = as_generator(generator)
        out_hw = self.out_size or in_hw
        a = math.radians(self.max_angle_deg)
        angle = uniform(batch, -a, a, gen, device)
        base = min(out_hw[0] / in_hw[0], out_hw[1] / in_hw[1])
        scale = uniform(batch, *self.scale_range, gen, device) * base
        tr = self.max_translation_px
        translation = uniform(2 * batch, -tr, tr, gen, device).view(batch, 2)
        flip = uniform(batch, 0.0, 1.0, gen, device) < self.flip_prob
        cin = torch.tensor([(in_hw[1] - 1) / 2, (in_hw[0] - 1) / 2], device=device)
        cout = torch.tensor([(out_hw[1] - 1) / 2, (out_hw[0] - 1) / 2], device=device)
        m = affine_matrices(angle, scale, translation, flip, cin, cout)
        return GeometricParams(m, angle, scale, translation, flip, (out_hw[0], out_hw[1]))

    def __call__(self, images: Tensor, keypoints: Tensor | None = None,
                 generator: torch.Generator | int | None = None
                 ) -> tuple[Tensor, Tensor | None, GeometricParams]:
        """Augment a batch.

        Args:
            images: (B, C, H, W) float.
            keypoints: optional (B, N, 2) pixels of ``images``.
            generator: see the module docstring.

        Returns:
            (images (B, C, *out_size), keypoints (B, N, 2) output pixels or None, params).
            Flip the handedness labels with :func:`flip_handedness` (``params.flip``).
        """
        if images.dim() != 4:
            raise ValueError(f"images must have shape (B, C, H, W); got {tuple(images.shape)}")
        b, _, h, w = images.shape
        params = self.sample(b, (h, w), generator, images.device)
        out = warp_images(images, params.matrix, params.out_size, self.border)
        kp = None if keypoints is None else transform_points(keypoints, params.matrix)
        return out, kp, params
