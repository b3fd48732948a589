"""The frame-source contract: :class:`FrameSource` (live or replay), :class:`ReplaySource`, errors.

A frame source is an iterator of :class:`~handpose.core.types.Frame` and a context manager::

    with open_source("camera:0") as src:        # or VideoSource(...), ArraySource(...)
        for frame in src:                       # Frame: rgb (H, W, 3) uint8 RGB, K (3, 3),
            ...                                 # depth (H, W) float32 m | None, timestamp s

Every source exposes ``size`` (width, height) px, ``fps`` (nominal frames/s or None), ``K``
(3, 3) float64 pixels (the source's own intrinsics, else
:func:`~handpose.core.geometry.camera.default_intrinsics`; ``has_K`` says which),
``has_depth``, ``live`` (a camera or a depth device) and ``name`` (what to show a user).
:meth:`FrameSource.read` returns the next frame or None at the end; after :meth:`close`
(idempotent, callable from another thread) it returns None, so a reading thread ends cleanly.

Timestamps are seconds and strictly increasing along what :meth:`read` returns: capture time
(``time.monotonic()``) for live sources; for replays the recorded timestamps (sessions) or
``index / fps`` (files), shifted forward when playback jumps back (a loop wrap or a backward
``seek``) so that they never repeat or decrease. ``Frame.index`` is the frame's index inside
its source (a session's recorded index, a video's frame number), so it does repeat on a loop.

:class:`ReplaySource` (files, sessions, arrays) adds ``len()``, :meth:`~ReplaySource.seek`,
``position`` (the position of the next frame), ``loop``, ``realtime`` (pace :meth:`read` to
the recorded timeline, scaled by ``speed``; otherwise frames come as fast as they decode)
and ``skip_bad``: a frame whose file is corrupt is skipped with ONE warning per source and
counted in ``skipped`` (``skip_bad=False`` raises :class:`SourceError` instead); when every
frame of a source is bad the source raises :class:`SourceError`.

All errors a source raises while opening or reading are :class:`SourceError` (and its
subclass :class:`SourceLost` when a live device stops delivering); their messages name the
file, device or package involved. Bad constructor arguments raise ``ValueError``.
"""

from __future__ import annotations

import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import replace
from types import TracebackType
from typing import Any

import numpy as np

from ...geometry.camera import check_intrinsics, default_intrinsics
from ...types import Frame
from ..errors import DataError

__all__ = [
    "SourceError",
    "SourceLost",
    "SpecError",
    "FrameSource",
    "ReplaySource",
    "DEFAULT_FPS",
    "check_K",
]

#: Frame rate assumed for timestamps and pacing when a replay has no nominal fps.
DEFAULT_FPS = 30.0

#: Longest pause (s) ``realtime`` playback honours between two recorded frames.
MAX_PACE_GAP_S = 1.0

#: How far (s) ``realtime`` playback may fall behind before it re-anchors instead of rushing.
MAX_PACE_LAG_S = 0.25


class SourceError(RuntimeError):
    """A frame source could not be opened or read; the message names the file/device."""


class SourceLost(SourceError):
    """A live source (camera, depth device) stopped delivering frames mid-run."""


class SpecError(SourceError, ValueError):
    """A source spec string that does not parse (also a ``ValueError``: bad user input)."""


def check_K(K: Any, name: str = "K") -> np.ndarray | None:
    """Validate optional intrinsics: None or a (3, 3) matrix; returns float64 (3, 3) or None."""
    if K is None:
        return None
    a = np.asarray(K, np.float64)
    if a.shape != (3, 3):
        raise ValueError(f"{name} must be a (3, 3) intrinsic matrix in pixels; got shape "
                         f"{a.shape}")
    check_intrinsics(a, name)
    return a


class FrameSource(ABC):
    """Base of every frame source (see the module docstring for the contract).

    Subclasses set the attributes below in ``__init__`` (through :meth:`_setup`) and implement
    :meth:`_read` and :meth:`_close`.

    Attributes:
        name: short description for messages ("camera 0", a path, ...).
        live: True for cameras and depth devices, False for replays.
        size: (width, height) in pixels of the frames (of the first frame when they vary).
        fps: nominal frames per second, or None when unknown.
        K: (3, 3) float64 intrinsics in pixels of ``size``.
        has_K: True when ``K`` comes from the source (file, device, or the caller).
        has_depth: frames carry ``depth``.
    """

    live: bool = False

    def __init__(self) -> None:
        self.name = type(self).__name__
        self.size: tuple[int, int] = (0, 0)
        self.fps: float | None = None
        self.K: np.ndarray = np.eye(3)
        self.has_K = False
        self.has_depth = False
        self._closed = False
        self._stop = threading.Event()  # set by close(); wakes any wait in a reader

    def _setup(self, *, name: str, size: tuple[int, int], fps: float | None,
               K: np.ndarray | None, has_depth: bool) -> None:
        """Fill the public attributes; ``K`` None -> default intrinsics of ``size``."""
        self.name = name
        self.size = (int(size[0]), int(size[1]))
        self.fps = None if fps is None or not fps > 0 else float(fps)
        self.has_K = K is not None
        self.K = np.asarray(K, np.float64) if K is not None else np.asarray(
            default_intrinsics(*self.size), np.float64)
        self.has_depth = bool(has_depth)

    def K_for(self, width: int, height: int) -> np.ndarray:
        """The intrinsics of a frame of ``width`` x ``height`` px from this source.

        ``K`` itself when the size is the source's; the default intrinsics of that size when the
        source has no K of its own. A frame of another size from a source with a known K
        raises :class:`SourceError` (the K would not describe it).
        """
        if (width, height) == self.size:
            return self.K
        if not self.has_K:
            return np.asarray(default_intrinsics(width, height), np.float64)
        raise SourceError(f"{self.name}: a frame is {width}x{height} but the source's K is for "
                          f"{self.size[0]}x{self.size[1]}")

    @property
    def seekable(self) -> bool:
        """True when the source supports ``len()`` and ``seek()``."""
        return False

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the source (or once it is closed).

        Raises:
            SourceError: the source failed (a corrupt file with ``skip_bad=False``, a device
                error); SourceLost when a live device stopped delivering.
        """
        if self._closed:
            return None
        return self._read()

    @abstractmethod
    def _read(self) -> Frame | None:
        """Produce the next frame (None at the end)."""

    def _close(self) -> None:  # noqa: B027 (optional hook)
        """Release resources (called once by :meth:`close`)."""

    def close(self) -> None:
        """Release the source's resources. Idempotent; safe to call from another thread."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._close()

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        frame = self.read()
        if frame is None:
            raise StopIteration
        return frame

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        w, h = self.size
        return (f"{type(self).__name__}({self.name!r}, {w}x{h}, fps={self.fps}, "
                f"has_K={self.has_K}, has_depth={self.has_depth}, live={self.live})")


class ReplaySource(FrameSource):
    """A source read from storage: files, sessions, arrays. Seekable when its length is known.

    Subclasses implement :meth:`_load` (decode the frame at a position) and :meth:`_length`.

    Args:
        realtime: pace :meth:`read` to the recorded timestamps (``speed`` x real time).
        loop: start over after the last frame (timestamps keep increasing).
        skip_bad: skip frames whose files are corrupt (one warning, counted in ``skipped``)
            instead of raising :class:`SourceError`.
    """

    live = False

    def __init__(self, *, realtime: bool = False, loop: bool = False,
                 skip_bad: bool = True) -> None:
        super().__init__()
        self.realtime = bool(realtime)
        self.loop = bool(loop)
        self.skip_bad = bool(skip_bad)
        self.speed = 1.0
        self.skipped = 0
        self._pos = 0
        self._lock = threading.RLock()
        self._cache: tuple[int, Frame] | None = None
        self._offset = 0.0  # added to recorded timestamps to keep them increasing
        self._last_ts: float | None = None
        self._last_rec: float | None = None  # recorded timestamp of the last frame returned
        self._release_at: float | None = None  # wall time the last frame was released
        self._jumped = True  # the next frame starts a new pacing anchor

    # -- subclass interface ---------------------------------------------------------------
    @abstractmethod
    def _load(self, pos: int) -> Frame | None:
        """Decode the frame at position ``pos`` (0-based) with its recorded timestamp and
        source index; None when the source turns out to end before ``pos``. A bad file raises
        :class:`~handpose.core.data.errors.DataError` (or SourceError)."""

    @abstractmethod
    def _length(self) -> int | None:
        """Number of frames, or None when unknown (a stream)."""

    # -- public API -------------------------------------------------------------------------
    @property
    def seekable(self) -> bool:
        return self._length() is not None

    def __len__(self) -> int:
        n = self._length()
        if n is None:
            raise TypeError(f"{self.name}: the number of frames is unknown (a stream)")
        return n

    def close(self) -> None:
        """Release the source. Idempotent; from another thread it waits for a decode in
        progress (never for a ``realtime`` pause, which it cuts short)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        with self._lock:
            self._close()

    @property
    def position(self) -> int:
        """Position (0-based) of the frame the next :meth:`read` returns."""
        return self._pos

    def seek(self, index: int) -> None:
        """Make frame position ``index`` (0 <= index < len) the next one :meth:`read` returns.

        Raises:
            ValueError: ``index`` out of range. SourceError: the source is not seekable.
        """
        n = self._length()
        if n is None:
            raise SourceError(f"{self.name}: not seekable (a stream of unknown length)")
        if not isinstance(index, int | np.integer) or not 0 <= int(index) < n:
            raise ValueError(f"index must be an int in [0, {n}); got {index!r}")
        with self._lock:
            self._pos = int(index)
            self._jumped = True

    @property
    def period(self) -> float:
        """Seconds between frames at the nominal rate (``1 / fps``; 1/30 when unknown)."""
        return 1.0 / (self.fps or DEFAULT_FPS)

    def _first_frame(self) -> Frame:
        """Decode the first good frame (cached for the first read); SourceError if none."""
        frame = self._next_frame()
        if frame is None:
            raise SourceError(f"{self.name}: no frames")
        self._pos -= 1  # the first read returns the cached frame from this position
        self._cache = (self._pos, frame)
        return frame

    def _bad(self, err: Exception, pos: int, consecutive: int) -> None:
        if not self.skip_bad:
            raise SourceError(str(err)) from err
        self.skipped += 1
        if self.skipped == 1:
            warnings.warn(f"{self.name}: skipping a frame that cannot be read: {err}. Further "
                          f"bad frames are skipped silently (count in .skipped)",
                          RuntimeWarning, stacklevel=4)
        n = self._length()
        if consecutive >= (n if n is not None else 64):
            raise SourceError(f"{self.name}: {consecutive} consecutive frames cannot be read; "
                              f"last: {err}") from err

    def _next_frame(self) -> Frame | None:
        """Load the frame at the current position (skipping bad ones, wrapping when looping)."""
        bad = 0
        while True:
            n = self._length()
            if n is not None and self._pos >= n:
                if not self.loop or n == 0:
                    return None
                self._pos = 0
                self._jumped = True
            pos = self._pos
            if self._cache is not None and self._cache[0] == pos:
                frame: Frame | None = self._cache[1]
                self._cache = None
            else:
                try:
                    frame = self._load(pos)
                except (DataError, SourceError) as e:
                    self._pos += 1
                    bad += 1
                    self._bad(e, pos, bad)
                    continue
            if frame is None:  # the source ended early: its length is now known
                self._ended_at(pos)
                if not self.loop or pos == 0:
                    return None
                self._pos = 0
                self._jumped = True
                continue
            self._pos = pos + 1
            return frame

    def _ended_at(self, pos: int) -> None:  # noqa: B027 (optional hook)
        """Hook: the source has no frame at ``pos`` (streams learn their length here)."""

    def _read(self) -> Frame | None:
        with self._lock:
            frame = self._next_frame()
            if frame is None:
                return None
            rec = float(frame.timestamp)
            jumped = self._jumped
            self._jumped = False
            ts = rec + self._offset
            if self._last_ts is not None and ts <= self._last_ts:
                ts = self._last_ts + self.period
                self._offset = ts - rec
                jumped = True
            gap = None if jumped or self._last_rec is None else rec - self._last_rec
            self._last_ts, self._last_rec = ts, rec
            if ts != frame.timestamp:
                frame = replace(frame, timestamp=ts)
        if self.realtime:
            self._pace(gap)
        return None if self._closed else frame

    def _pace(self, gap: float | None) -> None:
        """Sleep so frames leave at the recorded intervals (``gap`` s after the previous one,
        scaled by 1 / speed); re-anchor after a jump, a long pause or when far behind."""
        now = time.monotonic()
        if gap is None or self._release_at is None:
            self._release_at = now
            return
        speed = self.speed if self.speed > 0 else 1.0
        target = self._release_at + min(max(gap, 0.0), MAX_PACE_GAP_S) / speed
        if target < now - MAX_PACE_LAG_S:
            target = now  # far behind (a slow consumer): do not rush to catch up
        if target > now:
            self._stop.wait(target - now)
        self._release_at = target
