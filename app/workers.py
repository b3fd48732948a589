"""Qt glue of the worker threads: results and events as signals, background jobs.

:class:`EngineBridge` owns the :class:`~handpose.app.engine.Engine` (capture and inference
threads) and turns its callbacks into Qt signals. Ticks are coalesced: the bridge keeps only
the newest undisplayed :class:`~handpose.app.engine.Tick` and emits ``tick_ready`` once per
batch, so when the GUI is slower than inference no event queue builds up (latest wins here
too, as in the capture mailbox); ``coalesced`` counts the ticks never shown.

:class:`BackgroundJob` runs a function in a Python thread (opening a source or a model,
auto-labelling, calibration) and reports ``progress``, ``done`` or ``failed`` as signals; the
function gets a ``progress(done, total)`` callback and a ``cancelled()`` predicate.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal

from .engine import Engine, Tick

__all__ = ["EngineBridge", "BackgroundJob"]


class EngineBridge(QObject):
    """The engine's callbacks as signals (emitted from worker threads, delivered queued)."""

    tick_ready = pyqtSignal()
    event = pyqtSignal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._latest: Tick | None = None
        self.coalesced = 0
        self.engine = Engine(self._on_tick, self._on_event)

    def _on_tick(self, tick: Tick) -> None:
        with self._lock:
            pending = self._latest is not None
            if pending:
                self.coalesced += 1
            self._latest = tick
        if not pending:
            self.tick_ready.emit()

    def _on_event(self, kind: str, message: str) -> None:
        self.event.emit(kind, message)

    def take(self) -> Tick | None:
        """The newest undisplayed tick (None if there is none); GUI thread."""
        with self._lock:
            t, self._latest = self._latest, None
        return t

    def close(self) -> None:
        self.engine.close()


class BackgroundJob(QObject):
    """Run ``fn(progress, cancelled)`` in a thread; its outcome arrives as a signal.

    Args:
        fn: ``fn(progress: Callable[[int, int], None], cancelled: Callable[[], bool])``;
            its return value is emitted by ``done``, an exception's message by ``failed``.
        name: the thread's name.
    """

    progress = pyqtSignal(int, int)
    done = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(self, fn: Callable[[Callable[[int, int], None], Callable[[], bool]], Any],
                 name: str = "job", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.finished = False

    def start(self) -> BackgroundJob:
        """Run the function; connect the signals BEFORE (a quick job may end at once)."""
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the thread (tests, shutdown); True when it ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            out = self._fn(lambda d, t: self.progress.emit(int(d), int(t)), self._cancel.is_set)
        except Exception as e:
            msg = str(e) or traceback.format_exception_only(type(e), e)[-1].strip()
            self.finished = True
            self.failed.emit(msg)
            return
        self.finished = True
        self.done.emit(out)
