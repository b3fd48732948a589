"""Data of the SemiHand recipe: labelled synthetic crops with masks, unlabelled crops (optionally
around a teacher's hand), the paired training set and the two augmentation strengths.

Unlabelled images are read at full resolution and cropped here (``input_size``): around the
teacher's keypoints with ``crop_margin`` when the teacher found a hand (the same rule as the
labelled crops, so both domains are framed alike), else by the reader's own rule (hand box,
"crop" framing, centre square). The crop of an image is fixed, so pseudo-labels live in its
pixels; every augmentation is a (B, 2, 3) matrix applied on the fly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from handpose.core.augment import AppearanceAugmentation, GeometricAugmentation, affine_matrices
from handpose.core.augment_background import swap_background
from handpose.core.augment_geometric import uniform
from handpose.core.data.base import HandDataset
from handpose.core.data.handcrop import crop_sample
from handpose.core.data.sample import collate
from handpose.core.data.synthetic.backgrounds import BackgroundSource
from handpose.core.data.teacher import TeacherLabels
from handpose.core.geometry.crop import apply_affine

__all__ = [
    "StrongAugSpec",
    "WeakAugSpec",
    "weak_perturbation",
    "UnlabelledCrops",
    "PairedDataset",
    "collate_pairs",
]


@dataclass(frozen=True)
class StrongAugSpec:
    """The "diversity" augmentation of labelled and confident pseudo-labelled crops (SemiHand:
    colour jitter, translation, rotation, scale, grey-scale, random erasing; values *(choose)*).

    Attributes:
        max_angle_deg: rotation ~ U(-max, max). scale_range: zoom ~ U(lo, hi).
        max_translation: shift ~ U(-max, max) per axis, in pixels of the 64-px grid (scaled to
            the input size, as the weak perturbation).
        color: HSV jitter. grayscale_prob, erase_prob: probabilities per image.
        background_prob: probability that a teacher-labelled real crop has its background
            replaced outside the keypoints' hand region (:mod:`handpose.core.augment_background`;
            not part of SemiHand: the real photos' plain backdrops; 0 = never).
        background_dir: a folder of photos WITHOUT hands; half of the new backgrounds are
            crops of them, half procedural ("": all procedural).
    """

    max_angle_deg: float = 30.0
    scale_range: tuple[float, ...] = (0.85, 1.15)
    max_translation: float = 5.0
    color: bool = True
    grayscale_prob: float = 0.1
    erase_prob: float = 0.25
    background_prob: float = 0.0
    background_dir: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.background_prob <= 1.0:
            raise ValueError(f"strong.background_prob must be in [0, 1], got "
                             f"{self.background_prob}")
        if len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"strong.scale_range must be (lo, hi) with 0 < lo <= hi, got "
                             f"{self.scale_range}")

    def geometric(self, size: int, uv_grid: float) -> GeometricAugmentation:
        return GeometricAugmentation(
            max_angle_deg=self.max_angle_deg,
            scale_range=(self.scale_range[0], self.scale_range[1]),
            max_translation_px=self.max_translation * size / uv_grid,
        )

    def appearance(self) -> AppearanceAugmentation:
        return AppearanceAugmentation(jitter_prob=1.0 if self.color else 0.0,
                                      grayscale_prob=self.grayscale_prob,
                                      erase_prob=self.erase_prob)


@dataclass(frozen=True)
class WeakAugSpec:
    """The perturbation T of unlabelled crops (SemiHand: translations in [-5, 5] px, or
    rotations in [-2, 2] deg, or by 90 / 180 / 270 deg; one kind per sample, equally likely).

    Attributes:
        max_translation: pixels of the 64-px grid the paper used (scaled to the input size).
        max_angle_deg: the small rotations.
        quarter_turns: include the 90 / 180 / 270 degree rotations.
    """

    max_translation: float = 5.0
    max_angle_deg: float = 2.0
    quarter_turns: bool = True

    def __post_init__(self) -> None:
        if self.max_translation < 0 or self.max_angle_deg < 0:
            raise ValueError("weak.max_translation and weak.max_angle_deg must be >= 0")


def weak_perturbation(b: int, size: int, spec: WeakAugSpec, uv_grid: float,
                      generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """(B, 2, 3) matrices of the weak perturbation about the centre of a ``size`` crop."""
    kinds = 3 if spec.quarter_turns else 2
    kind = (uniform(b, 0.0, kinds, generator, device) // 1).clamp(max=kinds - 1)
    t = spec.max_translation * size / uv_grid
    shift = uniform(2 * b, -t, t, generator, device).view(b, 2)
    small = uniform(b, -1.0, 1.0, generator, device) * math.radians(spec.max_angle_deg)
    quarter = (uniform(b, 1.0, 4.0, generator, device) // 1).clamp(max=3) * (math.pi / 2)
    angle = torch.where(kind == 1, small, torch.where(kind == 2, quarter, torch.zeros_like(small)))
    shift = torch.where((kind == 0)[:, None], shift, torch.zeros_like(shift))
    c = torch.full((2,), (size - 1) / 2, device=device)
    return affine_matrices(angle, torch.ones(b, device=device), shift,
                           torch.zeros(b, dtype=torch.bool, device=device), c, c)


class UnlabelledCrops(Dataset[dict[str, Any]]):
    """Crops of ``size`` of the images ``ids`` of a full-resolution reader, with the teacher's
    labels in crop pixels.

    Extra keys: ``teacher_found`` (bool), ``teacher_uv``, ``teacher_uv_corrected`` (21, 2)
    crop px, ``teacher_z``, ``teacher_z_corrected`` (21,), ``teacher_score`` (float),
    ``teacher_hand`` (int: 1 right, 0 left, -1 none) — zeros where not found; ``index`` stays
    the reader's index of the image actually read.

    ``mirror_left``: crops of left hands (the teacher's handedness; the reader's for images
    the teacher found no hand in) are cut mirrored, as right hands (``teacher_hand`` then says
    1), as the tracker shows left hands to the network.

    ``background_prob``: each teacher-labelled crop has, with this probability, its background
    replaced outside the teacher keypoints' hand region (:func:`swap_background`; drawn from
    torch's generator, so DataLoader workers differ), by a procedural one or, given
    ``backgrounds``, one of its.
    """

    def __init__(self, base: HandDataset, ids: Sequence[int], size: int, margin: float,
                 labels: TeacherLabels | None = None, upright: bool = False,
                 background_prob: float = 0.0, backgrounds: BackgroundSource | None = None,
                 mirror_left: bool = False) -> None:
        self.base, self.ids, self.size, self.margin = base, list(ids), int(size), float(margin)
        self.labels = labels
        self.upright = bool(upright)  # turn teacher-labelled crops so the hand points up
        if not 0.0 <= background_prob <= 1.0:
            raise ValueError(f"background_prob must be in [0, 1]; got {background_prob}")
        self.background_prob = float(background_prob)
        self.backgrounds = backgrounds
        self.mirror_left = bool(mirror_left)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.base[self.ids[i]]
        j = int(s["index"])
        lab = self.labels
        found = lab is not None and bool(lab.found[j])
        if found and lab is not None:
            with_kp = dict(s)
            with_kp["uv"] = torch.from_numpy(lab.uv[j].astype(np.float32))
            mirror = self.mirror_left and int(lab.handedness[j]) == 0
            out = crop_sample(with_kp, self.size, self.margin, upright=self.upright,
                              mirror=mirror)
            out.pop("uv")
            A = out["crop_affine"].double().numpy()
            for name, arr in (("teacher_uv", lab.uv[j]),
                              ("teacher_uv_corrected", lab.uv_corrected[j])):
                out[name] = torch.as_tensor(np.asarray(apply_affine(A, arr.astype(np.float64))),
                                            dtype=torch.float32)
            out["teacher_z"] = torch.from_numpy(lab.z_rel[j].copy())
            out["teacher_z_corrected"] = torch.from_numpy(lab.z_corrected[j].copy())
            out["teacher_score"] = float(lab.score[j])
            out["teacher_hand"] = 1 if mirror else int(lab.handedness[j])
            if self.background_prob > 0 and float(torch.rand(())) < self.background_prob:
                rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
                rgb = out["rgb"].permute(1, 2, 0).numpy()
                out["rgb"] = torch.from_numpy(swap_background(
                    rgb, out["teacher_uv"].numpy(), rng, source=self.backgrounds)
                ).permute(2, 0, 1).contiguous()
        else:
            mirror = self.mirror_left and int(s.get("handedness", -1)) == 0
            out = crop_sample(s, self.size, self.base.crop_margin_for(s), mirror=mirror)
            out["teacher_uv"] = out["teacher_uv_corrected"] = torch.zeros(21, 2)
            out["teacher_z"] = out["teacher_z_corrected"] = torch.zeros(21)
            out["teacher_score"] = 0.0
            out["teacher_hand"] = -1
        out["teacher_found"] = found
        return out


class PairedDataset(Dataset[dict[str, Any]]):
    """Item i = unlabelled crop ``i mod NU`` (and its position, ``unl_index``) with labelled
    crop ``i mod NL``; ``max(NU, NL)`` items, so an epoch visits both sets completely."""

    def __init__(self, unlabelled: Dataset[Any], labelled: Dataset[Any] | None) -> None:
        self.unlabelled, self.labelled = unlabelled, labelled
        self.nu = len(unlabelled)  # type: ignore[arg-type]
        self.nl = 0 if labelled is None else len(labelled)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return max(self.nu, self.nl)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {"unl": self.unlabelled[i % self.nu], "unl_index": i % self.nu}
        if self.labelled is not None:
            item["lab"] = self.labelled[i % self.nl]
        return item


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch :class:`PairedDataset` items: ``unl`` and ``lab`` collated separately."""
    out: dict[str, Any] = {"unl": collate([it["unl"] for it in items]),
                           "unl_index": torch.tensor([it["unl_index"] for it in items])}
    if "lab" in items[0]:
        out["lab"] = collate([it["lab"] for it in items])
    return out
