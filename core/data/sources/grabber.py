"""A capture thread with a timeout: blocking device reads that can never hang the caller.

:class:`Grabber` runs ``open -> read, read, ... -> release`` of a device in one daemon thread
(the thread owns the device handle, so a read stuck in a driver never races a release from
another thread) and hands frames over a small queue. :meth:`Grabber.get` waits at most
``timeout_s`` for a frame:

* a device whose reads fail (``read`` returns None) ``max_failures`` times in a row, or
  raises, ends with :class:`SourceLost` naming the device;
* a device that delivers nothing for ``timeout_s`` (a read blocked in the driver) ends with
  :class:`SourceLost` too; the blocked thread is abandoned (it is a daemon) and releases the
  device if the read ever returns.

The queue holds at most ``queue_size`` frames; when the consumer is slower than the device the
OLDEST frame is dropped (``dropped`` counts them), so what a consumer gets is always recent.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .base import SourceError, SourceLost

__all__ = ["Grabber"]

_FAIL_SLEEP_S = 0.01  # pause between two failed reads


class Grabber:
    """Read a blocking device in a thread; hand frames to one consumer with a timeout.

    Args:
        name: the device's name for messages ("camera 0").
        open_fn: () -> handle; called in the thread; raises SourceError when it cannot open.
        read_fn: handle -> (H, W, 3) uint8 RGB frame, or None for a failed read; may raise
            SourceError (e.g. a frame of the wrong type).
        release_fn: handle -> None; called in the thread when it ends.
        timeout_s: longest wait (s) for a frame in :meth:`get` before SourceLost.
        max_failures: consecutive failed reads before SourceLost.
        queue_size: frames buffered for the consumer (oldest dropped when full).
    """

    def __init__(self, name: str, open_fn: Callable[[], Any],
                 read_fn: Callable[[Any], np.ndarray | None], release_fn: Callable[[Any], None],
                 *, timeout_s: float = 2.0, max_failures: int = 30, queue_size: int = 2) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds; got {timeout_s}")
        if max_failures < 1:
            raise ValueError(f"max_failures must be >= 1; got {max_failures}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1; got {queue_size}")
        self.name = name
        self.timeout_s = float(timeout_s)
        self.max_failures = int(max_failures)
        self.dropped = 0
        self._open, self._read, self._release = open_fn, read_fn, release_fn
        self._queue: queue.Queue[tuple[str, Any, float]] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._failed: SourceError | None = None
        self._thread = threading.Thread(target=self._run, name=f"grabber {name}", daemon=True)

    def start(self, open_timeout_s: float = 5.0) -> tuple[np.ndarray, float]:
        """Start the thread; wait for the device to open and deliver its first frame.

        Returns:
            (the first frame (H, W, 3) uint8, its capture time in ``time.monotonic`` s).

        Raises:
            SourceError: the device did not open (the open function's error), or delivered
                no frame within ``open_timeout_s`` (then the thread is stopped).
        """
        self._thread.start()
        try:
            return self._get(open_timeout_s, opening=True)
        except SourceError:
            self.stop(join_timeout_s=0.0)
            raise

    def get(self) -> tuple[np.ndarray, float] | None:
        """The next frame and its capture time, or None once :meth:`stop` was called.

        Raises:
            SourceLost: the device failed, or delivered nothing for ``timeout_s``.
        """
        return self._get(self.timeout_s, opening=False)

    def _get(self, timeout_s: float, opening: bool) -> Any:
        if self._failed is not None:
            raise self._failed
        if self._stop.is_set():
            return None
        try:
            kind, payload, t = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            if self._stop.is_set():
                return None
            what = "opened but delivered no frame" if opening else "delivered no frame"
            self._failed = SourceLost(f"{self.name} {what} for {timeout_s:g} s (unplugged, "
                                      f"used by another program, or the driver hangs)")
            raise self._failed from None
        if kind == "frame":
            return payload, t
        if kind == "stopped":
            return None
        self._failed = payload
        raise payload

    def stop(self, join_timeout_s: float = 1.0) -> None:
        """Ask the thread to end and wait up to ``join_timeout_s`` for it (it releases the
        device itself; a thread blocked in the driver is left behind as a daemon)."""
        self._stop.set()
        try:  # wake a consumer blocked in get()
            self._queue.put_nowait(("stopped", None, 0.0))
        except queue.Full:
            pass
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(join_timeout_s)

    @property
    def alive(self) -> bool:
        """True while the capture thread runs."""
        return self._thread.is_alive()

    def _post(self, item: tuple[str, Any, float]) -> None:
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    old = self._queue.get_nowait()
                    if old[0] == "frame":
                        self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        try:
            handle = self._open()
        except SourceError as e:
            self._post(("error", e, 0.0))
            return
        except Exception as e:  # a driver error: report it, never die silently
            self._post(("error", SourceError(f"{self.name} could not be opened ({e})"), 0.0))
            return
        fails = 0
        try:
            while not self._stop.is_set():
                try:
                    frame = self._read(handle)
                except SourceError as e:
                    self._post(("error", e, 0.0))
                    return
                except Exception as e:
                    self._post(("error", SourceLost(f"{self.name}: read failed ({e})"), 0.0))
                    return
                t = time.monotonic()
                if self._stop.is_set():
                    return
                if frame is None:
                    fails += 1
                    if fails >= self.max_failures:
                        self._post(("error", SourceLost(
                            f"{self.name} stopped delivering frames ({fails} failed reads in a "
                            f"row: unplugged or used by another program)"), 0.0))
                        return
                    self._stop.wait(_FAIL_SLEEP_S)
                    continue
                fails = 0
                self._post(("frame", frame, t))
        finally:
            try:
                self._release(handle)
            except Exception:
                pass
