"""Errors of the data layer and the bookkeeping of skipped bad samples.

:class:`DataError` is what every reader raises for bad input on disk: a missing or truncated
file, a JSON/CSV that does not parse, label arrays of the wrong shape, an image that does not
decode. Its message always names the file, and the line (JSON/CSV/JSONL) or the entry
(the sample index inside a label array) where that is known, so a user can open the file and
fix it. It subclasses ``ValueError`` (bad input) so callers that catch ``ValueError`` keep
working.

:class:`SessionWriteError` is raised by the session writer when the disk refuses a write
(disk full, I/O error); it is an ``OSError`` that keeps the ``errno`` of the cause.

:class:`SkipLog` counts the samples a reader skipped with ``skip_bad=True`` and emits ONE
warning per reader (the first error, then the running count is in ``SkipLog.count``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

__all__ = ["DataError", "SessionWriteError", "SkipLog"]


class DataError(ValueError):
    """Bad data on disk, naming the file and (when known) the line or entry.

    Attributes:
        path: the offending file (str), or "" when not file-bound.
        line: 1-based line number in ``path`` (text formats), or None.
        entry: 0-based sample/entry index inside ``path`` (e.g. a JSON array), or None.
        reason: the bare reason without the location.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        reason: str,
        *,
        line: int | None = None,
        entry: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.entry = entry
        self.reason = reason
        where = self.path
        if line is not None:
            where += f", line {line}"
        if entry is not None:
            where += f", entry {entry}"
        super().__init__(f"{where}: {reason}")


class SessionWriteError(OSError):
    """The session writer could not write (disk full, I/O error); the session stays valid.

    ``errno`` is the cause's (e.g. ``errno.ENOSPC``); ``filename`` the file being written.
    ``last_frame`` is the index of the last complete frame in the session (-1 when none).
    """

    def __init__(self, err: int, message: str, filename: str, last_frame: int) -> None:
        super().__init__(err, message, filename)
        self.last_frame = last_frame


@dataclass
class SkipLog:
    """Bad samples skipped by one reader (``skip_bad=True``).

    Attributes:
        name: the reader's name for the warning text.
        count: how many samples were skipped so far (in this process).
        first: the first error, or None.
        indices: the dataset indices skipped at read time (not construction-time skips).
    """

    name: str
    count: int = 0
    first: DataError | None = None
    indices: set[int] = field(default_factory=set)

    def add(self, err: DataError, index: int | None = None) -> None:
        """Record one skipped sample; warn on the first one only."""
        self.count += 1
        if index is not None:
            self.indices.add(index)
        if self.first is None:
            self.first = err
            warnings.warn(
                f"{self.name}: skipping bad samples (skip_bad=True); first: {err}. "
                f"Further bad samples are counted silently in .skipped.count",
                RuntimeWarning,
                stacklevel=3,
            )
