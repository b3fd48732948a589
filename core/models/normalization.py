"""Input normalisation of the networks (stored in every checkpoint).

Networks take float images (B, 3, H, W), RGB, values ``(x / 255 - mean) / std`` per channel.
The default is ImageNet's statistics, which the torchvision and PeCLR ResNet weights expect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["IMAGENET_NORMALIZATION", "check_normalization", "normalize_images"]

#: ImageNet RGB mean and std of images scaled to [0, 1].
IMAGENET_NORMALIZATION: dict[str, tuple[float, float, float]] = {
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
}


def check_normalization(norm: Any) -> dict[str, tuple[float, float, float]]:
    """Validate ``{"mean": 3 floats, "std": 3 positive floats}``; return it as tuples.

    Raises:
        ValueError: naming the bad field.
    """
    if not isinstance(norm, Mapping) or set(norm) != {"mean", "std"}:
        got = sorted(norm) if isinstance(norm, Mapping) else type(norm).__name__
        raise ValueError(f"normalization must be a dict with keys 'mean' and 'std'; got {got}")
    out: dict[str, tuple[float, float, float]] = {}
    for key in ("mean", "std"):
        vals = norm[key]
        try:
            t = tuple(float(v) for v in vals)
        except (TypeError, ValueError):
            raise ValueError(f"normalization[{key!r}] must be 3 numbers; got {vals!r}") from None
        if len(t) != 3 or (key == "std" and min(t) <= 0):
            raise ValueError(
                f"normalization[{key!r}] must be 3 numbers{' > 0' if key == 'std' else ''}; "
                f"got {vals!r}"
            )
        out[key] = (t[0], t[1], t[2])
    return out


def normalize_images(images: Tensor, norm: Mapping[str, Any] = IMAGENET_NORMALIZATION
                     ) -> Tensor:
    """Normalise RGB images for a network.

    Args:
        images: (B, 3, H, W) uint8 in [0, 255], or floating point in [0, 1].
        norm: ``{"mean", "std"}`` of [0, 1] images (see :data:`IMAGENET_NORMALIZATION`).

    Returns:
        (B, 3, H, W) float32 (or the input's floating dtype) normalised images.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W); got {tuple(images.shape)}")
    n = check_normalization(norm)
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    mean = torch.tensor(n["mean"], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(n["std"], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
