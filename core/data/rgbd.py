"""Reader of RGB-D folders in the ``shared/data/real_rgbd`` format.

``root/frames.json``::

    {"depth_unit": "millimetres (uint16 PNG, 0 = no reading)",
     "frames": [{"rgb": "000000_rgb.jpg", "depth": "000000_depth.png",
                 "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
                 "joints_m": [[x, y, z], ... 21]}, ...]}

Paths are relative to ``root``. Depth PNGs are uint16, aligned to the RGB image (same size, same
K). ``depth_unit`` is a string starting with "millimet"/"mm" (0.001 m), "centimet"/"cm", or
"metre"/"meter"/"m" (1 m), or a number of metres per unit; missing means millimetres.
``depth``, ``K`` and ``joints_m`` (21 x 3, metres, camera frame, handpose order) are optional
per frame. A bad frame entry raises :class:`DataError` naming ``frames.json`` and the entry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .base import HandDataset
from .errors import DataError
from .handcrop import DEFAULT_CROP_MARGIN
from .imageio import read_depth_png, read_rgb
from .jsonio import load_json
from .sample import make_sample

__all__ = ["RGBDFolderDataset", "parse_depth_unit"]


def parse_depth_unit(value: Any, path: str | os.PathLike[str] = "frames.json") -> float:
    """Metres per stored depth unit from a ``depth_unit`` field (see the module docstring)."""
    if value is None:
        return 0.001
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v.startswith(("millimet", "mm")):
            return 0.001
        if v.startswith(("centimet", "cm")):
            return 0.01
        if v.startswith(("metre", "meter", "m ", "m(")) or v == "m":
            return 1.0
    raise DataError(path, f"unknown depth_unit {value!r} (expected millimetres, centimetres, "
                    "metres or a positive number of metres per unit)")


class RGBDFolderDataset(HandDataset):
    """RGB-D frames listed in ``frames.json``, streamed from disk.

    Args:
        root: folder with ``frames.json``.
        load_depth: read the depth PNGs (``depth`` key, metres).
        handedness: code of every frame (-1 unknown).
        crop_size, crop_margin, skip_bad: see :class:`HandDataset`.
    """

    source = "rgbd"

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        load_depth: bool = True,
        handedness: int = -1,
        crop_size: int | None = None,
        crop_margin: float = DEFAULT_CROP_MARGIN,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(crop_size=crop_size, crop_margin=crop_margin, skip_bad=skip_bad)
        self.root = Path(root)
        self.index_path = self.root / "frames.json"
        data = load_json(self.index_path)
        if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
            raise DataError(self.index_path, "expected an object with a 'frames' list")
        self.depth_unit = parse_depth_unit(data.get("depth_unit"), self.index_path)
        self.load_depth = load_depth
        self.handedness = int(handedness)
        self.frames: list[dict[str, Any]] = []
        for i, fr in enumerate(data["frames"]):
            try:
                self.frames.append(self._parse(fr))
            except (ValueError, TypeError, KeyError) as e:
                self._bad(DataError(self.index_path, f"bad frame entry ({e})", entry=i))

    @staticmethod
    def _parse(fr: Any) -> dict[str, Any]:
        if not isinstance(fr, dict):
            raise TypeError(f"expected an object; got {type(fr).__name__}")
        if not isinstance(fr.get("rgb"), str):
            raise KeyError("'rgb' (a file name) is required")
        out: dict[str, Any] = {"rgb": fr["rgb"], "depth": fr.get("depth"), "K": None,
                               "joints": None}
        if out["depth"] is not None and not isinstance(out["depth"], str):
            raise TypeError("'depth' must be a file name")
        for key, name, shape in (("K", "K", (3, 3)), ("joints_m", "joints", (21, 3))):
            if fr.get(key) is not None:
                a = np.asarray(fr[key], np.float32)
                if a.shape != shape or not np.isfinite(a).all():
                    raise ValueError(f"{key!r} must be a finite {shape} array; got {a.shape}")
                out[name] = a
        if out["K"] is not None and out["joints"] is not None and not (
                out["joints"][:, 2] > 0).all():
            raise ValueError("joints_m behind the camera (Z <= 0)")
        return out

    def __len__(self) -> int:
        return len(self.frames)

    def load(self, index: int) -> dict[str, Any]:
        fr = self.frames[index]
        path = self.root / fr["rgb"]
        rgb = read_rgb(path)
        depth = None
        if self.load_depth and fr["depth"] is not None:
            dpath = self.root / fr["depth"]
            depth = read_depth_png(dpath, self.depth_unit)
            if depth.shape != rgb.shape[:2]:
                raise DataError(dpath, f"depth is {depth.shape[::-1]} but the image is "
                                f"{rgb.shape[1::-1]} (must be aligned to RGB)")
        return make_sample(rgb, index=index, source=self.source, K=fr["K"],
                           handedness=self.handedness, joints3d=fr["joints"], depth=depth,
                           path=str(path))
