"""Frames from numpy arrays or a generator (:class:`ArraySource`): tests and user scripts.

``frames`` is an (N, H, W, 3) uint8 array, a list/tuple of frames, or any iterable (a
generator) of frames. A frame is an (H, W, 3) uint8 RGB array, or a pair ``(rgb, depth)`` with
depth an (H, W) float array in metres (or None). From an array or a list the source is
seekable and can loop; from a generator it is a stream (no ``len``/``seek``/``loop``), read
lazily, so it may be endless. A frame of the wrong dtype or shape raises
:class:`~.base.SourceError` naming its position, when it is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ...geometry.camera import default_intrinsics
from ...types import Frame
from .base import ReplaySource, SourceError, check_K
from .pixels import check_depth, check_rgb

__all__ = ["ArraySource"]


class ArraySource(ReplaySource):
    """A frame source over in-memory frames.

    Args:
        frames: see the module docstring.
        K: (3, 3) intrinsics in pixels of the frames, or None (default intrinsics, has_K False).
        fps: nominal rate (> 0): timestamps are ``index / fps``, the pace of ``realtime``.
        realtime, loop: see :class:`ReplaySource` (``loop`` needs an array or a list).
        name: what messages call the source.

    Raises:
        ValueError: bad arguments (not iterable, a 4D array of the wrong shape, loop over a
            generator, fps <= 0). SourceError: no frames, or a bad first frame.
    """

    def __init__(self, frames: Iterable[Any], K: Any = None, fps: float = 30.0, *,
                 realtime: bool = False, loop: bool = False, name: str = "array") -> None:
        super().__init__(realtime=realtime, loop=loop, skip_bad=False)
        if not fps > 0:
            raise ValueError(f"fps must be > 0 frames/s; got {fps}")
        K_user = check_K(K)
        self.name = name
        self._seq: Sequence[Any] | np.ndarray | None = None
        self._it: Iterator[Any] | None = None
        if isinstance(frames, np.ndarray):
            if frames.ndim != 4:
                raise ValueError(f"frames as one array must be (N, H, W, 3) uint8; got shape "
                                 f"{frames.shape}")
            self._seq = frames
        elif isinstance(frames, Sequence) and not isinstance(frames, str | bytes):
            self._seq = frames
        else:
            try:
                self._it = iter(frames)
            except TypeError:
                raise ValueError(f"frames must be an array, a list or an iterable of frames; "
                                 f"got {type(frames).__name__}") from None
            if loop:
                raise ValueError("loop=True needs frames as an array or a list (a generator "
                                 "cannot restart)")
        self._next = 0
        self._K_user = K_user
        self.fps = float(fps)
        first = self._first_frame()
        self._setup(name=name, size=first.size, fps=fps, K=K_user,
                    has_depth=first.depth is not None)

    def _length(self) -> int | None:
        return None if self._seq is None else len(self._seq)

    def _item(self, pos: int) -> Any:
        if self._seq is not None:
            return self._seq[pos]
        if pos != self._next or self._it is None:
            raise SourceError(f"{self.name}: a generator cannot go back (frame {pos} asked, "
                              f"{self._next} is next)")
        try:
            item = next(self._it)
        except StopIteration:
            self._it = None
            raise
        self._next += 1
        return item

    def _load(self, pos: int) -> Frame | None:
        try:
            item = self._item(pos)
        except StopIteration:
            return None
        what = f"{self.name} frame {pos}"
        depth = None
        if isinstance(item, tuple | list) and len(item) == 2:
            item, depth = item
        rgb = check_rgb(item, what)
        if depth is not None:
            depth = check_depth(depth, (rgb.shape[0], rgb.shape[1]), what)
        h, w = rgb.shape[:2]
        if self._K_user is None:
            K = np.asarray(default_intrinsics(w, h), np.float64)
        elif self.size in ((0, 0), (w, h)):  # (0, 0): the first frame fixes the size
            K = self._K_user
        else:
            raise SourceError(f"{what} is {w}x{h} but K is for {self.size[0]}x{self.size[1]}")
        return Frame(rgb=rgb, K=K, depth=depth, timestamp=pos * self.period, index=pos)
