"""Depth data of the fitting recipe: crop-cube view batches from folders or the synthesiser.

Folders (``source="folder"``) are read with the core readers:

* a FreiHAND-layout folder with ``training/depth/%08d.png`` (the synthetic sets of
  ``handpose-data synth``; :class:`~handpose.core.data.freihand.FreiHANDDataset`), whose
  ``extrinsics.json`` (world -> camera per sample) calibrates multi-view rigs;
* an RGB-D folder with ``frames.json`` (``shared/data/real_rgbd``;
  :class:`~handpose.core.data.rgbd.RGBDFolderDataset`), single view.

With ``views = V > 1`` the samples ``g V .. g V + V - 1`` are the V calibrated views of hand g
(the folder must hold a multiple of V samples). Each sample's depth map is cut into the crop
cube (:func:`~handpose.core.data.depth_crop.depth_to_cube`) around the hand centre: the mean of
the labelled joints (``centre="labels"``; an oracle crop, as in the usual depth benchmarks) or,
without labels, :func:`~handpose.core.data.depth_crop.hand_centre_from_depth` (a mean-shift
from the nearest readings: good for a hand held in front of its arm, as in ``real_rgbd``; a
hand pointing at the camera is centred near its fingertips, up to 8 cm off on
``handpose-data synth`` renders, so prefer ``labels`` for labelled synthetic sets). The crops are
computed once when the dataset is built (the folders of this recipe are small: tens to a few
thousand frames). Frames whose depth has no valid reading, or none inside the cube, are
skipped with one warning naming how many and the first; a folder without a usable frame is an
error. Items are view batches without the batch axis (see :mod:`.depth_synth`); joints are
zeros with ``has_joints`` False when the folder has no labels (they are used for evaluation
only, never in the loss).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from handpose.core.data.depth_crop import depth_to_cube, hand_centre_from_depth
from handpose.core.data.depth_noise import DepthNoise
from handpose.core.data.freihand import FreiHANDDataset
from handpose.core.data.rgbd import RGBDFolderDataset

from ..config import ConfigError, input_path
from .depth_synth import SynthSpec, view_batch_keys

__all__ = ["DepthData", "DepthFolderViews", "depth_folder_dataset"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DepthData:
    """Depth frames to fit (or to evaluate on).

    Attributes:
        source: "folder" (``root``), "synthetic" (the ``synthetic`` and ``noise`` sections:
            unlabelled rendered depth, e.g. a domain-shifted set) or "none".
        root: a FreiHAND-layout folder with ``depth/`` or an RGB-D folder with ``frames.json``.
        format: "auto" (``frames.json`` present: rgbd, else freihand), "freihand" or "rgbd".
        views: calibrated views per hand (consecutive samples).
        centre: crop centre from "labels" (mean joint) or "depth" (no labels needed).
        empty: crop cells without any reading: "far" (background) or "invalid".
        limit: use at most this many hands (0 = all).
        synthetic, noise: the synthetic source (its ``views`` is used, not ``views`` above).
    """

    source: Literal["folder", "synthetic", "none"] = "none"
    root: str = input_path("", doc="depth frames: FreiHAND layout with depth/ or frames.json")
    format: Literal["auto", "freihand", "rgbd"] = "auto"
    views: int = 1
    centre: Literal["labels", "depth"] = "depth"
    empty: Literal["far", "invalid"] = "far"
    limit: int = 0
    synthetic: SynthSpec = field(default_factory=SynthSpec)
    noise: DepthNoise = field(default_factory=DepthNoise)

    def __post_init__(self) -> None:
        if self.views < 1 or self.limit < 0:
            raise ValueError(f"views must be >= 1 and limit >= 0; got {self.views}, "
                             f"{self.limit}")


def _invert_rigid(m: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = m[:3, :3].T
    out[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return out


class DepthFolderViews(Dataset[dict[str, torch.Tensor]]):
    """Crop-cube view items of a depth folder (see the module docstring).

    Args:
        spec: the data section (``source="folder"``).
        cube_side: metres; size: crop cells.
    Raises:
        ConfigError: no root, unknown layout, a sample count not divisible by ``views``,
            ``centre="labels"`` without labels, or no usable frame.
    """

    def __init__(self, spec: DepthData, cube_side: float, size: int, key: str = "data") -> None:
        if not spec.root:
            raise ConfigError(f"{key}.root: set a depth folder for {key}.source=folder")
        root = Path(spec.root)
        fmt = spec.format
        if fmt == "auto":
            fmt = "rgbd" if (root / "frames.json").exists() else "freihand"
        base: Any
        if fmt == "rgbd":
            base = RGBDFolderDataset(root, load_depth=True)
        else:
            base = FreiHANDDataset(root, load_depth=True, load_mask=False)
            if base.depth_dir is None:
                raise ConfigError(f"{key}.root: {root} has no depth/ folder (FreiHAND layout "
                                  "with training/depth/%08d.png expected)")
        v = spec.views
        if len(base) % v:
            raise ConfigError(f"{key}.views={v}: {root} holds {len(base)} samples, not a "
                              f"multiple of {v}")
        groups = len(base) // v
        if spec.limit:
            groups = min(groups, spec.limit)
        items: list[dict[str, torch.Tensor]] = []
        bad: list[str] = []
        for g in range(groups):
            item = self._make(base, g, v, spec, cube_side, size, key)
            if isinstance(item, str):
                bad.append(item)
            else:
                items.append(item)
        if bad:
            log.warning("%s: skipped %d of %d hands without usable depth (first: %s)",
                        root, len(bad), groups, bad[0])
        if not items:
            raise ConfigError(f"{key}.root: no usable depth frame in {root} ({len(bad)} "
                              f"frames without valid readings around the hand; first: "
                              f"{bad[0] if bad else 'none'})")
        self.items = items
        self.skipped = len(bad)

    @staticmethod
    def _make(base: Any, g: int, v: int, spec: DepthData, side: float, size: int, key: str
              ) -> dict[str, torch.Tensor] | str:
        views: dict[str, list[torch.Tensor]] = {k: [] for k in view_batch_keys()[:8]}
        has_joints = True
        for i in range(g * v, g * v + v):
            s = base[i]
            if "depth" not in s:
                return f"sample {i}: no depth map"
            depth, K = s["depth"][0], s["K"]
            joints = s.get("joints3d")
            if spec.centre == "labels":
                if joints is None:
                    raise ConfigError(f"{key}.centre=labels but sample {i} has no 3D joints; "
                                      f"use {key}.centre=depth")
                centre = joints.mean(0)
            else:
                try:
                    centre = hand_centre_from_depth(depth, K)
                except ValueError:
                    return f"sample {i} ({s.get('path', '?')}): no valid depth reading"
            crop = depth_to_cube(depth, K, centre, side, size, empty=spec.empty)
            if not bool(crop.hand.any()):
                return f"sample {i} ({s.get('path', '?')}): no reading inside the crop cube"
            ext = s.get("extrinsics")
            to_world = np.eye(4) if ext is None else _invert_rigid(ext.double().numpy())
            has_joints = has_joints and joints is not None
            for k, val in (("input", crop.normalized()[0]), ("depth", crop.depth[0]),
                           ("hand", crop.hand[0]), ("valid", crop.valid[0]),
                           ("centre", crop.centre[0]), ("side", crop.side[0]),
                           ("to_world", torch.as_tensor(to_world, dtype=torch.float32)),
                           ("joints", torch.zeros(21, 3) if joints is None else joints.float())):
                views[k].append(val)
        out = {k: torch.stack(x) for k, x in views.items()}
        out["has_joints"] = torch.tensor(has_joints)
        out["hand_scale"] = torch.tensor(0.0)  # unknown
        return out

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.items[index]


def depth_folder_dataset(spec: DepthData, cube_side: float, size: int, key: str = "data"
                         ) -> DepthFolderViews:
    """The crop items of a depth folder (:class:`DepthFolderViews`)."""
    return DepthFolderViews(spec, cube_side, size, key)
