"""The live pipeline's threads, without Qt (DESIGN.md, "The runtime pipeline").

::

    capture thread: source.read() --> [recorder queue: every frame]
                                  \\-> Mailbox (one slot, latest wins)
    inference thread: Mailbox.get() -> estimator.process() -> build_scene() -> on_tick(Tick)

The capture thread reads the source at its own pace (cameras, real-time replays) and never
waits for inference; the inference thread always takes the newest frame. Neither touches a
widget: results leave through the ``on_tick`` callback as immutable :class:`Tick` s (the Qt
bridge in :mod:`handpose.app.workers` turns them into a signal), and incidents through
``on_event(kind, message)`` with ``kind`` one of :data:`EVENTS`.

The estimator (anything with ``process(frame) -> FrameResult``; normally a
:class:`~handpose.core.inference.estimator.HandPoseEstimator`) is owned by the inference
thread: :meth:`Engine.set_model` and :meth:`Engine.set_options` only post a change that the
thread applies between two frames (``with_options`` when the model has it), and it closes a
replaced model itself, so a model is never closed while in use. Without a model the frames
are still shown; with ``show_recorded`` a session replay shows what the session holds for the
frame: the poses recorded with it (``origin == "recorded"``), else its annotations from
``labels.jsonl`` (``origin == "labels"``; per-joint confidence = visibility: 1 visible,
0.5 hidden). Otherwise ``origin == "none"`` and no hand is drawn.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from handpose.core.data.errors import DataError
from handpose.core.data.sources import FrameSource, SourceError, SourceLost
from handpose.core.geometry.camera import project
from handpose.core.types import Frame, FrameResult, HandPose

from .mailbox import Mailbox, MailboxClosed
from .recording import Recorder
from .scene_data import SceneData, build_scene

__all__ = ["Tick", "Engine", "EVENTS"]

#: Kinds of ``on_event``: the replay reached its end; a live source stopped delivering; the
#: source failed; the model raised on a frame (once per streak); the model raised again after
#: recovering is not reported twice.
EVENTS = ("ended", "lost", "source_error", "inference_error")


@dataclass(frozen=True)
class Tick:
    """One frame's worth of output for the GUI.

    Attributes:
        seq: capture sequence number (per engine, increasing).
        result: the frame and its hands.
        processed: the model ran on this frame (its timings are real).
        origin: "model", "recorded" (poses stored in the replayed session), "labels" (its
            annotations), "none" (no model) or "error" (the model raised on this frame).
        scene: what the 3D view draws.
        captured_at, done_at: ``time.monotonic()`` at capture and after processing.
        position: replay position of the next frame (None for live sources).
        length: frames of the replay (None when unknown / live).
    """

    seq: int
    result: FrameResult
    processed: bool
    origin: str
    scene: SceneData
    captured_at: float
    done_at: float
    position: int | None
    length: int | None


@dataclass(frozen=True)
class _Item:
    seq: int
    gen: int
    frame: Frame
    t: float
    position: int | None
    length: int | None


def _label_hand(lab: Any, K: np.ndarray) -> HandPose | None:
    """An annotation as a HandPose (confidence = visibility), None without 3D joints."""
    if lab.joints3d is None:
        return None
    uv = lab.uv if lab.uv is not None else np.asarray(project(lab.joints3d, K, min_depth=1e-3))
    conf = np.ones(21, np.float32) if lab.visible is None else \
        np.where(lab.visible, 1.0, 0.5).astype(np.float32)
    return HandPose(joints=np.asarray(lab.joints3d, np.float64), uv=np.asarray(uv, np.float64),
                    handedness=lab.handedness or "right", handedness_score=1.0,
                    confidence=conf, track_id=int(lab.hand))


def _recorded_lookup(source: FrameSource
                     ) -> Callable[[Frame], tuple[tuple[Any, ...], str]] | None:
    """For a session replay: frame -> (its recorded hands, "recorded"), else (its labelled
    hands, "labels"); None for other sources."""
    reader = getattr(source, "reader", None)
    if reader is None or not hasattr(reader, "poses"):
        return None

    def lookup(frame: Frame) -> tuple[tuple[Any, ...], str]:
        try:
            hands = reader.poses(reader.position(frame.index))
        except (KeyError, IndexError, DataError, OSError, ValueError):
            hands = None
        if hands is not None:
            return tuple(hands), "recorded"
        labelled = [_label_hand(lab, frame.K) for lab in reader.labels_for(frame.index)]
        return tuple(h for h in labelled if h is not None), "labels"

    return lookup


class Engine:
    """Capture and inference threads for one window (module docstring).

    Args:
        on_tick: called from the inference thread with each :class:`Tick`.
        on_event: called from either thread with ``(kind, message)``.
    """

    def __init__(self, on_tick: Callable[[Tick], None],
                 on_event: Callable[[str, str], None]) -> None:
        self._on_tick = on_tick
        self._on_event = on_event
        self._mailbox: Mailbox[_Item] = Mailbox()
        self._lock = threading.Lock()
        self._source: FrameSource | None = None
        self._capture: threading.Thread | None = None
        self._capture_stop = threading.Event()
        self._gen = 0
        self._seq = 0
        self._paused = threading.Event()
        self._wake = threading.Event()
        self._step = False
        self._recorder: Recorder | None = None
        self._lookup: Callable[[Frame], tuple[tuple[Any, ...], str]] | None = None
        # model state: written by the GUI under _lock, applied by the inference thread
        self._pending_model: tuple[Any] | None = None
        self._pending_options: dict[str, Any] | None = None
        self._options: dict[str, Any] = {}
        self._base: Any = None
        self._current: Any = None
        self._est_gen = -1
        self.show_recorded = True
        self.spheres = True
        self.cloud = True
        self.captured = 0
        self.processed = 0
        self._error_streak = False
        self._closing = False
        self._infer = threading.Thread(target=self._infer_loop, name="inference", daemon=True)
        self._infer.start()

    # -- source -------------------------------------------------------------------------
    @property
    def source(self) -> FrameSource | None:
        return self._source

    def start(self, source: FrameSource, paused: bool = False) -> None:
        """Stop the current source (closing it) and start reading ``source``."""
        self.stop()
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._source = source
            self._lookup = _recorded_lookup(source)
            self._capture_stop = threading.Event()
        if paused:
            self._paused.set()
        else:
            self._paused.clear()
        self._capture = threading.Thread(target=self._capture_loop,
                                         args=(source, gen, self._capture_stop),
                                         name="capture", daemon=True)
        self._capture.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Stop reading and close the source (idempotent)."""
        src, thread = self._source, self._capture
        self._capture_stop.set()
        self._wake.set()
        if src is not None:
            src.close()  # unblocks a waiting read
        if thread is not None:
            thread.join(timeout)
        stale = self._mailbox.take_unread()
        if stale is not None and self._recorder is not None:
            self._recorder.no_result(stale.seq)
        self._source, self._capture = None, None

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()
        self._wake.set()

    def step(self) -> None:
        """While paused, read (and show) one more frame."""
        self._step = True
        self._wake.set()

    def seek(self, index: int) -> None:
        """Seek a replay to frame position ``index``; when paused, show that frame.

        Raises:
            SourceError: no seekable source; ValueError: index out of range.
        """
        src = self._source
        if src is None or not src.seekable:
            raise SourceError("the current source cannot seek (not a replay)")
        src.seek(index)  # type: ignore[attr-defined]
        if self.paused:
            self.step()

    def _capture_loop(self, source: FrameSource, gen: int, stop: threading.Event) -> None:
        length = len(source) if source.seekable else None  # type: ignore[arg-type]
        while not stop.is_set():
            if self._paused.is_set() and not self._step:
                self._wake.wait(0.1)
                self._wake.clear()
                continue
            self._step = False
            try:
                frame = source.read()
            except SourceLost as e:
                self._on_event("lost", str(e))
                return
            except SourceError as e:
                self._on_event("source_error", str(e))
                return
            except Exception as e:  # a bug or an unexpected library error: report, end
                self._on_event("source_error", f"{type(e).__name__}: {e}")
                return
            if frame is None:
                if stop.is_set():
                    return
                self._on_event("ended", source.name)
                if length is None:
                    return
                self._paused.set()  # a replay waits at its end for a seek or play
                continue
            self.captured += 1
            self._seq += 1
            pos = getattr(source, "position", None)
            item = _Item(self._seq, gen, frame, time.monotonic(), pos, length)
            rec = self._recorder
            if rec is not None:
                rec.put(item.seq, frame)
            try:
                old = self._mailbox.put(item)
            except MailboxClosed:
                return
            if old is not None and rec is not None:
                rec.no_result(old.seq)

    # -- recording --------------------------------------------------------------------------
    def attach_recorder(self, recorder: Recorder | None) -> None:
        """Give every captured frame to ``recorder`` from now on (None: stop giving)."""
        self._recorder = recorder

    @property
    def recorder(self) -> Recorder | None:
        return self._recorder

    # -- model ------------------------------------------------------------------------------
    def set_model(self, estimator: Any) -> None:
        """Use ``estimator`` (or None) from the next frame on; the previous one is closed."""
        with self._lock:
            self._pending_model = (estimator,)

    def set_options(self, options: dict[str, Any]) -> None:
        """Estimator options (``with_options`` keywords) for the next frames."""
        with self._lock:
            self._pending_options = dict(options)

    def _apply_changes(self) -> None:
        with self._lock:
            pm, po = self._pending_model, self._pending_options
            self._pending_model = self._pending_options = None
        if pm is None and po is None:
            return
        if po is not None:
            self._options = po
        if pm is not None:
            old, self._base = self._base, pm[0]
            if old is not None and old is not self._base and hasattr(old, "close"):
                try:
                    old.close()
                except Exception:
                    pass
        base = self._base
        if base is not None and self._options and hasattr(base, "with_options"):
            self._current = base.with_options(**self._options)
        else:
            self._current = base
        self._est_gen = -1
        self._error_streak = False

    @property
    def model(self) -> Any:
        """The model in use (its options applied), or None."""
        return self._current

    # -- inference thread -------------------------------------------------------------------
    def _infer_loop(self) -> None:
        while True:
            try:
                self._apply_changes()
            except Exception as e:  # e.g. with_options rejected an option
                self._on_event("inference_error", f"cannot apply the options: {e}")
            try:
                item = self._mailbox.get(timeout=0.05)
            except MailboxClosed:
                break
            if item is None:
                continue
            if item.gen != self._gen:
                if self._recorder is not None:
                    self._recorder.no_result(item.seq)
                continue
            self._on_tick(self._process(item))
        base = self._base
        if base is not None and hasattr(base, "close"):
            try:
                base.close()
            except Exception:
                pass

    def _process(self, item: _Item) -> Tick:
        est = self._current
        processed, origin = False, "none"
        result = FrameResult(frame=item.frame)
        if est is not None:
            if item.gen != self._est_gen and hasattr(est, "reset"):
                est.reset()  # a new source: forget the tracks of the old one
            self._est_gen = item.gen
            try:
                result = est.process(item.frame)
                processed, origin = True, "model"
                self._error_streak = False
            except Exception as e:
                origin = "error"
                if not self._error_streak:
                    self._error_streak = True
                    last = traceback.format_exception_only(type(e), e)[-1].strip()
                    self._on_event("inference_error", last)
        elif self.show_recorded and self._lookup is not None:
            hands, origin = self._lookup(item.frame)
            result = FrameResult(frame=item.frame, hands=hands)
        rec = self._recorder
        if rec is not None:
            rec.add_result(item.seq, result if processed else None)
        self.processed += processed
        scene = build_scene(result, spheres=self.spheres, cloud=self.cloud)
        return Tick(item.seq, result, processed, origin, scene, item.t, time.monotonic(),
                    item.position, item.length)

    # -- shutdown ---------------------------------------------------------------------------
    def close(self, timeout: float = 5.0) -> None:
        """Stop everything: the source, the recorder link, the inference thread, the model."""
        if self._closing:
            return
        self._closing = True
        self.stop()
        self._recorder = None
        self._mailbox.close()
        self._infer.join(timeout)
