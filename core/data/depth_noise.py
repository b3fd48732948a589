"""Sensor-like noise for synthetic depth maps (Wan et al. 2019 train on "synthesized depth
maps augmented with random noise"; the kind of noise is ours to choose).

:class:`DepthNoise` models what separates a rendered depth map from a structured-light or
time-of-flight sensor's:

* **axial noise**: Gaussian with standard deviation ``sigma + sigma_quadratic * Z^2`` metres
  (structured-light sensors grow quadratically with distance: about 1-2 mm at 0.5 m);
* **low-frequency surface wobble**: a smooth random field of amplitude ``wobble`` metres
  (bilinearly upsampled from a ``blob_scale``-times coarser grid);
* **missing readings**: independent pixel dropout ``dropout``, extra dropout
  ``edge_dropout`` on pixels next to a depth discontinuity larger than ``edge_jump`` metres
  (sensors lose silhouettes), and blobs where a smooth random field exceeds a threshold so
  that a fraction ``blob_dropout`` of the image is lost;
* **quantisation** to ``quantization`` metres (1 mm for uint16 millimetre PNGs).

Missing readings are written as 0 ("no reading", the convention of the depth PNGs). Pixels that
held no reading stay 0. Randomness comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["DepthNoise", "add_depth_noise"]


@dataclass(frozen=True)
class DepthNoise:
    """Parameters of :func:`add_depth_noise` (*choose* defaults: a short-range
    structured-light sensor). All lengths in metres, probabilities in [0, 1]."""

    sigma: float = 0.001
    sigma_quadratic: float = 0.004
    wobble: float = 0.001
    dropout: float = 0.01
    edge_dropout: float = 0.3
    edge_jump: float = 0.02
    blob_dropout: float = 0.02
    blob_scale: int = 8
    quantization: float = 0.001

    def __post_init__(self) -> None:
        for name in ("sigma", "sigma_quadratic", "wobble", "quantization", "edge_jump"):
            if getattr(self, name) < 0:
                raise ValueError(f"DepthNoise.{name} must be >= 0 metres; got "
                                 f"{getattr(self, name)}")
        for name in ("dropout", "edge_dropout", "blob_dropout"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"DepthNoise.{name} must be in [0, 1]; got "
                                 f"{getattr(self, name)}")
        if self.blob_scale < 1:
            raise ValueError(f"DepthNoise.blob_scale must be >= 1; got {self.blob_scale}")


def _smooth_field(bsz: int, h: int, w: int, scale: int, gen: torch.Generator | None,
                  like: torch.Tensor) -> torch.Tensor:
    """(B, H, W) smooth standard-normal-ish field (bilinear upsampling of coarse noise)."""
    gh, gw = max(h // scale, 1) + 1, max(w // scale, 1) + 1
    coarse = torch.randn(bsz, 1, gh, gw, generator=gen, dtype=like.dtype).to(like.device)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=True)[:, 0]


def add_depth_noise(depth: torch.Tensor, noise: DepthNoise,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply sensor-like noise (see the module docstring).

    Args:
        depth: (B, H, W) metres, 0 = no reading.
        noise: the parameters.
        generator: a CPU ``torch.Generator`` for reproducible noise (``None``: global RNG).
    Returns:
        (B, H, W) metres, same dtype and device, 0 where the reading is missing.
    Raises:
        ValueError: ``depth`` is not a floating (B, H, W) tensor.
    """
    if not isinstance(depth, torch.Tensor) or depth.ndim != 3 or not depth.is_floating_point():
        raise ValueError(f"depth must be a floating tensor (B, H, W) metres; got "
                         f"{type(depth).__name__} {tuple(getattr(depth, 'shape', ()))}")
    bsz, h, w = depth.shape
    has = depth > 0

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, dtype=depth.dtype).to(depth.device)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=depth.dtype).to(depth.device)

    std = noise.sigma + noise.sigma_quadratic * depth * depth
    out = depth + std * randn(bsz, h, w)
    if noise.wobble > 0:
        out = out + noise.wobble * _smooth_field(bsz, h, w, noise.blob_scale, generator, depth)
    drop = rand(bsz, h, w) < noise.dropout
    if noise.edge_dropout > 0:
        padded = F.pad(depth[:, None], (1, 1, 1, 1), mode="replicate")
        hi = F.max_pool2d(padded, 3, stride=1)[:, 0]
        lo = -F.max_pool2d(-padded, 3, stride=1)[:, 0]
        edge = (hi - lo) > noise.edge_jump
        drop |= edge & (rand(bsz, h, w) < noise.edge_dropout)
    if noise.blob_dropout > 0:
        field = _smooth_field(bsz, h, w, noise.blob_scale, generator, depth)
        # a fraction blob_dropout of a standard normal field lies above this quantile
        thresh = torch.distributions.Normal(0.0, 1.0).icdf(
            torch.tensor(1.0 - noise.blob_dropout)).item() if noise.blob_dropout < 1 else -1e9
        # bilinear upsampling shrinks the variance; renormalise per image
        z = (field - field.mean((1, 2), keepdim=True)) / field.std((1, 2), keepdim=True).clamp(
            min=1e-6)
        drop |= z > thresh
    if noise.quantization > 0:
        out = torch.round(out / noise.quantization) * noise.quantization
    keep = has & ~drop & (out > 0)
    return torch.where(keep, out, torch.zeros_like(out))
