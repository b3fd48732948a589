"""SessionReader (replay, annotation) and SessionDataset (training) over a session folder.

The reader indexes ``poses.jsonl`` at construction (index, timestamp, file names, byte offset
of each line; hand poses are parsed on demand) and merges ``labels.jsonl`` (a later line for
the same (frame, hand) overrides an earlier one). A torn last line of either file is skipped
with a warning (a crash while appending). Any other bad line raises :class:`DataError`
naming the file and line, or is skipped and counted with ``skip_bad=True``, as are frames
whose image is missing (checked at construction) or corrupt (found when decoded).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Frame, FrameResult, HandPose
from .base import HandDataset
from .errors import DataError, SkipLog
from .handcrop import DEFAULT_CROP_MARGIN
from .imageio import read_depth_png, read_rgb
from .jsonio import iter_jsonl, load_json
from .sample import HANDEDNESS, make_sample
from .session import INFO_FILE, LABELS_FILE, POSES_FILE, Label, SessionInfo, hand_from_json

__all__ = ["FrameRecord", "SessionReader", "SessionDataset"]


@dataclass(frozen=True)
class FrameRecord:
    """What ``poses.jsonl`` says about one recorded frame.

    Attributes:
        index: session frame index. timestamp: seconds. source_index: ``Frame.index``.
        rgb, depth: file paths (depth None when the frame has none).
        K: (3, 3) float64 intrinsics of this frame.
        processed: the line has a tracking result (``hands`` not null).
        line, offset: 1-based line number and byte offset in ``poses.jsonl``.
    """

    index: int
    timestamp: float
    source_index: int
    rgb: Path
    depth: Path | None
    K: np.ndarray
    processed: bool
    line: int
    offset: int


class SessionReader:
    """Read-only view of a session folder.

    Args:
        path: the session folder.
        skip_bad: skip (count, warn once) bad lines and frames whose image is missing
            instead of raising :class:`DataError`.

    Attributes:
        info: the :class:`SessionInfo`. records: the frames in file order.
        labels: dict (index, hand) -> the latest :class:`Label`. skipped: a SkipLog.
    """

    def __init__(self, path: str | os.PathLike[str], *, skip_bad: bool = False) -> None:
        self.path = Path(path)
        self.skip_bad = skip_bad
        self.skipped = SkipLog(f"SessionReader({self.path})")
        info_path = self.path / INFO_FILE
        try:
            self.info = SessionInfo.from_json(load_json(info_path))
        except DataError:
            raise
        except (ValueError, TypeError) as e:
            raise DataError(info_path, f"bad session.json ({e})") from None
        self.records: list[FrameRecord] = []
        poses = self.path / POSES_FILE
        if poses.exists():
            for no, off, obj in iter_jsonl(poses, on_bad=self._bad if skip_bad else None):
                try:
                    rec = self._record(no, off, obj)
                except (KeyError, ValueError, TypeError) as e:
                    self._bad(DataError(poses, f"bad frame line ({e})", line=no))
                    continue
                if not rec.rgb.is_file():
                    self._bad(DataError(rec.rgb, f"image of frame {rec.index} is missing "
                                        f"(poses.jsonl line {no})"))
                    continue
                self.records.append(rec)
        self._position = {r.index: i for i, r in enumerate(self.records)}
        self.labels: dict[tuple[int, int], Label] = {}
        labels = self.path / LABELS_FILE
        if labels.exists():
            for no, _, obj in iter_jsonl(labels, on_bad=self._bad if skip_bad else None):
                try:
                    lab = Label.from_json(obj)
                except (KeyError, ValueError, TypeError) as e:
                    self._bad(DataError(labels, f"bad label line ({e})", line=no))
                    continue
                self.labels[(lab.index, lab.hand)] = lab

    def _bad(self, err: DataError) -> None:
        if not self.skip_bad:
            raise err
        self.skipped.add(err)

    def _record(self, no: int, off: int, d: dict[str, Any]) -> FrameRecord:
        K = self.info.K if d.get("K") is None else np.asarray(d["K"], np.float64)
        if K is None or K.shape != (3, 3):
            raise ValueError("no (3, 3) K in the line or in session.json")
        return FrameRecord(
            index=int(d["index"]), timestamp=float(d.get("timestamp", 0.0)),
            source_index=int(d.get("source_index", d["index"])), rgb=self.path / d["rgb"],
            depth=None if d.get("depth") is None else self.path / d["depth"], K=K,
            processed=d.get("hands") is not None, line=no, offset=off,
        )

    @property
    def K(self) -> np.ndarray | None:
        """(3, 3) intrinsics of the session (``session.json``)."""
        return self.info.K

    def __len__(self) -> int:
        return len(self.records)

    def has_frame(self, index: int) -> bool:
        """True when session frame ``index`` is readable (recorded and not skipped)."""
        return index in self._position

    def position(self, index: int) -> int:
        """Position in :attr:`records` of session frame ``index`` (KeyError if absent)."""
        return self._position[index]

    def frame(self, i: int) -> Frame:
        """Decode the frame at position ``i`` (rgb, depth in metres, K, timestamp, index).

        Raises:
            DataError: its image or depth file is missing or corrupt.
        """
        r = self.records[i]
        rgb = read_rgb(r.rgb)
        depth = None
        if r.depth is not None:
            depth = read_depth_png(r.depth)
            if depth.shape != rgb.shape[:2]:
                raise DataError(r.depth, f"depth is {depth.shape[::-1]} but the image is "
                                f"{rgb.shape[1::-1]}")
        return Frame(rgb=rgb, K=r.K, depth=depth, timestamp=r.timestamp, index=r.index)

    def poses(self, i: int) -> tuple[HandPose, ...] | None:
        """The tracked hands of the frame at position ``i`` (None: not processed)."""
        r = self.records[i]
        if not r.processed:
            return None
        with open(self.path / POSES_FILE, "rb") as f:
            f.seek(r.offset)
            d = json.loads(f.readline())
        try:
            return tuple(hand_from_json(h) for h in d["hands"])
        except (KeyError, ValueError, TypeError) as e:
            raise DataError(self.path / POSES_FILE, f"bad hand in frame {r.index} ({e})",
                            line=r.line) from None

    def result(self, i: int) -> FrameResult | None:
        """The recorded :class:`FrameResult` of the frame at position ``i`` (None if none)."""
        hands = self.poses(i)
        if hands is None:
            return None
        with open(self.path / POSES_FILE, "rb") as f:
            f.seek(self.records[i].offset)
            timings = json.loads(f.readline()).get("timings_ms") or {}
        return FrameResult(frame=self.frame(i), hands=hands, timings_ms=dict(timings))

    def labels_for(self, index: int) -> list[Label]:
        """The current labels of session frame ``index``, by hand slot."""
        return [lab for (j, _), lab in sorted(self.labels.items()) if j == index]

    def __iter__(self) -> Iterator[Frame]:
        """Decode frames in order; with ``skip_bad`` a corrupt frame is skipped (counted)."""
        for i in range(len(self.records)):
            try:
                yield self.frame(i)
            except DataError as e:
                self._bad(e)


class SessionDataset(HandDataset):
    """A session as training data: one sample per labelled hand, optionally all frames.

    Args:
        path: the session folder.
        labelled_only: True -> only labels with 2D or 3D joints; False -> those plus every
            frame without such a label (unlabelled samples).
        done_only: keep only labels marked done.
        crop_size, crop_margin, skip_bad: see :class:`HandDataset`.

    Samples: ``rgb``, ``K`` (``has_K`` = session.json's K_calibrated), ``depth`` when recorded,
    ``timestamp``, ``path``; from the label ``uv`` (else the projection of ``joints3d``),
    ``joints3d``, ``visible``, ``handedness``.
    """

    source = "session"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        labelled_only: bool = True,
        done_only: bool = False,
        crop_size: int | None = None,
        crop_margin: float = DEFAULT_CROP_MARGIN,
        skip_bad: bool = False,
    ) -> None:
        super().__init__(crop_size=crop_size, crop_margin=crop_margin, skip_bad=skip_bad)
        with warnings.catch_warnings():
            if skip_bad:
                warnings.simplefilter("ignore", RuntimeWarning)
            self.reader = SessionReader(path, skip_bad=skip_bad)
        self.skipped.count += self.reader.skipped.count
        self.items: list[tuple[int, Label | None]] = []
        labelled: set[int] = set()
        for (index, _), lab in sorted(self.reader.labels.items()):
            if not lab.has_pose or (done_only and not lab.done) or \
                    not self.reader.has_frame(index):
                continue
            self.items.append((self.reader.position(index), lab))
            labelled.add(index)
        if not labelled_only:
            self.items += [(i, None) for i, r in enumerate(self.reader.records)
                           if r.index not in labelled]
            self.items.sort(key=lambda t: (t[0], t[1] is None))

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> dict[str, Any]:
        pos, lab = self.items[index]
        fr = self.reader.frame(pos)
        r = self.reader.records[pos]
        kw: dict[str, Any] = {}
        if lab is not None:
            kw = {"joints3d": lab.joints3d, "uv": lab.uv, "visible": lab.visible,
                  "handedness": HANDEDNESS[lab.handedness or "unknown"]}
        try:
            s = make_sample(fr.rgb, index=index, source=self.source, K=fr.K, depth=fr.depth,
                            timestamp=fr.timestamp, path=str(r.rgb), **kw)
        except ValueError as e:  # e.g. labelled joints behind the camera
            raise DataError(self.reader.path / LABELS_FILE, f"label of frame {r.index} "
                            f"unusable ({e})") from None
        s["has_K"] = bool(self.reader.info.K_calibrated)
        return s
