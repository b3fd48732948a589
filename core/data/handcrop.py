"""Turn a contract sample into a hand-centred square crop (the readers' ``crop_size`` option).

The crop geometry is the project's one crop (:mod:`handpose.core.geometry.crop`); this module
only picks what the crop is centred on and carries every pixel-space field along:

1. labelled (``uv`` present): :func:`crop_from_keypoints` (side = margin x keypoint box);
2. else a hand ``box``: :func:`crop_from_box` (side = margin x max(w, h));
3. else the centre square of the image (side = min(W, H), no margin).

``rgb`` is warped bilinearly, ``depth`` and ``mask`` with nearest neighbour (no mixing of
hand and background depths), all with zeros outside the image. ``uv`` and the ``box``
corners go through the affine (the new box is the axis-aligned box of the moved corners),
``K`` becomes :func:`crop_intrinsics` (exact for affine crops), and ``crop_affine`` (2, 3)
records the map full-image pixels -> crop pixels so predictions can be uncropped.

``mirror=True`` cuts the same crop mirrored left to right (a left hand becomes a right hand):
the affine gains the reflection (:func:`mirror_affine`), so ``K`` (its ``fx`` and skew change
sign), ``uv``, the images and ``crop_affine`` stay exact for the unchanged 3D joints, whose
relative depths are those of the mirrored hand; ``handedness`` 0/1 is swapped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..geometry.crop import (
    DEFAULT_MARGIN,
    apply_affine,
    crop_from_box,
    crop_from_keypoints,
    crop_image,
    crop_intrinsics,
    mirror_affine,
    upright_rotation,
)

__all__ = ["DEFAULT_CROP_MARGIN", "crop_affine_for", "crop_sample", "whole_image_box"]

#: Crop side / hand extent used by the readers (the project's default crop margin).
DEFAULT_CROP_MARGIN = DEFAULT_MARGIN


def whole_image_box(width: int, height: int) -> np.ndarray:
    """(4,) float32 box x, y, w, h covering the whole image in the pixel-centre convention."""
    return np.array([-0.5, -0.5, width, height], np.float32)


def crop_affine_for(sample: dict[str, Any], out_size: int, margin: float,
                    upright: bool = False) -> np.ndarray:
    """The (2, 3) float64 affine full-image px -> crop px for ``sample`` (rules 1-3 above).

    ``upright``: for labelled samples, turn the crop so the wrist -> middle-MCP axis points up
    (:func:`~handpose.core.geometry.crop.upright_rotation`), as the tracker crops at run time.
    """
    if "uv" in sample:
        uv = sample["uv"].double().numpy()
        rotation = upright_rotation(uv) if upright else 0.0
        return np.asarray(crop_from_keypoints(uv, margin, out_size, rotation=rotation))
    if "box" in sample:
        return np.asarray(crop_from_box(sample["box"].double().numpy(), margin, out_size))
    _, h, w = sample["rgb"].shape
    side = float(min(w, h))
    centre_box = np.array([(w - side) / 2 - 0.5, (h - side) / 2 - 0.5, side, side])
    return np.asarray(crop_from_box(centre_box, 1.0, out_size))


def _box_through(A: np.ndarray, box: torch.Tensor) -> torch.Tensor:
    x, y, w, h = box.double().tolist()
    corners = np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]])
    moved = np.asarray(apply_affine(A, corners))
    lo, hi = moved.min(0), moved.max(0)
    return torch.tensor([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], dtype=torch.float32)


def crop_sample(sample: dict[str, Any], out_size: int, margin: float = DEFAULT_CROP_MARGIN,
                upright: bool = False, mirror: bool = False) -> dict[str, Any]:
    """Crop a contract sample to ``out_size`` x ``out_size`` around the hand.

    Args:
        sample: a full-image sample (see ``sample.py``); it is not modified.
        out_size: crop side in pixels.
        margin: crop side / hand extent (> 0), rules 1-2 of the module docstring.
        upright: turn labelled crops so the hand points up (see :func:`crop_affine_for`).
        mirror: mirror the crop left to right (module docstring).

    Returns:
        a new sample: ``rgb`` (3, out, out), ``K``, ``uv``, ``box``, ``depth``, ``mask`` in
        crop pixels, plus ``crop_affine`` (2, 3) float32; 3D fields are unchanged.
    """
    if "crop_affine" in sample:
        raise ValueError("sample is already cropped (it has 'crop_affine')")
    A = crop_affine_for(sample, out_size, margin, upright)
    out = dict(sample)
    if mirror:
        A = np.asarray(mirror_affine(A, out_size))
        if int(sample.get("handedness", -1)) in (0, 1):
            out["handedness"] = 1 - int(sample["handedness"])
    rgb = sample["rgb"].permute(1, 2, 0).numpy()
    out["rgb"] = torch.from_numpy(np.ascontiguousarray(crop_image(rgb, A, out_size)
                                                       .transpose(2, 0, 1)))
    out["K"] = torch.as_tensor(np.asarray(crop_intrinsics(sample["K"].double().numpy(), A)),
                               dtype=torch.float32)
    if "uv" in sample:
        out["uv"] = torch.as_tensor(np.asarray(apply_affine(A, sample["uv"].double().numpy())),
                                    dtype=torch.float32)
    if "box" in sample:
        out["box"] = _box_through(A, sample["box"])
    for key in ("depth", "mask"):
        if key in sample:
            img = crop_image(sample[key][0].numpy(), A, out_size, interpolation="nearest")
            out[key] = torch.from_numpy(np.ascontiguousarray(img))[None]
    out["crop_affine"] = torch.as_tensor(A, dtype=torch.float32)
    return out
