"""The sample contract shared by every dataset reader, its builder and the batch collate.

A *sample* is a ``dict[str, Any]``; every reader in ``handpose.core.data`` returns one from
``__getitem__``. Keys, types, shapes and units:

Always present
    ``rgb``         torch.uint8 (3, H, W), RGB.
    ``K``           torch.float32 (3, 3), intrinsics in pixels of ``rgb``. When the source has
                    none, the project's default webcam K
                    (``handpose.core.geometry.camera.default_intrinsics``: 70 degrees across
                    the image diagonal, centred principal point) and ``has_K`` is False.
    ``has_K``       bool, True when ``K`` comes from the source.
    ``handedness``  int: 1 right, 0 left, -1 unknown.
    ``index``       int, the sample's index in its dataset.
    ``source``      str, a short name of the dataset (e.g. ``"freihand"``, ``"rhd"``).

Present when known (absent otherwise; never None)
    ``joints3d``    torch.float32 (21, 3) metres, camera frame, handpose joint order.
    ``uv``          torch.float32 (21, 2) pixels in ``rgb`` (x right, y down; integer values
                    are pixel centres, the OpenCV convention).
    ``visible``     torch.bool (21,), per-joint visibility when the source says so.
    ``scale``       torch.float32 (), reference-bone length (middle MCP -> PIP) in metres;
                    computed from ``joints3d`` when the source gives no scale.
    ``depth``       torch.float32 (1, H, W) metres aligned to ``rgb``, 0 = no reading.
    ``mask``        torch.uint8 (1, H, W), 1 = the sample's hand, 0 = anything else.
    ``box``         torch.float32 (4,) hand box x, y, w, h in pixels of ``rgb``.
    ``extrinsics``  torch.float32 (4, 4) world -> camera (``x_cam = R x + t``).
    ``timestamp``   float seconds (videos, sessions).
    ``path``        str, the image file (or ``video#frame``).
    ``crop_affine`` torch.float32 (2, 3), when the reader was asked for ``crop_size``: maps
                    pixels of the original image to pixels of ``rgb`` (the crop); ``uv``,
                    ``K``, ``depth``, ``mask`` and ``box`` are then all in crop pixels.

:func:`collate` batches samples: tensors are stacked (a leading B), ints/floats/bools become
tensors (B,), strings lists. An optional key present in some samples only is zero-filled
where absent; for every optional key present in the batch, ``has_<key>`` (torch.bool (B,))
says which samples really have it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..geometry.camera import default_intrinsics, project
from ..skeleton import NUM_JOINTS, REFERENCE_BONE

__all__ = [
    "REQUIRED_KEYS",
    "OPTIONAL_KEYS",
    "HANDEDNESS",
    "make_sample",
    "collate",
]

REQUIRED_KEYS = ("rgb", "K", "has_K", "handedness", "index", "source")
OPTIONAL_KEYS = (
    "joints3d", "uv", "visible", "scale", "depth", "mask", "box", "extrinsics", "timestamp",
    "path", "crop_affine",
)

#: handedness codes of the contract
HANDEDNESS = {"right": 1, "left": 0, "unknown": -1}

_SHAPES: dict[str, tuple[int, ...]] = {
    "joints3d": (NUM_JOINTS, 3),
    "uv": (NUM_JOINTS, 2),
    "visible": (NUM_JOINTS,),
    "box": (4,),
    "extrinsics": (4, 4),
    "crop_affine": (2, 3),
}


def _tensor(name: str, value: Any, dtype: torch.dtype) -> torch.Tensor:
    t = torch.as_tensor(np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value)
    t = t.to(dtype)
    want = _SHAPES.get(name)
    if want is not None and tuple(t.shape) != want:
        raise ValueError(f"sample {name!r} must have shape {want}; got {tuple(t.shape)}")
    return t


def make_sample(
    rgb: np.ndarray,
    *,
    index: int,
    source: str,
    K: np.ndarray | None = None,
    handedness: int = -1,
    joints3d: np.ndarray | None = None,
    uv: np.ndarray | None = None,
    scale: float | None = None,
    depth: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build a contract sample from numpy arrays (the readers' common exit).

    Args:
        rgb: (H, W, 3) uint8 RGB.
        index, source: see the module docstring.
        K: (3, 3) intrinsics in pixels, or None for the default webcam K (has_K False).
        handedness: 1 right, 0 left, -1 unknown.
        joints3d: (21, 3) metres or None. With K and no ``uv``, ``uv`` is its projection.
        uv: (21, 2) pixels or None.
        scale: reference bone length (m); None -> ||joints3d[9] - joints3d[10]|| if known.
        depth: (H, W) float metres or None. mask: (H, W) {0, 1} or None.
        **extra: other optional keys (``visible``, ``box``, ``extrinsics``, ``timestamp``,
            ``path``); None values are dropped.

    Returns:
        the sample dict (tensors as documented above).

    Raises:
        ValueError: a wrong shape/dtype, an unknown key or a bad handedness code.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or (
        rgb.shape[2] != 3
    ):
        raise ValueError(
            f"rgb must be a (H, W, 3) uint8 array; got {getattr(rgb, 'dtype', type(rgb))} "
            f"{getattr(rgb, 'shape', '')}"
        )
    if handedness not in (-1, 0, 1):
        raise ValueError(f"handedness must be 1 (right), 0 (left) or -1; got {handedness}")
    unknown = set(extra) - set(OPTIONAL_KEYS)
    if unknown:
        raise ValueError(f"unknown sample keys {sorted(unknown)}; known: {OPTIONAL_KEYS}")
    h, w = rgb.shape[:2]
    s: dict[str, Any] = {
        "rgb": torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))),
        "K": _tensor("K", default_intrinsics(w, h) if K is None else K, torch.float32),
        "has_K": K is not None,
        "handedness": int(handedness),
        "index": int(index),
        "source": str(source),
    }
    if tuple(s["K"].shape) != (3, 3):
        raise ValueError(f"K must have shape (3, 3); got {tuple(s['K'].shape)}")
    if joints3d is not None:
        s["joints3d"] = _tensor("joints3d", joints3d, torch.float32)
        if uv is None and K is not None:
            uv = project(np.asarray(joints3d, np.float64), np.asarray(K, np.float64))
        if scale is None:
            a, b = REFERENCE_BONE
            scale = float(torch.linalg.norm(s["joints3d"][a] - s["joints3d"][b]))
    if uv is not None:
        s["uv"] = _tensor("uv", uv, torch.float32)
    if scale is not None:
        s["scale"] = torch.tensor(float(scale), dtype=torch.float32)
    for name, img, dtype in (("depth", depth, torch.float32), ("mask", mask, torch.uint8)):
        if img is None:
            continue
        if img.shape != (h, w):
            raise ValueError(f"{name} must have the image's shape {(h, w)}; got {img.shape}")
        s[name] = _tensor(name, img, dtype)[None]
    for key, value in extra.items():
        if value is None:
            continue
        if key in ("timestamp",):
            s[key] = float(value)
        elif key == "path":
            s[key] = str(value)
        else:
            s[key] = _tensor(key, value, torch.bool if key == "visible" else torch.float32)
    return s


def _stack(key: str, values: list[Any]) -> Any:
    v0 = values[0]
    if isinstance(v0, torch.Tensor):
        shapes = {tuple(v.shape) for v in values}
        if len(shapes) > 1:
            raise ValueError(
                f"cannot batch {key!r}: samples have different shapes {sorted(shapes)}; "
                f"construct the dataset with crop_size=N to get equal-size crops"
            )
        return torch.stack(values)
    if isinstance(v0, bool):
        return torch.tensor(values, dtype=torch.bool)
    if isinstance(v0, int):
        return torch.tensor(values, dtype=torch.int64)
    if isinstance(v0, float):
        return torch.tensor(values, dtype=torch.float64 if key == "timestamp" else torch.float32)
    return list(values)


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch contract samples (use as ``DataLoader(..., collate_fn=collate)``).

    Args:
        batch: a non-empty sequence of sample dicts.

    Returns:
        dict: every key of any sample; tensors (B, ...), scalars (B,) tensors, strings lists.
        For each optional key present in at least one sample, ``has_<key>`` (B,) bool; the
        value of a sample lacking the key is zeros of the others' shape/dtype (strings "").

    Raises:
        ValueError: empty batch, or a key whose tensors differ in shape (e.g. ``rgb`` of
            different image sizes without ``crop_size``).
    """
    if len(batch) == 0:
        raise ValueError("collate needs at least one sample; got an empty batch")
    keys: list[str] = []
    for s in batch:
        keys += [k for k in s if k not in keys]
    out: dict[str, Any] = {}
    for key in keys:
        present = [key in s for s in batch]
        ref = next(s[key] for s in batch if key in s)
        if isinstance(ref, torch.Tensor):
            fill: Any = torch.zeros_like(ref)
        elif isinstance(ref, str):
            fill = ""
        else:
            fill = type(ref)(0)
        out[key] = _stack(key, [s[key] if key in s else fill for s in batch])
        if key not in REQUIRED_KEYS:
            out["has_" + key] = torch.tensor(present, dtype=torch.bool)
    return out
