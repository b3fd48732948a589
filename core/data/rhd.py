"""Reader of the Rendered Hand Pose Dataset (RHD, Zimmermann & Brox 2017).

Layout of one split folder (``RHD_published_v2/training`` or ``.../evaluation``)::

    anno_<split>.pickle   dict sample_id -> {'xyz': (42, 3), 'uv_vis': (42, 3), 'K': (3, 3)}
    color/%05d.png        320 x 320 RGB
    mask/%05d.png         labels: 0 background, 1 person, 2-17 left hand (2-16 finger parts,
                          17 palm), 18-33 right hand (same order, 33 palm)
    depth/%05d.png        depth split over two channels: (R * 256 + G) / 65535 * 5 metres

Keypoints 0-20 are the left hand, 21-41 the right hand, each wrist then tip -> MCP per finger
(converted to the handpose order with ``convert_joint_order(x, "rhd")``). ``xyz`` are metres in
the camera frame (``uv = project(xyz, K)`` to within rendering precision), ``uv_vis[:, 2]`` is
1 for a visible keypoint. These facts were checked against the dataset's ``README`` and its
``view_samples.py`` as quoted in public loaders (depth decoding, mask label ranges, units).

One sample per hand (``hands="each"``: every hand with at least ``min_visible`` visible
keypoints), or one per image (``"dominant"``: the hand with more visible keypoints, ties go
right; Zimmermann's loader counts mask pixels instead, which would need every mask read at
construction), or one side only (``"left"``/``"right"``). ``mask`` is the chosen hand's
pixels (1) vs everything else (0).

The annotation pickle is read with an unpickler that only builds numpy arrays and plain
containers, so a tampered file cannot run code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..skeleton import convert_joint_order
from .base import HandDataset
from .errors import DataError
from .handcrop import DEFAULT_CROP_MARGIN
from .imageio import read_labels, read_rgb, read_rhd_depth
from .sample import make_sample

__all__ = ["RHDDataset", "RHD_MASK_LEFT", "RHD_MASK_RIGHT", "load_rhd_annotations"]

#: inclusive label ranges of each hand in RHD masks
RHD_MASK_LEFT = (2, 17)
RHD_MASK_RIGHT = (18, 33)

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode"),
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("__builtin__", "dict"), ("__builtin__", "list"), ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"), ("__builtin__", "object"), ("builtins", "object"),
}


class _NumpyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays "
                                         "and plain containers are allowed)")
        return super().find_class(module, name)


def load_rhd_annotations(path: str | os.PathLike[str]) -> dict[int, dict[str, np.ndarray]]:
    """Load an RHD ``anno_*.pickle`` (Python 2 pickles too) with the restricted unpickler.

    Returns:
        dict sample_id -> {'xyz', 'uv_vis', 'K'} arrays as stored.

    Raises:
        DataError: missing, truncated or not an annotation dict.
    """
    try:
        with open(path, "rb") as f:
            data = _NumpyUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DataError(path, f"cannot read the annotation pickle ({e or 'truncated'})") from None
    if not isinstance(data, dict):
        raise DataError(path, f"expected a dict sample_id -> annotation; got {type(data)}")
    return data


class RHDDataset(HandDataset):
    """RHD split folder as a dataset of one-hand samples, streaming images from disk.

    Args:
        root: the split folder (with ``anno_*.pickle``, ``color/``), or the dataset root when
            ``split`` is given.
        split: None, or "training" / "evaluation" (a subfolder of ``root``).
        hands: "each" | "dominant" | "left" | "right" (see the module docstring).
        min_visible: a hand needs at least this many visible keypoints (0-21).
        load_depth, load_mask: read ``depth/`` and ``mask/``.
        crop_size, crop_margin, skip_bad: see :class:`HandDataset`.

    Raises:
        DataError: no/bad annotation pickle; a bad entry (unless ``skip_bad``).
    """

    source = "rhd"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | None = None,
        *,
        hands: str = "each",
        min_visible: int = 6,
        load_depth: bool = True,
        load_mask: bool = True,
        crop_size: int | None = None,
        crop_margin: float = DEFAULT_CROP_MARGIN,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(crop_size=crop_size, crop_margin=crop_margin, skip_bad=skip_bad)
        if hands not in ("each", "dominant", "left", "right"):
            raise ValueError(f"hands must be 'each', 'dominant', 'left' or 'right'; got {hands!r}")
        if not 0 <= min_visible <= 21:
            raise ValueError(f"min_visible must be in [0, 21]; got {min_visible}")
        self.root = Path(root) / split if split else Path(root)
        annos = sorted(self.root.glob("anno_*.pickle"))
        if not annos:
            raise DataError(self.root, "no anno_*.pickle in this folder (expected an RHD split "
                            "folder such as RHD_published_v2/training)")
        self.anno_path = annos[0]
        raw = load_rhd_annotations(self.anno_path)
        self.load_depth, self.load_mask = load_depth, load_mask
        ids, xyz, uvv, K = self._parse(raw)
        side = self._select(uvv[:, :, 2] > 0.5, hands, min_visible)
        self._image = ids[side[:, 0]]
        rows, hand = side[:, 0], side[:, 1]
        sel = (hand[:, None] * 21 + np.arange(21)[None])  # (M, 21) rows of the chosen hand
        self._xyz = convert_joint_order(xyz[rows[:, None], sel], "rhd").astype(np.float32)
        self._uv = convert_joint_order(uvv[rows[:, None], sel, :2], "rhd").astype(np.float32)
        self._vis = convert_joint_order(uvv[rows[:, None], sel, 2:] > 0.5, "rhd")[..., 0]
        self._K = K[rows]
        self._hand = hand.astype(np.int64)  # 0 left, 1 right (the contract's codes)

    def _parse(self, raw: dict[Any, Any]) -> tuple[np.ndarray, ...]:
        ids, xyz, uvv, K = [], [], [], []
        for key in sorted(raw, key=lambda k: (str(type(k)), k)):
            a = raw[key]
            try:
                if not isinstance(a, dict):
                    raise ValueError(f"expected a dict; got {type(a).__name__}")
                x = np.asarray(a["xyz"], np.float64)
                u = np.asarray(a["uv_vis"], np.float64)
                k = np.asarray(a["K"], np.float64)
                for name, arr, shape in (("xyz", x, (42, 3)), ("uv_vis", u, (42, 3)),
                                         ("K", k, (3, 3))):
                    if arr.shape != shape or not np.isfinite(arr).all():
                        raise ValueError(f"{name} must be a finite {shape} array; got {arr.shape}")
                sid = int(key)
            except (KeyError, ValueError, TypeError) as e:
                self._bad(DataError(self.anno_path, f"bad annotation of sample {key!r} ({e})"))
                continue
            ids.append(sid)
            xyz.append(x)
            uvv.append(u)
            K.append(k)
        if not ids:
            return (np.zeros(0, np.int64), np.zeros((0, 42, 3)), np.zeros((0, 42, 3)),
                    np.zeros((0, 3, 3)))
        return np.array(ids), np.stack(xyz), np.stack(uvv), np.stack(K)

    @staticmethod
    def _select(vis: np.ndarray, hands: str, min_visible: int) -> np.ndarray:
        """(M, 2) rows of (annotation row, hand 0 left / 1 right) to serve."""
        counts = np.stack([vis[:, :21].sum(1), vis[:, 21:].sum(1)], 1)  # (N, 2)
        usable = counts >= min_visible
        if hands == "dominant":
            hand = (counts[:, 1] >= counts[:, 0]).astype(np.int64)
            rows = np.flatnonzero(usable[np.arange(len(hand)), hand])
            return np.stack([rows, hand[rows]], 1)
        if hands in ("left", "right"):
            h = int(hands == "right")
            rows = np.flatnonzero(usable[:, h])
            return np.stack([rows, np.full_like(rows, h)], 1)
        rows, hand = np.nonzero(usable)  # row-major: image order, left before right
        return np.stack([rows, hand], 1)

    def __len__(self) -> int:
        return len(self._image)

    def load(self, index: int) -> dict[str, Any]:
        sid = int(self._image[index])
        path = self.root / "color" / f"{sid:05d}.png"
        rgb = read_rgb(path)
        h, w = rgb.shape[:2]
        depth = mask = None
        if self.load_depth:
            dpath = self.root / "depth" / f"{sid:05d}.png"
            depth = read_rhd_depth(dpath)
            if depth.shape != (h, w):
                raise DataError(dpath, f"depth is {depth.shape[::-1]} but the image is {(w, h)}")
        if self.load_mask:
            mpath = self.root / "mask" / f"{sid:05d}.png"
            labels = read_labels(mpath)
            if labels.shape != (h, w):
                raise DataError(mpath, f"mask is {labels.shape[::-1]} but the image is {(w, h)}")
            lo, hi = RHD_MASK_RIGHT if self._hand[index] == 1 else RHD_MASK_LEFT
            mask = ((labels >= lo) & (labels <= hi)).astype(np.uint8)
        return make_sample(
            rgb, index=index, source=self.source, K=self._K[index],
            handedness=int(self._hand[index]), joints3d=self._xyz[index], uv=self._uv[index],
            depth=depth, mask=mask, visible=self._vis[index], path=str(path),
        )
