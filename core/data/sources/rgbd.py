"""Replay of an RGB-D folder in the ``shared/data/real_rgbd`` format (``rgbd:DIR``).

``frames.json`` is parsed by :class:`~handpose.core.data.rgbd.RGBDFolderDataset` (its entries,
depth unit and errors naming the file and entry); images and depth PNGs are decoded by
:mod:`~handpose.core.data.imageio`. Frames carry depth in metres when the entry has a depth
file, and their own ``K`` when the entry has one. The format has no timestamps: they are
``index / fps`` (30 fps unless ``fps`` is given).

A frame whose files are missing or corrupt, or whose depth is not aligned to its image, is
skipped with one warning (``skip_bad=True``, default) or raises :class:`SourceError`
(``skip_bad=False``), as are bad ``frames.json`` entries.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ...geometry.camera import default_intrinsics
from ...types import Frame
from ..errors import DataError
from ..imageio import read_depth_png, read_rgb
from ..rgbd import RGBDFolderDataset
from .base import ReplaySource, SourceError, check_K

__all__ = ["RGBDSource"]


class RGBDSource(ReplaySource):
    """The frames of a ``frames.json`` RGB-D folder.

    Args:
        path: the folder holding ``frames.json``.
        K: (3, 3) intrinsics overriding the file's, or None (each entry's own K; the default
            intrinsics for entries without one).
        fps: nominal rate for timestamps and ``realtime`` pacing, or None (30 assumed).
        load_depth: read the depth files (False: frames without depth).
        realtime, loop, skip_bad: see :class:`ReplaySource`.

    Attributes:
        has_K: every frame has its K from the file (or ``K`` was given).

    Raises:
        SourceError: no ``frames.json`` (or a bad one), no frames, no readable frame.
    """

    def __init__(self, path: str | os.PathLike[str], *, K: Any = None, fps: float | None = None,
                 load_depth: bool = True, realtime: bool = False, loop: bool = False,
                 skip_bad: bool = True) -> None:
        super().__init__(realtime=realtime, loop=loop, skip_bad=skip_bad)
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0 or None; got {fps}")
        K_user = check_K(K)
        self.path = Path(path)
        self.name = str(self.path)
        if not (self.path / "frames.json").is_file():
            raise SourceError(f"{self.path / 'frames.json'}: not found (an rgbd: folder holds "
                              "frames.json listing rgb/depth/K per frame)")
        try:
            with warnings.catch_warnings():
                if skip_bad:  # our own single warning covers skipped entries
                    warnings.simplefilter("ignore", RuntimeWarning)
                self._ds = RGBDFolderDataset(self.path, load_depth=load_depth,
                                             skip_bad=skip_bad)
        except DataError as e:
            raise SourceError(str(e)) from None
        self.skipped = self._ds.skipped.count
        if self.skipped:
            warnings.warn(f"{self.name}: skipped {self.skipped} bad entries of frames.json; "
                          f"first: {self._ds.skipped.first}", RuntimeWarning, stacklevel=2)
        entries = self._ds.frames
        if not entries:
            raise SourceError(f"{self.path / 'frames.json'}: no frames")
        self._K_user = K_user
        self.fps = fps
        first = self._first_frame()
        file_K = all(e["K"] is not None for e in entries)
        has_depth = load_depth and any(e["depth"] is not None for e in entries)
        self._setup(name=self.name, size=first.size, fps=fps,
                    K=K_user if K_user is not None else first.K if file_K else None,
                    has_depth=has_depth)

    def _length(self) -> int:
        return len(self._ds.frames)

    def _load(self, pos: int) -> Frame:
        e = self._ds.frames[pos]
        rgb = read_rgb(self.path / e["rgb"])
        h, w = rgb.shape[:2]
        depth = None
        if self._ds.load_depth and e["depth"] is not None:
            dpath = self.path / e["depth"]
            depth = read_depth_png(dpath, self._ds.depth_unit)
            if depth.shape != (h, w):
                raise DataError(dpath, f"depth is {depth.shape[1]}x{depth.shape[0]} but the "
                                f"image is {w}x{h} (must be aligned to RGB)")
        if self._K_user is not None:
            K = self._K_user
        elif e["K"] is not None:
            K = e["K"].astype(np.float64)
        else:
            K = np.asarray(default_intrinsics(w, h), np.float64)
        return Frame(rgb=rgb, K=K, depth=depth, timestamp=pos * self.period, index=pos)
