"""SessionWriter: record frames, tracking results and annotations into a session folder.

Crash safety (the format is in :mod:`.session`):

* a frame's images are written to a hidden temp name, fsynced (``fsync="frame"``) and renamed
  into place; only then is its ``poses.jsonl`` line appended, in ONE ``os.write`` on an
  ``O_APPEND`` descriptor. A crash at any point leaves every earlier frame complete and at
  most a torn last line (readers skip it) or an orphan image (ignored, overwritten later).
* ``fsync="frame"`` (default) also fsyncs the JSONL after every line and the folders after
  renames, so even a power cut loses at most the frame being written; ``fsync="close"`` only
  fsyncs at :meth:`SessionWriter.close` (safe against a process crash, cheaper on slow disks).
* when the disk refuses a write (``ENOSPC``, ``EIO``, ...) the writer removes the frame's
  partial files, truncates a partial line, and raises :class:`SessionWriteError` (an
  ``OSError`` with the cause's errno, naming the file and the last complete frame). The
  session stays valid up to that frame and the writer may be used again after freeing space.

Reopening (``append=True``) repairs a session left by a crash: it cuts a torn last line,
removes temp files and continues numbering after the last complete frame.

The writer is not thread-safe: use it from one thread (the app's recorder thread).
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Frame, FrameResult
from .errors import DataError, SessionWriteError
from .imageio import encode_depth_png, encode_jpeg
from .jsonio import fsync_dir, iter_jsonl, load_json, write_json_atomic
from .session import (
    DEPTH_DIR,
    INFO_FILE,
    LABELS_FILE,
    POSES_FILE,
    RGB_DIR,
    Label,
    SessionInfo,
    frame_stem,
    hand_to_json,
    rounded,
)

__all__ = ["SessionWriter"]


def _default_app_version() -> str:
    try:
        from importlib.metadata import version

        return "handpose " + version("handpose")
    except Exception:
        return "handpose (source tree)"


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (module-level so tests can inject disk errors)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _repair_jsonl(path: Path) -> int:
    """Cut a torn last line (no final newline) off ``path``; return the bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return 0
        # find the last newline, reading backwards in blocks
        pos, keep = size, 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            k = f.read(step).rfind(b"\n")
            if k >= 0:
                keep = pos + k + 1
                break
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


class SessionWriter:
    """Append-only writer of one session folder.

    Args:
        path: the session folder (created with ``rgb/`` and ``depth/`` when missing).
        K: (3, 3) intrinsics; None -> taken from the first frame.
        K_calibrated: whether K is a real calibration (False for a default webcam K).
        source, app_version, model_version, extra: recorded in ``session.json``
            (``app_version`` defaults to the installed handpose version).
        append: False -> the folder must not hold a session yet; True -> continue an
            existing session (repairing a crash's leftovers).
        jpeg_quality: 1-100.
        fsync: "frame" (durable per frame) or "close" (see the module docstring).

    Raises:
        FileExistsError: ``append=False`` and the folder already holds a session.
        DataError: ``append=True`` and the folder's ``session.json`` is missing or bad.
        SessionWriteError: the folder cannot be created/written.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        K: np.ndarray | None = None,
        K_calibrated: bool = True,
        source: str = "",
        app_version: str | None = None,
        model_version: str = "",
        extra: dict[str, Any] | None = None,
        append: bool = False,
        jpeg_quality: int = 95,
        fsync: str = "frame",
    ) -> None:
        if fsync not in ("frame", "close"):
            raise ValueError(f"fsync must be 'frame' or 'close'; got {fsync!r}")
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100]; got {jpeg_quality}")
        self.path = Path(path)
        self.jpeg_quality = int(jpeg_quality)
        self.fsync = fsync
        self._fds: dict[str, int] = {}
        info_path = self.path / INFO_FILE
        self._guard("creating the session", str(self.path), lambda: self._make_dirs())
        if append:
            try:
                self.info = SessionInfo.from_json(load_json(info_path))
            except (ValueError, TypeError) as e:
                if isinstance(e, DataError):
                    raise
                raise DataError(info_path, f"bad session.json ({e})") from None
            self._guard("repairing the session", str(self.path), self._repair)
            self.num_frames = self._count_frames()
        else:
            if info_path.exists():
                raise FileExistsError(f"{self.path} already holds a session (session.json); "
                                      "pass append=True to continue it or choose a new folder")
            self.info = SessionInfo(
                K=None if K is None else np.asarray(K, np.float64).reshape(3, 3),
                K_calibrated=K_calibrated, source=source,
                app_version=_default_app_version() if app_version is None else app_version,
                model_version=model_version, extra=dict(extra or {}),
            )
            self._guard("writing session.json", str(info_path),
                        lambda: write_json_atomic(info_path, self.info.to_json()))
            self.num_frames = 0
        self._guard("opening the JSONL files", str(self.path), self._open_fds)

    # -- setup ---------------------------------------------------------------------------
    def _make_dirs(self) -> None:
        for d in (self.path, self.path / RGB_DIR, self.path / DEPTH_DIR):
            d.mkdir(parents=True, exist_ok=True)

    def _open_fds(self) -> None:
        for name in (POSES_FILE, LABELS_FILE):
            self._fds[name] = os.open(self.path / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                      0o644)

    def _repair(self) -> None:
        for name in (POSES_FILE, LABELS_FILE):
            _repair_jsonl(self.path / name)
        for d in (RGB_DIR, DEPTH_DIR):
            for tmp in (self.path / d).glob(".*.tmp"):
                tmp.unlink()

    def _count_frames(self) -> int:
        poses = self.path / POSES_FILE
        if not poses.exists():
            return 0
        last = -1
        for _, _, obj in iter_jsonl(poses):
            last = max(last, int(obj.get("index", -1)))
        return last + 1

    # -- low-level I/O with rollback -------------------------------------------------------
    def _error(self, e: OSError, what: str, filename: str) -> SessionWriteError:
        code = e.errno or errno.EIO
        why = "disk full" if code == errno.ENOSPC else (e.strerror or str(e))
        last = getattr(self, "num_frames", 0) - 1
        return SessionWriteError(code, f"{why} while {what} ({filename}); the session is valid "
                                 f"up to frame {last}", filename, last)

    def _guard(self, what: str, filename: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (SessionWriteError, FileExistsError):
            raise
        except OSError as e:
            raise self._error(e, what, filename) from e

    def _put_file(self, final: Path, data: bytes, written: list[Path]) -> None:
        tmp = final.with_name("." + final.name + ".tmp")
        written.append(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            if self.fsync == "frame":
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        written.append(final)

    def _append_line(self, name: str, obj: dict[str, Any]) -> None:
        fd = self._fds[name]
        line = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, line)
            if self.fsync == "frame":
                os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)  # drop the partial line
            except OSError:
                pass
            raise

    # -- public API ----------------------------------------------------------------------
    def append_frame(self, frame: Frame, result: FrameResult | None = None) -> int:
        """Record one frame (and its tracking result, if any).

        Args:
            frame: the captured :class:`Frame` (rgb, optional depth in metres, K, timestamp).
            result: the pipeline's :class:`FrameResult` for it, or None (not processed).

        Returns:
            the frame's session index.

        Raises:
            SessionWriteError: the disk refused a write; nothing of this frame remains.
            ValueError: the writer is closed.
        """
        if not self._fds:
            raise ValueError(f"SessionWriter for {self.path} is closed")
        index = self.num_frames
        stem = frame_stem(index)
        rgb_bytes = encode_jpeg(frame.rgb, self.jpeg_quality)
        depth_bytes = None if frame.depth is None else encode_depth_png(frame.depth)
        K = np.asarray(frame.K, np.float64)
        line: dict[str, Any] = {
            "index": index, "timestamp": round(float(frame.timestamp), 6),
            "source_index": int(frame.index), "rgb": f"{RGB_DIR}/{stem}.jpg",
            "depth": None if depth_bytes is None else f"{DEPTH_DIR}/{stem}.png",
        }
        if self.info.K is None:
            self.info = replace(self.info, K=K.copy())
            self._guard("writing session.json", str(self.path / INFO_FILE),
                        lambda: write_json_atomic(self.path / INFO_FILE, self.info.to_json()))
        elif not np.allclose(K, self.info.K, atol=1e-6):
            line["K"] = rounded(K, 6)
        line["hands"] = None if result is None else [hand_to_json(h) for h in result.hands]
        if result is not None:
            line["timings_ms"] = {k: round(float(v), 3) for k, v in result.timings_ms.items()}
        written: list[Path] = []
        current = self.path / line["rgb"]
        try:
            self._put_file(current, rgb_bytes, written)
            if depth_bytes is not None:
                current = self.path / line["depth"]
                self._put_file(current, depth_bytes, written)
            if self.fsync == "frame":
                fsync_dir(self.path / RGB_DIR)
                if depth_bytes is not None:
                    fsync_dir(self.path / DEPTH_DIR)
            current = self.path / POSES_FILE
            self._append_line(POSES_FILE, line)
        except OSError as e:
            for p in written:  # roll back this frame's files
                try:
                    p.unlink()
                except OSError:
                    pass
            raise self._error(e, f"writing frame {index}", str(current)) from e
        self.num_frames += 1
        return index

    def append_label(
        self,
        index: int,
        *,
        uv: np.ndarray | None = None,
        joints3d: np.ndarray | None = None,
        visible: np.ndarray | None = None,
        handedness: str | None = None,
        hand: int = 0,
        author: str = "",
        method: str = "manual",
        done: bool = False,
    ) -> Label:
        """Append an annotation of hand slot ``hand`` in frame ``index`` (overrides earlier ones).

        Args:
            index: a recorded session frame (0 <= index < num_frames).
            uv: (21, 2) pixels, joints3d: (21, 3) metres, visible: (21,) bool; any may be
                None (all None: the frame was looked at and has no such hand).
            handedness: "left" / "right" / None. author: who; method: what made it.
            done: the annotation is finished.

        Returns:
            the written :class:`Label` (``time`` = now).

        Raises:
            ValueError: bad index/shapes. SessionWriteError: the disk refused the write.
        """
        if not self._fds:
            raise ValueError(f"SessionWriter for {self.path} is closed")
        if not 0 <= index < self.num_frames:
            raise ValueError(f"index must be a recorded frame in [0, {self.num_frames}); got "
                             f"{index}")
        label = Label(index=index, hand=hand, uv=uv, joints3d=joints3d, visible=visible,
                      handedness=handedness, author=author, method=method, done=done,
                      time=time.time())
        self._guard(f"writing a label of frame {index}", str(self.path / LABELS_FILE),
                    lambda: self._append_line(LABELS_FILE, label.to_json()))
        return label

    def close(self) -> None:
        """fsync and close the JSONL files (idempotent)."""
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            try:
                os.fsync(fd)
            except OSError:
                pass
            os.close(fd)
        if fds:
            fsync_dir(self.path / RGB_DIR)
            fsync_dir(self.path / DEPTH_DIR)
            fsync_dir(self.path)

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
