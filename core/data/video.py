"""Video files as frame-indexed datasets (OpenCV ``VideoCapture``, FFmpeg backend).

``len`` is the container's frame count (``CAP_PROP_FRAME_COUNT``). Reading frame i right after
frame i - 1 is a plain sequential decode (the fast path of ``DataLoader(shuffle=False)``);
any other index seeks (``CAP_PROP_POS_FRAMES``) first. The capture is opened lazily in each
process (a ``VideoCapture`` cannot be pickled to DataLoader workers) and released by
:meth:`VideoDataset.close`.

Samples carry ``timestamp`` = frame / fps (seconds) and ``path`` = ``<file>#<frame>``. There
are no labels and no box; with ``crop_size`` the crop is the centre square (or the ``box``
given to the constructor, in pixels of the video).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .base import HandDataset
from .errors import DataError
from .handcrop import DEFAULT_CROP_MARGIN
from .sample import make_sample

__all__ = ["VideoDataset", "open_video"]


def open_video(path: str | os.PathLike[str]) -> cv2.VideoCapture:
    """Open a video file; raise DataError naming it when it is missing or cannot be decoded."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "video file not found")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise DataError(p, "cannot open the video (not a video file, corrupt, or a codec "
                        "OpenCV's FFmpeg build does not have)")
    return cap


class VideoDataset(HandDataset):
    """The frames of one video file.

    Args:
        path: the video file.
        K: (3, 3) intrinsics of the video in pixels, or None (default webcam K, has_K False).
        box: (4,) x, y, w, h hand box (pixels, pixel-centre convention) for every frame, or
            None.
        handedness: code for every frame (-1 unknown).
        crop_size, crop_margin, skip_bad: see :class:`HandDataset`.

    Raises:
        DataError: the file is missing, cannot be opened, or reports no frames.
    """

    source = "video"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        K: np.ndarray | None = None,
        box: np.ndarray | None = None,
        handedness: int = -1,
        crop_size: int | None = None,
        crop_margin: float = DEFAULT_CROP_MARGIN,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(crop_size=crop_size, crop_margin=crop_margin, skip_bad=skip_bad)
        self.path = Path(path)
        cap = open_video(self.path)
        try:
            self.num_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            fps = float(cap.get(cv2.CAP_PROP_FPS))
            self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            cap.release()
        if self.num_frames <= 0:
            raise DataError(self.path, "the container reports no frame count (a stream, or a "
                            "file without an index); re-mux it or read it as a frame source")
        self.fps = fps if fps > 0 else 30.0
        if K is not None and np.asarray(K).shape != (3, 3):
            raise ValueError(f"K must have shape (3, 3); got {np.asarray(K).shape}")
        if box is not None and np.asarray(box).shape != (4,):
            raise ValueError(f"box must have shape (4,) (x, y, w, h); got {np.asarray(box).shape}")
        self.K = None if K is None else np.asarray(K, np.float32)
        self.box = None if box is None else np.asarray(box, np.float32)
        self.handedness = int(handedness)
        self._cap: cv2.VideoCapture | None = None
        self._next = 0  # the frame a plain read() returns

    def __len__(self) -> int:
        return self.num_frames

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cap"], state["_next"] = None, 0
        return state

    def close(self) -> None:
        """Release the decoder (it reopens on the next read)."""
        if self._cap is not None:
            self._cap.release()
        self._cap, self._next = None, 0

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def read_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as (H, W, 3) uint8 RGB. Raises DataError when it cannot be decoded."""
        if self._cap is None:
            self._cap = open_video(self.path)
            self._next = 0
        if index != self._next:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, float(index))
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            self.close()
            raise DataError(self.path, f"cannot decode frame {index} of {self.num_frames} "
                            f"(truncated file or a frame count the container over-reports)")
        self._next = index + 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def load(self, index: int) -> dict[str, Any]:
        rgb = self.read_frame(index)
        return make_sample(
            rgb, index=index, source=self.source, K=self.K, handedness=self.handedness,
            box=self.box, timestamp=index / self.fps, path=f"{self.path}#{index}",
        )
