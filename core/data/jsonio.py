"""JSON / JSONL reading and atomic writing with errors that name the file and line.

* :func:`load_json`: a whole JSON document; a missing, empty, truncated or invalid file raises
  :class:`DataError` with the line of the parse error.
* :func:`array_entries`: a JSON list of equally shaped numeric entries -> one float array,
  with the entries that do not fit reported one by one (entry index) instead of a bare
  numpy error.
* :func:`iter_jsonl`: the lines of a JSONL file as ``(line_number, byte_offset, object)``;
  a torn LAST line (a crash while appending: no final newline, not valid JSON) is skipped
  with a warning, any other bad line raises (or is reported through ``on_bad``).
* :func:`write_json_atomic`: temp file + fsync + ``os.replace`` + directory fsync, so a
  reader sees the old or the new file, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .errors import DataError

__all__ = ["load_json", "array_entries", "iter_jsonl", "write_json_atomic", "fsync_dir"]

_Path = str | os.PathLike[str]


def load_json(path: _Path) -> Any:
    """Parse a JSON file. Raises DataError (missing/empty/truncated/invalid, with the line)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as e:
        raise DataError(path, f"cannot read file ({e.strerror or e})") from e
    if not raw.strip():
        raise DataError(path, "file is empty", line=1)
    try:
        return json.loads(raw)
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        what = "truncated JSON" if e.pos >= len(raw.rstrip()) else "invalid JSON"
        raise DataError(path, f"{what}: {e.msg} (column {e.colno})", line=e.lineno) from None


def array_entries(
    path: _Path,
    data: Any,
    tail: tuple[int, ...],
    on_bad: Callable[[DataError, int], None],
) -> tuple[np.ndarray, np.ndarray]:
    """Convert a JSON list of entries, each numeric with shape ``tail``, to one array.

    Args:
        path: the file ``data`` came from (for messages).
        data: the parsed JSON (must be a list).
        tail: the shape of one entry, e.g. (21, 3).
        on_bad: called with (DataError naming the entry, entry index) for every entry that is
            not a finite numeric array of shape ``tail``; it may raise to stop.

    Returns:
        (values (N, *tail) float32 with bad entries zeroed, ok (N,) bool).

    Raises:
        DataError: ``data`` is not a list.
    """
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list of entries; got {type(data).__name__}")
    n = len(data)
    try:
        arr = np.asarray(data, dtype=np.float32)
        fast = arr.shape == (n, *tail)
    except (ValueError, TypeError):
        fast = False
    if fast:
        ok = np.isfinite(arr.reshape(n, -1)).all(1)
    else:
        arr = np.zeros((n, *tail), np.float32)
        ok = np.zeros(n, bool)
        for i, item in enumerate(data):
            try:
                a = np.asarray(item, dtype=np.float32)
            except (ValueError, TypeError):
                continue
            if a.shape == tail:
                arr[i], ok[i] = a, bool(np.isfinite(a).all())
    for i in np.flatnonzero(~ok):
        item = data[int(i)]
        try:
            shape: Any = np.asarray(item, dtype=np.float32).shape
            why = "non-finite values" if shape == tail else f"shape {shape}"
        except (ValueError, TypeError):
            why = "a ragged or non-numeric value"
        on_bad(DataError(path, f"expected a numeric {tail} entry; got {why}", entry=int(i)),
               int(i))
        arr[i] = 0
    return arr, ok


def iter_jsonl(
    path: _Path,
    on_bad: Callable[[DataError], None] | None = None,
) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """Yield ``(line_number (1-based), byte_offset, object)`` for each line of a JSONL file.

    Blank lines are ignored. A torn last line (no trailing newline and not valid JSON) is
    skipped with a ``RuntimeWarning``. Any other line that is not a JSON object raises
    DataError naming the file and line, or is passed to ``on_bad`` when given.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    offset = 0
    lines = raw.split(b"\n")
    for no, line in enumerate(lines, start=1):
        start = offset
        offset += len(line) + 1
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object; got {type(obj).__name__}")
        except (ValueError, UnicodeDecodeError) as e:
            if no == len(lines):  # no newline after it: torn by a crash mid-append
                warnings.warn(f"{os.fspath(path)}, line {no}: skipping a torn last line "
                              f"({len(line)} bytes, no final newline)", RuntimeWarning,
                              stacklevel=2)
                return
            err = DataError(path, f"not a JSON object line ({e})", line=no)
            if on_bad is None:
                raise err from None
            on_bad(err)
            continue
        yield no, start, obj


def fsync_dir(path: _Path) -> None:
    """fsync a directory so a rename/creation inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: _Path, obj: Any, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON atomically: temp file in the same folder, fsync, os.replace.

    A crash at any point leaves either the previous file or the new one, never a partial file.
    Raises OSError (e.g. ENOSPC) after removing the temp file; the old file is untouched.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    data = json.dumps(obj, indent=indent).encode() + b"\n"
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(folder)
