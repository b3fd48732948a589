"""Data sections shared by the recipes and the datasets they build from the core readers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset, Subset

from handpose.core.data.base import HandDataset
from handpose.core.data.folder import ImageFolderDataset
from handpose.core.data.freihand import FreiHANDDataset
from handpose.core.data.handcrop import DEFAULT_CROP_MARGIN
from handpose.core.data.session_reader import SessionDataset

from ..config import ConfigError, input_path

__all__ = [
    "LabelledData",
    "UnlabelledData",
    "labelled_dataset",
    "unlabelled_dataset",
    "unlabelled_reader",
    "seeded_subset",
    "require_path",
    "hand_centres_and_sides",
]


@dataclass(frozen=True)
class LabelledData:
    """Labelled hands (2D + 3D joints, K).

    Attributes:
        root: a FreiHAND-layout folder (``training_xyz.json``, ``training_K.json``,
            ``training/rgb/``) or a session folder (``format="session"``).
        format: "freihand" or "session".
        versions: FreiHAND image versions to use ("gs", "hom", "sample", "auto").
        split: FreiHAND file prefix ("training" or "evaluation").
        fraction: use a seeded random fraction of the samples (label-efficiency runs).
        limit: at most this many samples after ``fraction`` (0 = all).
        crop_margin: crop side / keypoint extent of the hand crops.
        upright: turn each crop so the hand points up (wrist -> middle MCP), as the tracker
            crops at run time; augmentation rotations then act as jitter around upright.
        mirror_left: show left hands (by the set's handedness) mirrored, as right hands, as
            the tracker shows them to the network (``HandPoseEstimator(mirror_left=True)``).
        skip_bad: skip unreadable samples (counted, one warning) instead of failing.
    """

    root: str = input_path("", doc="labelled data: a FreiHAND-layout or session folder")
    format: Literal["freihand", "session"] = "freihand"
    versions: tuple[str, ...] = ("gs",)
    split: str = "training"
    fraction: float = 1.0
    limit: int = 0
    crop_margin: float = DEFAULT_CROP_MARGIN
    upright: bool = False
    mirror_left: bool = False
    skip_bad: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.limit < 0 or self.crop_margin <= 0:
            raise ValueError("limit must be >= 0 and crop_margin > 0")


@dataclass(frozen=True)
class UnlabelledData:
    """Images without labels (labels of a labelled set are ignored).

    Attributes:
        root: a folder of images (e.g. ``shared/data/real_hands``), a FreiHAND-layout or
            synthetic folder (``format="freihand"``), or a session (``format="session"``).
        format: "folder", "freihand" or "session".
        index_csv: hand boxes/framing for a folder; "" = ``root/index.csv`` when it exists.
        limit: at most this many images, a seeded random subset (0 = all).
        load_size: side of the hand-centred crops read from disk, before the views are cut.
        crop_margin: crop side / hand box side for images with a hand box.
        upright: where a recipe crops around keypoints (e.g. teacher labels), turn the crop
            so the hand points up, as the tracker does at run time.
        mirror_left: where a recipe has the teacher's handedness, show left hands mirrored, as
            right hands (as the tracker does, ``HandPoseEstimator(mirror_left=True)``).
        skip_bad: skip unreadable images (counted, one warning) instead of failing.
    """

    root: str = input_path("", doc="unlabelled hand images")
    format: Literal["folder", "freihand", "session"] = "folder"
    index_csv: str = input_path("", doc="index CSV of the image folder")
    limit: int = 0
    load_size: int = 160
    crop_margin: float = DEFAULT_CROP_MARGIN
    upright: bool = False
    mirror_left: bool = False
    skip_bad: bool = True

    def __post_init__(self) -> None:
        if self.limit < 0 or self.load_size < 8 or self.crop_margin <= 0:
            raise ValueError("limit must be >= 0, load_size >= 8 and crop_margin > 0")


def require_path(root: str, key: str) -> Path:
    """``root`` as a Path; :class:`ConfigError` naming ``key`` if it is unset or missing."""
    if not root:
        raise ConfigError(f"{key} is not set: give the data folder ({key}=PATH)")
    p = Path(root)
    if not p.exists():
        raise ConfigError(f"{key}: path {p.resolve()} does not exist")
    return p


def seeded_subset(ds: Dataset[Any], fraction: float = 1.0, limit: int = 0, seed: int = 0
                  ) -> Dataset[Any]:
    """A seeded random subset: ``round(fraction * N)`` samples, then at most ``limit``.

    The subset keeps at least one sample and is sorted (sequential disk access).
    """
    n = len(ds)  # type: ignore[arg-type]
    k = max(1, round(fraction * n))
    if limit:
        k = min(k, limit)
    if k >= n:
        return ds
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(n, generator=g)[:k].sort().values.tolist()
    return Subset(ds, idx)


def labelled_dataset(sec: LabelledData, crop_size: int, seed: int = 0,
                     key: str = "data.root", load_mask: bool = False) -> Dataset[Any]:
    """The labelled set as hand-centred crops of ``crop_size`` (a seeded subset if asked);
    ``load_mask``: with the FreiHAND layout's masks (``<split>/mask/%08d.png``; sessions have
    none)."""
    root = require_path(sec.root, key)
    ds: HandDataset
    if sec.format == "session":
        ds = SessionDataset(root, labelled_only=True, crop_size=crop_size,
                            crop_margin=sec.crop_margin, skip_bad=sec.skip_bad)
    else:
        ds = FreiHANDDataset(root, sec.versions, split=sec.split, load_depth=False,
                             load_mask=load_mask, crop_size=crop_size,
                             crop_margin=sec.crop_margin, skip_bad=sec.skip_bad)
    if len(ds) == 0:
        raise ConfigError(f"{key}: no labelled samples in {root.resolve()}")
    ds.crop_upright = sec.upright
    ds.crop_mirror_left = sec.mirror_left
    return seeded_subset(ds, sec.fraction, sec.limit, seed)


def unlabelled_reader(sec: UnlabelledData, crop_size: int | None, key: str = "data.root"
                      ) -> tuple[HandDataset, dict[str, Any]]:
    """The unlabelled set's reader in its ``sec.format``, cutting crops of ``crop_size``
    (None: full-resolution images), and the plain data identifying its images (the teacher
    cache key: root, format, index csv, count)."""
    root = require_path(sec.root, key)
    kw: dict[str, Any] = dict(crop_size=crop_size, crop_margin=sec.crop_margin,
                              skip_bad=sec.skip_bad)
    csv = ""
    ds: HandDataset
    if sec.format == "freihand":
        ds = FreiHANDDataset(root, load_depth=False, load_mask=False, **kw)
    elif sec.format == "session":
        ds = SessionDataset(root, labelled_only=False, **kw)
    else:
        path = Path(sec.index_csv) if sec.index_csv else root / "index.csv"
        csv = str(path.resolve()) if path.is_file() else ""
        ds = ImageFolderDataset(root, path if path.is_file() else None, **kw)
    if len(ds) == 0:
        raise ConfigError(f"{key}: no images found in {root.resolve()} (format {sec.format})")
    ident = {"root": str(root.resolve()), "format": sec.format, "index_csv": csv, "n": len(ds)}
    return ds, ident


def unlabelled_dataset(sec: UnlabelledData, seed: int = 0, key: str = "data.root"
                       ) -> Dataset[Any]:
    """The unlabelled set as crops of ``sec.load_size`` (a seeded subset if asked)."""
    ds, _ = unlabelled_reader(sec, sec.load_size, key)
    return seeded_subset(ds, 1.0, sec.limit, seed)


def hand_centres_and_sides(batch: dict[str, Any], size: int, margin: float
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Hand centre (B, 2) and size (B,) in pixels of the batch's (size x size) crops.

    From the crop's hand ``box`` when the sample has one, else (an image without a box, cut
    as its centre square) the crop centre and ``size / margin``.
    """
    rgb = batch["rgb"]
    b, dev = rgb.shape[0], rgb.device
    c = (size - 1) / 2
    centres = torch.full((b, 2), c, device=dev)
    sides = torch.full((b,), size / margin, device=dev)
    if "box" in batch:
        box = batch["box"].to(dev, torch.float32)
        has = batch.get("has_box", torch.ones(b, dtype=torch.bool)).to(dev)
        box_c = box[:, :2] + box[:, 2:] / 2  # x, y is the top-left pixel edge (centre conv.)
        box_s = box[:, 2:].amax(dim=1).clamp(size / 4, 2 * size)
        centres = torch.where(has[:, None], box_c, centres)
        sides = torch.where(has, box_s, sides)
    return centres, sides
