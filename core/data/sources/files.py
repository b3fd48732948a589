"""Replays of files: a video (:class:`VideoSource`) and an image folder (:class:`FolderSource`).

Decoding is the data layer's: :class:`~handpose.core.data.video.VideoDataset` (sequential fast
path, seeks) for videos, :func:`~handpose.core.data.folder.list_images` and
:func:`~handpose.core.data.imageio.read_rgb` for images. Timestamps are ``index / fps``.

Bad input, decided here:

* a video that cannot be opened (missing, not a video, no codec) -> :class:`SourceError`
  naming the file. A frame that fails to decode ENDS the video there, with one warning
  naming the file, the frame and the container's count (truncated files and containers that
  over-report their length are common); ``len()`` then shrinks to the frames read. A video
  whose container has no frame count is played as a stream: no ``len()``, no ``seek()``.
* an image folder with no images -> SourceError naming the folder and the extensions. A
  corrupt image is SKIPPED with one warning (``skip_bad=True``, the default; the count is in
  ``skipped``) or raises SourceError naming it (``skip_bad=False``); a folder whose images
  are all corrupt raises. Images may differ in size: without a given ``K`` each frame gets
  the default intrinsics of its own size; with ``K``, an image of another size than the
  first is a bad frame (the K would not describe it).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...geometry.camera import default_intrinsics
from ...types import Frame
from ..errors import DataError
from ..folder import IMAGE_EXTENSIONS, list_images
from ..imageio import read_rgb
from ..video import VideoDataset, open_video
from .base import ReplaySource, SourceError, check_K

__all__ = ["VideoSource", "FolderSource"]


class VideoSource(ReplaySource):
    """The frames of a video file (any container/codec of OpenCV's FFmpeg).

    Args:
        path: the video file.
        K: (3, 3) intrinsics in pixels of the video, or None (default intrinsics).
        fps: override the container's frame rate (timestamps, pacing), or None.
        realtime, loop: see :class:`ReplaySource` (default: as fast as frames decode, once).

    Raises:
        SourceError: the file is missing or cannot be opened as a video.
    """

    def __init__(self, path: str | os.PathLike[str], *, K: Any = None, fps: float | None = None,
                 realtime: bool = False, loop: bool = False) -> None:
        super().__init__(realtime=realtime, loop=loop, skip_bad=False)
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0 or None; got {fps}")
        K_user = check_K(K)
        self.path = Path(path)
        self.name = str(self.path)
        self._ds: VideoDataset | None = None
        self._n: int | None = None
        self._cap: Any = None  # stream mode (no frame count): the open capture
        self._next = 0
        try:
            self._ds = VideoDataset(self.path)
            self._n = len(self._ds)
            nominal, size = self._ds.fps, (self._ds.width, self._ds.height)
        except DataError as e:
            try:  # stream mode if the container only lacks a frame count
                cap = open_video(self.path)
            except DataError as e2:
                raise SourceError(str(e2)) from None
            count, nominal = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
            size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                    int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            cap.release()
            if count > 0:
                raise SourceError(str(e)) from None
        if size[0] <= 0 or size[1] <= 0:  # the container does not say: decode frame 0
            rgb0 = self._decode(0)
            if rgb0 is None:
                raise SourceError(f"{self.path}: no frame can be decoded")
            size = (rgb0.shape[1], rgb0.shape[0])
        self._setup(name=str(self.path), size=size, fps=fps or nominal or None, K=K_user,
                    has_depth=False)
        self._first_frame()

    def _length(self) -> int | None:
        return self._n

    def _decode(self, pos: int) -> np.ndarray | None:
        if self._ds is not None:
            try:
                return self._ds.read_frame(pos)
            except DataError as e:
                if pos == 0:
                    raise SourceError(str(e)) from None
                warnings.warn(f"{self.path}: frame {pos} cannot be decoded; the video ends "
                              f"there (the container says {self._n} frames)", RuntimeWarning,
                              stacklevel=5)
                return None
        if pos == 0 and self._next != 0 or self._cap is None:
            if self._cap is not None:
                self._cap.release()
            try:
                self._cap = open_video(self.path)
            except DataError as e:
                raise SourceError(str(e)) from None
            self._next = 0
        if pos != self._next:
            raise SourceError(f"{self.path}: not seekable (the container has no frame count)")
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        self._next = pos + 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _load(self, pos: int) -> Frame | None:
        rgb = self._decode(pos)
        if rgb is None:
            return None
        h, w = rgb.shape[:2]
        return Frame(rgb=rgb, K=self.K_for(w, h), timestamp=pos * self.period, index=pos)

    def _ended_at(self, pos: int) -> None:
        if self._ds is not None:
            self._n = pos

    def _close(self) -> None:
        if self._ds is not None:
            self._ds.close()
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class FolderSource(ReplaySource):
    """The images of a folder (recursive, sorted by path), or a single image file.

    Args:
        path: the folder (or one image file).
        K: (3, 3) intrinsics in pixels of the images, or None (default intrinsics per size).
        fps: nominal rate for timestamps and ``realtime`` pacing, or None (30 assumed).
        extensions: image file extensions to list.
        realtime, loop, skip_bad: see :class:`ReplaySource` and the module docstring.

    Raises:
        SourceError: the folder is missing, or holds no image (or no readable one).
    """

    def __init__(self, path: str | os.PathLike[str], *, K: Any = None, fps: float | None = None,
                 extensions: tuple[str, ...] = IMAGE_EXTENSIONS, realtime: bool = False,
                 loop: bool = False, skip_bad: bool = True) -> None:
        super().__init__(realtime=realtime, loop=loop, skip_bad=skip_bad)
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0 or None; got {fps}")
        K_user = check_K(K)
        self.path = Path(path)
        if self.path.is_file() and self.path.suffix.lower() in extensions:
            self.files = [self.path]
        elif self.path.is_dir():
            self.files = list_images(self.path, extensions)
        else:
            raise SourceError(f"{self.path}: image folder not found")
        if not self.files:
            raise SourceError(f"{self.path}: no images in this folder (looked for "
                              f"{', '.join(extensions)}, recursively)")
        self.name = str(self.path)
        self._K_user = K_user
        self._first_size: tuple[int, int] | None = None
        self.fps = fps
        first = self._first_frame()
        self._setup(name=str(self.path), size=first.size, fps=fps, K=K_user, has_depth=False)

    def _length(self) -> int:
        return len(self.files)

    def _load(self, pos: int) -> Frame:
        path = self.files[pos]
        rgb = read_rgb(path)
        h, w = rgb.shape[:2]
        if self._first_size is None:
            self._first_size = (w, h)
        if self._K_user is None:
            K = np.asarray(default_intrinsics(w, h), np.float64)
        elif (w, h) == self._first_size:
            K = self._K_user
        else:
            raise SourceError(f"{path}: the image is {w}x{h} but the given K is for "
                              f"{self._first_size[0]}x{self._first_size[1]} (the first image)")
        return Frame(rgb=rgb, K=K, timestamp=pos * self.period, index=pos)
