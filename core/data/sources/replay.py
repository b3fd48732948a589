"""Replays of recorded sessions (``session:DIR``) and of the shipped demo recording (``demo``).

A session folder (format in :mod:`handpose.core.data.session`) is read with
:class:`~handpose.core.data.session_reader.SessionReader`: frames keep their recorded index,
K, depth and timestamps (so ``realtime`` playback has the recording's rhythm); ``fps`` is the
median recorded rate. ``has_K`` is ``session.json``'s ``K_calibrated``.

The demo is a session folder too: ``assets/demo/`` (the ``handpose.assets`` package), or the
folder named by the ``HANDPOSE_DEMO_DIR`` environment variable, or the ``path`` given to
:func:`open_demo`. It plays in real time and loops by default (the app shows it when no camera
is there). When it is missing, :func:`open_demo` raises :class:`SourceError` saying so and
how to create it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ...types import Frame
from ..errors import DataError
from ..session import INFO_FILE
from ..session_reader import SessionReader
from .base import ReplaySource, SourceError, check_K

__all__ = ["SessionSource", "DEMO_ENV", "demo_dir", "open_demo"]

#: Environment variable naming a session folder to use as the demo recording.
DEMO_ENV = "HANDPOSE_DEMO_DIR"


class SessionSource(ReplaySource):
    """The frames of a recorded session.

    Args:
        path: the session folder (with ``session.json``).
        K: (3, 3) intrinsics overriding the recorded ones, or None.
        realtime, loop, skip_bad: see :class:`ReplaySource`; ``skip_bad`` also skips bad
            ``poses.jsonl`` lines and frames whose image is missing (counted in ``skipped``).

    Attributes:
        reader: the :class:`SessionReader` (tracked hands, labels of the recorded frames).

    Raises:
        SourceError: not a session folder (or a bad ``session.json``), no (readable) frames.
    """

    def __init__(self, path: str | os.PathLike[str], *, K: Any = None, realtime: bool = False,
                 loop: bool = False, skip_bad: bool = True) -> None:
        super().__init__(realtime=realtime, loop=loop, skip_bad=skip_bad)
        K_user = check_K(K)
        self.path = Path(path)
        self.name = str(self.path)
        if not (self.path / INFO_FILE).is_file():
            raise SourceError(f"{self.path}: not a session folder (no {INFO_FILE})")
        try:
            with warnings.catch_warnings():
                if skip_bad:
                    warnings.simplefilter("ignore", RuntimeWarning)
                self.reader = SessionReader(self.path, skip_bad=skip_bad)
        except DataError as e:
            raise SourceError(str(e)) from None
        self.skipped = self.reader.skipped.count
        if self.skipped:
            warnings.warn(f"{self.name}: skipped {self.skipped} bad lines/frames; first: "
                          f"{self.reader.skipped.first}", RuntimeWarning, stacklevel=2)
        records = self.reader.records
        if not records:
            raise SourceError(f"{self.path}: the session has no frames")
        ts = np.array([r.timestamp for r in records], np.float64)
        dt = np.diff(ts)
        dt = dt[dt > 0]
        fps = float(1.0 / np.median(dt)) if dt.size else None
        self._K_user = K_user
        self.fps = fps
        first = self._first_frame()
        info = self.reader.info
        if K_user is not None:
            K = K_user
        elif info.K_calibrated and info.K is not None:
            K = info.K
        else:
            K = None
        self._setup(name=self.name, size=first.size, fps=fps, K=K,
                    has_depth=any(r.depth is not None for r in records))
        if K is None and info.K is not None:
            self.K = np.asarray(info.K, np.float64)  # the recorded (uncalibrated) K

    def _length(self) -> int:
        return len(self.reader)

    def _load(self, pos: int) -> Frame:
        frame = self.reader.frame(pos)
        if self._K_user is not None:
            frame = replace(frame, K=self._K_user)
        return frame


def demo_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Where the demo recording is: ``path``, else ``$HANDPOSE_DEMO_DIR``, else
    ``assets/demo`` of the installed ``handpose.assets`` package. Does not check it exists."""
    if path is not None:
        return Path(path)
    env = os.environ.get(DEMO_ENV)
    if env:
        return Path(env)
    from handpose.assets import ASSETS_DIR

    return Path(ASSETS_DIR) / "demo"


def open_demo(path: str | os.PathLike[str] | None = None, *, realtime: bool = True,
              loop: bool = True, K: Any = None) -> SessionSource:
    """Open the demo recording (a session folder; see :func:`demo_dir`).

    Args:
        path: a session folder to use instead of the shipped demo, or None.
        realtime: play at the recorded rate (default True: the demo is for watching).
        loop: start over at the end (default True).
        K: (3, 3) intrinsics overriding the recorded ones, or None.

    Raises:
        SourceError: the demo recording is missing (the message says how to create it) or
            unreadable.
    """
    where = demo_dir(path)
    if not (where / INFO_FILE).is_file():
        raise SourceError(
            f"the demo recording is missing: no session folder at {where} ({INFO_FILE} not "
            f"found). It is generated by the synthetic-data tool (handpose-data), which writes "
            f"a session folder to assets/demo; or point {DEMO_ENV} at any recorded session "
            f"folder, or open a real source instead (camera:0, a video, session:DIR)")
    return SessionSource(where, K=K, realtime=realtime, loop=loop)
