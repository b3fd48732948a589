"""Webcams through OpenCV's ``VideoCapture`` (V4L2 on Linux), read in a capture thread.

:class:`CameraSource` opens camera ``index``, optionally asks for a resolution and frame rate,
and waits for the first frame before returning, so a camera that opens but never delivers
fails at once. Frames are read by a :class:`~.grabber.Grabber` thread: :meth:`read` waits at
most ``timeout_s`` for a frame, a camera that stops delivering (unplugged, taken by another
program, a driver that hangs) ends with :class:`~.base.SourceLost`, never a hang. When the
consumer is slower than the camera the oldest buffered frame is dropped (``dropped``), so
frames are always fresh. Timestamps are the capture time (``time.monotonic()`` s).

``K`` is the caller's calibration when given (``has_K``), else the default webcam intrinsics
of the delivered size. :func:`list_cameras` quickly probes indices 0..max_index-1 and the
standard resolutions each accepts.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ...types import Frame
from .base import FrameSource, SourceError, check_K
from .grabber import Grabber
from .pixels import bgr_to_rgb

__all__ = ["CameraInfo", "CameraSource", "list_cameras", "default_backend",
           "PROBE_RESOLUTIONS"]

#: Resolutions (width, height) :func:`list_cameras` tries on every camera.
PROBE_RESOLUTIONS = ((640, 480), (1280, 720), (1920, 1080))


def default_backend() -> int:
    """The capture API: ``cv2.CAP_V4L2`` on Linux (fast open, no GStreamer), else CAP_ANY."""
    return int(cv2.CAP_V4L2) if sys.platform.startswith("linux") else int(cv2.CAP_ANY)


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's "can't open camera by index" warnings while probing."""
    get, set_ = getattr(cv2, "getLogLevel", None), getattr(cv2, "setLogLevel", None)
    if get is None or set_ is None:
        yield
        return
    old = get()
    set_(2)  # errors only
    try:
        yield
    finally:
        set_(old)


def _size(cap: Any) -> tuple[int, int]:
    return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))


@dataclass(frozen=True)
class CameraInfo:
    """A camera that opens.

    Attributes:
        index: the ``camera:N`` index.
        resolutions: (width, height) pairs in pixels it accepted; the default one first.
        backend: OpenCV's name of the capture API ("V4L2", ...).
    """

    index: int
    resolutions: tuple[tuple[int, int], ...]
    backend: str


def list_cameras(max_index: int = 10, *, resolutions: tuple[tuple[int, int], ...] = (
        PROBE_RESOLUTIONS), backend: int | None = None) -> list[CameraInfo]:
    """Probe camera indices ``0 .. max_index - 1``; return those that open.

    For each, the default resolution and which of ``resolutions`` the driver accepts (set,
    then read back; no frame is grabbed, so this is quick: about 1 ms per absent index).

    Args:
        max_index: number of indices to try (>= 1).
        resolutions: (width, height) pairs to try, pixels.
        backend: a ``cv2.CAP_*`` API, default :func:`default_backend`.
    """
    if max_index < 1:
        raise ValueError(f"max_index must be >= 1; got {max_index}")
    api = default_backend() if backend is None else backend
    found: list[CameraInfo] = []
    with _quiet_opencv():
        for i in range(max_index):
            cap = cv2.VideoCapture(i, api)
            try:
                if not cap.isOpened():
                    continue
                sizes = [_size(cap)]
                for w, h in resolutions:
                    cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
                    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
                    if _size(cap) == (w, h) and (w, h) not in sizes:
                        sizes.append((w, h))
                try:
                    name = str(cap.getBackendName())
                except Exception:
                    name = "?"
                found.append(CameraInfo(i, tuple(s for s in sizes if s[0] > 0 and s[1] > 0),
                                        name))
            finally:
                cap.release()
    return found


class _NotOpened(SourceError):
    pass


class CameraSource(FrameSource):
    """A webcam (``camera:N``), read in a capture thread with a timeout.

    Args:
        index: camera index (``/dev/videoN`` on Linux), >= 0.
        width, height: resolution to ask for in pixels (both or neither); the camera may give
            another (a warning says so; ``size`` is what it delivers).
        fps: frame rate to ask for, or None (the camera's default).
        K: (3, 3) calibrated intrinsics in pixels of the delivered size, or None.
        backend: a ``cv2.CAP_*`` API, default :func:`default_backend`.
        fourcc: pixel format to ask for with a resolution ("MJPG": most USB webcams reach
            30 fps above 640x480 only with it), or None.
        timeout_s: longest wait for a frame before :class:`SourceLost`.
        open_timeout_s: longest wait for the camera to open and deliver its first frame.
        max_failures: consecutive failed reads before :class:`SourceLost`.

    Raises:
        SourceError: the camera does not open ("camera 3 could not be opened; available:
            [0, 2]") or delivers no first frame in time.
    """

    live = True

    def __init__(self, index: int = 0, *, width: int | None = None, height: int | None = None,
                 fps: float | None = None, K: Any = None, backend: int | None = None,
                 fourcc: str | None = "MJPG", timeout_s: float = 2.0,
                 open_timeout_s: float = 5.0, max_failures: int = 30) -> None:
        super().__init__()
        if not isinstance(index, int | np.integer) or index < 0:
            raise ValueError(f"index must be an int >= 0; got {index!r}")
        if (width is None) != (height is None) or (width is not None and (
                int(width) <= 0 or int(height or 0) <= 0)):
            raise ValueError(f"width and height must both be given (> 0 pixels) or both be "
                             f"None; got {width}x{height}")
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0 or None; got {fps}")
        if fourcc is not None and len(fourcc) != 4:
            raise ValueError(f"fourcc must be 4 characters (e.g. 'MJPG') or None; got {fourcc!r}")
        K_user = check_K(K)
        self.index = int(index)
        self.requested = None if width is None else (int(width), int(height or 0))
        api = default_backend() if backend is None else int(backend)
        name = f"camera {self.index}"
        props: dict[str, float] = {}

        def open_fn() -> Any:
            with _quiet_opencv():
                cap = cv2.VideoCapture(self.index, api)
            if not cap.isOpened():
                cap.release()
                raise _NotOpened(name)
            if self.requested is not None:
                if fourcc is not None:
                    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*fourcc))
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.requested[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.requested[1])
            if fps is not None:
                cap.set(cv2.CAP_PROP_FPS, float(fps))
            props["fps"] = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            return cap

        def read_fn(cap: Any) -> np.ndarray | None:
            ok, img = cap.read()
            if not ok or img is None:
                return None
            return bgr_to_rgb(img, name)

        self._grabber = Grabber(name, open_fn, read_fn, lambda cap: cap.release(),
                                timeout_s=timeout_s, max_failures=max_failures)
        try:
            first = self._grabber.start(open_timeout_s)
        except _NotOpened:
            others = [c.index for c in list_cameras(backend=api) if c.index != self.index]
            raise SourceError(f"{name} could not be opened; available: "
                              f"{others if others else 'none'}") from None
        rgb, t = first
        h, w = rgb.shape[:2]
        if self.requested is not None and self.requested != (w, h):
            warnings.warn(f"{name}: asked for {self.requested[0]}x{self.requested[1]}, the "
                          f"camera delivers {w}x{h}", RuntimeWarning, stacklevel=2)
        nominal = fps if fps is not None else props.get("fps") or None
        self._setup(name=name, size=(w, h), fps=nominal, K=K_user, has_depth=False)
        self._pending: tuple[np.ndarray, float] | None = (rgb, t)
        self._count = 0
        self._last_t = -np.inf

    @property
    def dropped(self) -> int:
        """Frames dropped because the consumer was slower than the camera."""
        return self._grabber.dropped

    def _read(self) -> Frame | None:
        if self._pending is not None:
            got: tuple[np.ndarray, float] | None = self._pending
            self._pending = None
        else:
            got = self._grabber.get()
        if got is None or self._closed:
            return None
        rgb, t = got
        t = max(t, self._last_t + 1e-6)  # strictly increasing
        self._last_t = t
        h, w = rgb.shape[:2]
        frame = Frame(rgb=rgb, K=self.K_for(w, h), timestamp=t, index=self._count)
        self._count += 1
        return frame

    def _close(self) -> None:
        self._grabber.stop(join_timeout_s=min(self._grabber.timeout_s, 1.0))
