"""Recording a session in a thread of its own, losing no frame (Qt-free).

::

    capture thread --put(seq, frame)--> [bounded queue] --> recorder thread --> SessionWriter
    inference thread --add_result(seq, result)--^            (waits for each frame's result)
    capture thread --no_result(seq)  (the mailbox replaced the frame: it is never processed)

Every captured frame goes into a bounded queue. When the disk is slower than the capture for
longer than the queue lasts, :meth:`Recorder.put` BLOCKS the capture thread (back-pressure)
instead of dropping a frame; the time it waited is counted and shown (a live camera then
drops frames upstream, which its source counts). Each frame is written with its tracking
result when the model processed it, else with ``hands: null``: the recorder writes frame
``seq`` once its fate is known (a result, or "not processed") or after ``result_wait_s``.

The writer is crash-safe (:class:`~handpose.core.data.session_writer.SessionWriter`): a
``kill -9`` loses at most the frame being written. A disk that fills up ends the recording
with :attr:`RecordingStatus.error` set (the session stays valid up to its last full frame);
later :meth:`Recorder.put` calls return False at once.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from handpose.core.data.errors import SessionWriteError
from handpose.core.data.session_writer import SessionWriter
from handpose.core.types import Frame, FrameResult

__all__ = ["Recorder", "RecordingStatus", "new_session_path"]

_NOT_PROCESSED = object()


def new_session_path(folder: str | PathLike[str], now: float | None = None) -> Path:
    """A new session folder ``folder/session-YYYYmmdd-HHMMSS[-k]`` (not created)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = Path(folder) / f"session-{stamp}"
    path, k = base, 1
    while path.exists():
        path = base.with_name(f"{base.name}-{k}")
        k += 1
    return path


@dataclass(frozen=True)
class RecordingStatus:
    """A snapshot of a recording.

    Attributes:
        path: the session folder.
        elapsed_s: seconds since the start (frozen at the stop).
        offered: frames given to :meth:`Recorder.put`; written: frames in the session.
        queued: frames waiting to be written; capacity: the queue's size.
        blocked_s: total time the capture thread waited for room (back-pressure).
        blocked_events: how many puts had to wait.
        error: why the recording stopped early ("" if it did not).
        running: the recorder still accepts frames.
    """

    path: str
    elapsed_s: float
    offered: int
    written: int
    queued: int
    capacity: int
    blocked_s: float
    blocked_events: int
    error: str
    running: bool

    @property
    def lost(self) -> int:
        """Frames offered but not written (only after an error, or while still queued)."""
        return self.offered - self.written - self.queued

    def text(self) -> str:
        """One line for the status bar: ``REC 00:12  360 frames  queue 3/64``."""
        m, s = divmod(int(self.elapsed_s), 60)
        line = f"REC {m:02d}:{s:02d}  {self.written} frames  queue {self.queued}/{self.capacity}"
        if self.blocked_events:
            line += f"  back-pressure: capture waited {self.blocked_s * 1000:.0f} ms"
        if self.error:
            line += "  STOPPED: " + self.error
        return line


class Recorder:
    """Writes captured frames and their results to a new session folder (module docstring).

    Args:
        path: the new session folder (must not hold a session).
        K: (3, 3) intrinsics of the frames (None: the first frame's).
        K_calibrated: whether K is a calibration (False for a default webcam K).
        source: the source spec recorded in ``session.json``.
        model_version: the checkpoint that produced the results ("" if none).
        capacity: frames the queue holds before the capture thread waits (>= 1).
        result_wait_s: longest wait for a frame's result before writing it without one.
        writer_factory: builds the writer (tests inject slow or failing disks); default
            :class:`SessionWriter`.
        fsync: the writer's fsync policy. "close" (default): data reaches the OS page cache
            as each frame is written, so a crash of the app (even ``kill -9``) loses at most
            the frame being written; fsync at the end. "frame": also fsync every frame
            (survives a power cut) but costs ~19 ms per frame on the development VM's disk
            (five fsyncs), more than a 30 fps stream allows next to the encoding.

    Raises:
        FileExistsError: the folder holds a session. SessionWriteError: it cannot be created.
    """

    def __init__(self, path: str | PathLike[str], *, K: np.ndarray | None = None,
                 K_calibrated: bool = False, source: str = "", model_version: str = "",
                 capacity: int = 90, result_wait_s: float = 1.0,
                 writer_factory: Any = None, fsync: str = "close",
                 extra: dict[str, Any] | None = None) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1; got {capacity!r}")
        if not result_wait_s >= 0:
            raise ValueError(f"result_wait_s must be >= 0 seconds; got {result_wait_s}")
        self.path = Path(path)
        factory = writer_factory or SessionWriter
        self._writer = factory(self.path, K=K, K_calibrated=K_calibrated, source=source,
                               model_version=model_version, fsync=fsync, extra=extra)
        self.capacity = capacity
        self.result_wait_s = float(result_wait_s)
        self._queue: queue.Queue[tuple[int, Frame] | None] = queue.Queue(maxsize=capacity)
        self._fates: dict[int, Any] = {}
        self._fate_cond = threading.Condition()
        self._lock = threading.Lock()
        self._accepting = True
        self._stop_now = threading.Event()
        self._t0 = time.monotonic()
        self._t_end: float | None = None
        self.offered = 0
        self.written = 0
        self.blocked_s = 0.0
        self.blocked_events = 0
        self.error = ""
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    # -- producers (capture and inference threads) ----------------------------------------
    def put(self, seq: int, frame: Frame) -> bool:
        """Queue frame ``seq`` for writing; waits while the queue is full (back-pressure).

        Returns:
            True when queued; False when the recording has stopped (the frame is not
            recorded; :attr:`RecordingStatus.error` says why).
        """
        if not self._accepting:
            return False
        try:
            self._queue.put_nowait((seq, frame))
        except queue.Full:
            t0 = time.monotonic()
            with self._lock:
                self.blocked_events += 1
            while self._accepting:
                try:
                    self._queue.put((seq, frame), timeout=0.1)
                    break
                except queue.Full:
                    continue
            with self._lock:
                self.blocked_s += time.monotonic() - t0
            if not self._accepting:
                return False
        with self._lock:
            self.offered += 1
        return True

    def add_result(self, seq: int, result: FrameResult | None) -> None:
        """The result of frame ``seq`` (None: the frame was taken but not processed)."""
        with self._fate_cond:
            self._fates[seq] = _NOT_PROCESSED if result is None else result
            self._fate_cond.notify_all()

    def no_result(self, seq: int) -> None:
        """Frame ``seq`` will never be processed (replaced in the mailbox)."""
        self.add_result(seq, None)

    # -- the writer thread ------------------------------------------------------------------
    def _fate(self, seq: int) -> FrameResult | None:
        deadline = time.monotonic() + self.result_wait_s
        with self._fate_cond:
            while seq not in self._fates and not self._stop_now.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._fate_cond.wait(left)
            fate = self._fates.pop(seq, _NOT_PROCESSED)
            for old in [k for k in self._fates if k < seq]:  # fates of frames never queued
                del self._fates[old]
        return None if fate is _NOT_PROCESSED else fate

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                seq, frame = item
                result = self._fate(seq)
                if result is not None and result.frame.timestamp != frame.timestamp:
                    result = None  # never record a result of another frame
                try:
                    self._writer.append_frame(frame, result)
                except SessionWriteError as e:
                    self._fail(str(e))
                    break
                except (OSError, ValueError) as e:
                    self._fail(f"cannot write frame: {e}")
                    break
                with self._lock:
                    self.written += 1
        finally:
            self._writer.close()
            if self._t_end is None:
                self._t_end = time.monotonic()

    def _fail(self, message: str) -> None:
        self.error = message
        self._accepting = False
        self._t_end = time.monotonic()
        while True:  # unblock a waiting put and forget the unwritable frames
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    # -- control ----------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop accepting frames without waiting: the queued frames are still written (the
        thread ends by itself; see :attr:`finished`)."""
        if not self._accepting:
            return
        self._accepting = False
        self._t_end = time.monotonic()
        self._stopper = threading.Thread(target=self._put_sentinel, name="recorder-stop",
                                         daemon=True)
        self._stopper.start()

    def _put_sentinel(self) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.1)
                return
            except queue.Full:
                continue

    @property
    def finished(self) -> bool:
        """The writer thread ended (all queued frames written, or an error)."""
        return not self._thread.is_alive()

    def stop(self, timeout: float | None = 30.0) -> RecordingStatus:
        """Stop accepting frames, write the queued ones, close the session.

        Args:
            timeout: longest wait for the queue to drain (seconds; None = no limit).
        Returns:
            the final status.
        """
        self.request_stop()
        self._thread.join(timeout)
        if self._thread.is_alive():  # a stuck disk: give up waiting for results at least
            self._stop_now.set()
            with self._fate_cond:
                self._fate_cond.notify_all()
        return self.status()

    @property
    def running(self) -> bool:
        return self._accepting and self._thread.is_alive()

    def status(self) -> RecordingStatus:
        end = self._t_end if self._t_end is not None else time.monotonic()
        with self._lock:
            return RecordingStatus(
                path=str(self.path), elapsed_s=end - self._t0, offered=self.offered,
                written=self.written, queued=self._queue.qsize(), capacity=self.capacity,
                blocked_s=self.blocked_s, blocked_events=self.blocked_events, error=self.error,
                running=self.running)
