"""Multi-modal synthetic data of the ``dual`` and ``crossvae`` recipes.

Labelled crops with RGB, depth (metres) and, when the folder has them, hand masks
(``handpose-data synth`` writes the FreiHAND layout with ``training/depth/%08d.png`` and
``training/mask/%08d.png``). The helpers here move images, depth maps and masks through one
geometric augmentation together (the 2.5D targets are recomputed exactly from the 3D joints
with the augmented crop's K, as in the ``finetune`` recipe), perturb depth maps (random
erasing, salt-and-pepper noise), and sample hand point clouds from depth crops.

A hand pixel is one of the mask when the sample has a mask, else a depth reading within
``window`` metres of the wrist's depth (:func:`hand_pixels`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from handpose.core.augment import GeometricAugmentation, affine_matrices, warp_images
from handpose.core.augment_geometric import uniform
from handpose.core.data.freihand import FreiHANDDataset
from handpose.core.data.session_reader import SessionDataset
from handpose.core.geometry.crop import crop_intrinsics
from handpose.core.geometry.lifting import to_25d

from ..config import ConfigError
from .data import LabelledData, require_path, seeded_subset

__all__ = [
    "GeometricSpec",
    "PairedDataset",
    "multimodal_dataset",
    "warp_depth",
    "warp_mask",
    "augmented_targets",
    "compose_affines",
    "weak_matrices",
    "perturb_depth",
    "pool_maps",
    "hand_pixels",
    "sample_hand_points",
]


@dataclass(frozen=True)
class GeometricSpec:
    """Rotation about the crop centre, zoom and shift of the crops.

    Attributes:
        max_angle_deg: angle ~ U(-max, max).
        scale_range: zoom ~ U(lo, hi).
        max_translation: shift ~ U(-max, max) per axis, as a fraction of the crop side
            (20 px of a 256-px crop = 0.078 in the dissertation).
    """

    max_angle_deg: float = 180.0
    scale_range: tuple[float, ...] = (0.8, 1.0)
    max_translation: float = 0.078

    def __post_init__(self) -> None:
        if len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"scale_range must be (lo, hi) with 0 < lo <= hi; got "
                             f"{self.scale_range}")
        if self.max_angle_deg < 0 or self.max_translation < 0:
            raise ValueError("max_angle_deg and max_translation must be >= 0")

    def augmentation(self, size: int) -> GeometricAugmentation:
        """The augmentation for ``size``-pixel crops."""
        return GeometricAugmentation(max_angle_deg=self.max_angle_deg,
                                     scale_range=(self.scale_range[0], self.scale_range[1]),
                                     max_translation_px=self.max_translation * size)


def multimodal_dataset(sec: LabelledData, size: int, seed: int, key: str = "data.root",
                       need_depth: bool = True) -> Dataset[Any]:
    """Labelled ``size``-pixel crops with depth (and masks when the folder has them).

    Raises:
        ConfigError: no such folder, no labelled samples, or no depth maps when needed.
    """
    root = require_path(sec.root, key)
    ds: Any
    if sec.format == "session":
        ds = SessionDataset(root, labelled_only=True, crop_size=size,
                            crop_margin=sec.crop_margin, skip_bad=sec.skip_bad)
        has_depth = (root / "depth").is_dir()
    else:
        ds = FreiHANDDataset(root, sec.versions, split=sec.split, load_depth=True,
                             load_mask=True, crop_size=size, crop_margin=sec.crop_margin,
                             skip_bad=sec.skip_bad)
        has_depth = ds.depth_dir is not None
    if need_depth and not has_depth:
        raise ConfigError(f"{key}: {root.resolve()} has no depth maps (expected "
                          f"{sec.split}/depth/%08d.png: synthetic RGB + depth from "
                          f"'handpose-data synth', or an RGB-D session)")
    if len(ds) == 0:
        raise ConfigError(f"{key}: no labelled samples in {root.resolve()}")
    return seeded_subset(ds, sec.fraction, sec.limit, seed)


class PairedDataset(Dataset[dict[str, Any]]):
    """Item i: unlabelled crop ``i mod NU`` and (when given) labelled crop ``i mod NL``."""

    def __init__(self, unlabelled: Dataset[Any], labelled: Dataset[Any] | None) -> None:
        self.unlabelled, self.labelled = unlabelled, labelled
        self.nu = len(unlabelled)  # type: ignore[arg-type]
        self.nl = 0 if labelled is None else len(labelled)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return max(self.nu, self.nl)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {"unl": self.unlabelled[i % self.nu]}
        if self.labelled is not None:
            item["lab"] = self.labelled[i % self.nl]
        return item


def warp_depth(depth: torch.Tensor, matrix: torch.Tensor, size: int, fill: float = 1.0
               ) -> torch.Tensor:
    """Warp (B, 1, S, S) depth maps (nearest neighbour; pixels from outside read ``fill``)."""
    return warp_images(depth - fill, matrix, (size, size), interpolation="nearest") + fill


def warp_mask(mask: torch.Tensor, matrix: torch.Tensor, size: int) -> torch.Tensor:
    """Warp (B, 1, S, S) {0, 1} float masks (nearest neighbour; outside = 0)."""
    return warp_images(mask, matrix, (size, size), interpolation="nearest")


def augmented_targets(joints: torch.Tensor, K: torch.Tensor, matrix: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact 2.5D targets of warped crops.

    Args:
        joints: (B, 21, 3) metres; K: (B, 3, 3) of the crops; matrix: (B, 2, 3) crop ->
            augmented pixels.
    Returns:
        K' (B, 3, 3) of the augmented crops, uv (B, 21, 2) augmented pixels, z_rel (B, 21),
        s (B,) metres.
    """
    K2 = crop_intrinsics(K, matrix)
    uv, z, s = to_25d(joints, K2)
    return K2, uv, z, s


def compose_affines(second: torch.Tensor, first: torch.Tensor, invert_first: bool = False
                    ) -> torch.Tensor:
    """(B, 2, 3) affine ``second o first`` (or ``second o first^-1``)."""
    row = first.new_tensor([0.0, 0.0, 1.0]).expand(first.shape[0], 1, 3)
    a = torch.cat([first, row], 1)
    if invert_first:
        a = torch.linalg.inv(a)
    b = torch.cat([second, row.to(second)], 1)
    return (b @ a)[:, :2]


def weak_matrices(b: int, size: int, max_translation: float, max_angle_deg: float,
                  quarter_turn_prob: float, generator: torch.Generator | None = None,
                  device: Any = None) -> torch.Tensor:
    """The weak perturbation of the dissertation (7.4.3): a shift in +-``max_translation``
    (fraction of the crop side) and a rotation either in +-``max_angle_deg`` or, with
    ``quarter_turn_prob``, by 90, 180 or 270 degrees, about the crop centre. (B, 2, 3)."""
    t = max_translation * size
    shift = uniform(2 * b, -t, t, generator, device).view(b, 2)
    small = uniform(b, -1.0, 1.0, generator, device) * math.radians(max_angle_deg)
    quarter = (uniform(b, 1.0, 4.0, generator, device) // 1).clamp(max=3) * (math.pi / 2)
    pick = uniform(b, 0.0, 1.0, generator, device) < quarter_turn_prob
    angle = torch.where(pick, quarter, small)
    c = torch.full((2,), (size - 1) / 2, device=device)
    return affine_matrices(angle, torch.ones(b, device=device), shift,
                           torch.zeros(b, dtype=torch.bool, device=device), c, c)


def perturb_depth(depth: torch.Tensor, erase_prob: float, noise_frac: float,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """The depth "texture" augmentation T_DM: random erasing and salt-and-pepper noise.

    Args:
        depth: (B, 1, S, S) normalised depth in [-1, 1].
        erase_prob: probability per map of erasing one rectangle (2-20 % of the area,
            aspect 0.3-3.3) to 1 (no reading).
        noise_frac: fraction of pixels set to -1 or +1 (each half the time).
    """
    b, _, h, w = depth.shape
    dev = depth.device
    out = depth
    if erase_prob > 0:
        area = uniform(b, 0.02, 0.2, generator, dev) * (h * w)
        r = torch.exp(uniform(b, math.log(0.3), math.log(3.3), generator, dev))
        rh, rw = torch.sqrt(area * r).clamp(1, h), torch.sqrt(area / r).clamp(1, w)
        y0 = uniform(b, 0.0, 1.0, generator, dev) * (h - rh)
        x0 = uniform(b, 0.0, 1.0, generator, dev) * (w - rw)
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        inside = ((ys >= y0.view(b, 1, 1)) & (ys < (y0 + rh).view(b, 1, 1))
                  & (xs >= x0.view(b, 1, 1)) & (xs < (x0 + rw).view(b, 1, 1)))
        pick = uniform(b, 0.0, 1.0, generator, dev) < erase_prob
        out = torch.where((inside & pick.view(b, 1, 1))[:, None], torch.ones_like(out), out)
    if noise_frac > 0:
        u = uniform(b * h * w, 0.0, 1.0, generator, dev).view(b, 1, h, w)
        salt = torch.where(u < noise_frac / 2, 1.0, -1.0).to(out)
        out = torch.where(u < noise_frac, salt, out)
    return out


def pool_maps(x: torch.Tensor, side: int) -> torch.Tensor:
    """(B, 1, S, S) -> (B, side, side) area average (targets at the decoder's resolution)."""
    return F.adaptive_avg_pool2d(x, (side, side))[:, 0]


def hand_pixels(batch: dict[str, Any], window: float = 0.15) -> torch.Tensor:
    """(B, 1, S, S) bool: the mask where the sample has one, else depth readings within
    ``window`` metres of the wrist's depth."""
    depth = batch["depth"].float()
    valid = torch.isfinite(depth) & (depth > 0)
    root_z = batch["joints3d"][:, 0, 2].to(depth).view(-1, 1, 1, 1)
    near = valid & ((depth - root_z).abs() <= window)
    if "mask" not in batch:
        return near
    has = batch.get("has_mask", torch.ones(depth.shape[0], dtype=torch.bool)).to(depth.device)
    return torch.where(has.view(-1, 1, 1, 1), valid & (batch["mask"] > 0), near)


def sample_hand_points(depth: torch.Tensor, K: torch.Tensor, hand: torch.Tensor, n: int,
                       generator: torch.Generator | None = None, min_pixels: int = 8
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random points of the hand's surface from depth crops (uniform over hand pixels).

    Args:
        depth: (B, 1, S, S) metres; K: (B, 3, 3) of the crops; hand: (B, 1, S, S) bool.
        n: points per sample (drawn with replacement).
        min_pixels: a sample with fewer hand pixels is marked invalid.
    Returns:
        points (B, n, 3) metres in the camera frame (zeros for invalid samples) and
        valid (B,) bool.
    """
    b, _, h, w = depth.shape
    if hand.shape != depth.shape or K.shape != (b, 3, 3) or n < 1:
        raise ValueError(f"expected depth and hand (B, 1, S, S), K (B, 3, 3), n >= 1; got "
                         f"{tuple(depth.shape)}, {tuple(hand.shape)}, {tuple(K.shape)}, {n}")
    weights = (hand & (depth > 0)).flatten(1).float()
    valid = weights.sum(1) >= min_pixels
    weights = torch.where(valid[:, None], weights, torch.ones_like(weights))
    idx = torch.multinomial(weights.cpu(), n, replacement=True, generator=generator)
    idx = idx.to(depth.device)
    v, u = (idx // w).to(depth), (idx % w).to(depth)
    z = torch.gather(depth.flatten(1), 1, idx)
    pix = torch.stack([u, v, torch.ones_like(u)], -1)  # (B, n, 3)
    rays = torch.linalg.solve(K.to(depth), pix.transpose(1, 2)).transpose(1, 2)
    pts = rays / rays[..., 2:3] * z[..., None]
    return pts * valid.view(b, 1, 1), valid
