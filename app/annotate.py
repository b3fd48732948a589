"""The annotation document: a session's labels being edited, with undo/redo (Qt-free).

:class:`AnnotationDocument` opens a session folder (bad lines and a torn last line are
skipped, counted in :attr:`AnnotationDocument.skipped`), holds one :class:`HandLabel` per
(frame, hand slot), and changes them only through commands that go on the undo stack: a
joint drag, marking a frame done, an auto-label of one frame or of the whole session (one
step). :meth:`AnnotationDocument.save` appends the changed labels to ``labels.jsonl``
(``SessionWriter.append_label``; a later line overrides an earlier one, so the file keeps
the history); a label removed since the last save is written as an empty label ("looked at,
no such hand").

Positions (``pos``) index the readable frames in file order; ``labels.jsonl`` stores the
session frame ``index`` (``reader.records[pos].index``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from handpose.core.data.session_reader import SessionReader
from handpose.core.data.session_writer import SessionWriter
from handpose.core.handmodel import load_hand_model
from handpose.core.types import Frame, HandPose

from .depth_assist import lift_with_depth

__all__ = ["HandLabel", "AnnotationDocument", "template_uv"]

Key = tuple[int, int]  # (position, hand slot)


@dataclass(frozen=True)
class HandLabel:
    """An editable label of one hand (the fields of a ``labels.jsonl`` line).

    Attributes:
        uv: (21, 2) pixels or None; joints3d: (21, 3) metres or None; visible: (21,) bool
        or None; handedness: "left"/"right"/None; author, method; done: finished.
    """

    uv: np.ndarray | None = None
    joints3d: np.ndarray | None = None
    visible: np.ndarray | None = None
    handedness: str | None = None
    author: str = ""
    method: str = "manual"
    done: bool = False

    def __post_init__(self) -> None:
        # the precision labels.jsonl stores (session.py): what is edited is what is saved
        if self.uv is not None:
            object.__setattr__(self, "uv", np.round(np.asarray(self.uv, np.float64), 3))
        if self.joints3d is not None:
            object.__setattr__(self, "joints3d",
                               np.round(np.asarray(self.joints3d, np.float64), 6))
        if self.visible is not None:
            object.__setattr__(self, "visible", np.asarray(self.visible, bool))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HandLabel):
            return NotImplemented

        def same(a: Any, b: Any) -> bool:
            if a is None or b is None:
                return a is None and b is None
            return np.array_equal(np.asarray(a), np.asarray(b))

        return (same(self.uv, other.uv) and same(self.joints3d, other.joints3d)
                and same(self.visible, other.visible) and self.handedness == other.handedness
                and self.author == other.author and self.method == other.method
                and self.done == other.done)

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_hand(cls, hand: HandPose, author: str, method: str) -> HandLabel:
        return cls(uv=np.asarray(hand.uv, np.float64).copy(),
                   joints3d=np.asarray(hand.joints, np.float64).copy(),
                   handedness=hand.handedness, author=author, method=method)


def template_uv(width: int, height: int) -> np.ndarray:
    """(21, 2) pixels: the hand model's rest pose, fingers up, centred in the image."""
    rest = np.asarray(load_hand_model().rest_pose, np.float64)
    xy = np.stack([rest[:, 0], -rest[:, 1]], 1)  # hand +y (fingers) -> image up
    span = float(np.ptp(xy, axis=0).max())
    scale = 0.45 * min(width, height) / span
    c = (xy.max(0) + xy.min(0)) / 2
    return (xy - c) * scale + np.array([width / 2.0, height / 2.0])


class AnnotationDocument:
    """Labels of one session under edit (module docstring).

    Args:
        path: the session folder.
        author: recorded as the author of manual edits.

    Raises:
        DataError: not a readable session folder (the message names the file).
    """

    def __init__(self, path: str | os.PathLike[str], author: str = "annotator") -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.reader = SessionReader(path, skip_bad=True)
        self.warnings = [str(w.message) for w in caught]
        self.path = self.reader.path
        self.author = author
        self.skipped = self.reader.skipped.count
        pos_of = {r.index: i for i, r in enumerate(self.reader.records)}
        self.labels: dict[Key, HandLabel] = {}
        for (index, hand), lab in self.reader.labels.items():
            if index in pos_of and lab.has_pose:
                self.labels[(pos_of[index], hand)] = HandLabel(
                    lab.uv, lab.joints3d, lab.visible, lab.handedness, lab.author, lab.method,
                    lab.done)
        self._saved: dict[Key, HandLabel] = dict(self.labels)
        self._undo: list[tuple[str, dict[Key, tuple[HandLabel | None, HandLabel | None]]]] = []
        self._redo: list[tuple[str, dict[Key, tuple[HandLabel | None, HandLabel | None]]]] = []

    # -- reading ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.reader)

    def index_at(self, pos: int) -> int:
        """Session frame index of position ``pos``."""
        return self.reader.records[pos].index

    def frame(self, pos: int) -> Frame:
        """Decode the frame at ``pos`` (DataError if its files are bad)."""
        return self.reader.frame(pos)

    def has_depth(self, pos: int) -> bool:
        return self.reader.records[pos].depth is not None

    def predictions(self, pos: int) -> tuple[HandPose, ...]:
        """The hands recorded with the frame (empty when it was not processed or bad)."""
        try:
            return tuple(self.reader.poses(pos) or ())
        except ValueError:
            return ()

    def label(self, pos: int, hand: int = 0) -> HandLabel | None:
        return self.labels.get((pos, hand))

    def slots(self, pos: int) -> list[int]:
        """Hand slots labelled in frame ``pos``."""
        return sorted(h for (p, h) in self.labels if p == pos)

    def initial_label(self, pos: int, hand: int = 0) -> HandLabel:
        """What to edit in slot ``hand``: its label, else the recorded prediction, else the
        template hand centred in the frame."""
        lab = self.label(pos, hand)
        if lab is not None:
            return lab
        preds = self.predictions(pos)
        if hand < len(preds):
            return replace(HandLabel.from_hand(preds[hand], self.author, "manual"),
                           joints3d=None)
        w, h = self.frame(pos).size
        return HandLabel(uv=template_uv(w, h), author=self.author)

    def counts(self) -> tuple[int, int]:
        """(frames with a label, frames with every label done)."""
        frames: dict[int, bool] = {}
        for (p, _), lab in self.labels.items():
            frames[p] = frames.get(p, True) and lab.done
        return len(frames), sum(frames.values())

    # -- editing ---------------------------------------------------------------------------
    def _check(self, pos: int, hand: int) -> None:
        if not 0 <= pos < len(self):
            raise ValueError(f"pos must be in [0, {len(self)}); got {pos}")
        if not isinstance(hand, int) or not 0 <= hand < 4:
            raise ValueError(f"hand must be a slot in [0, 4); got {hand!r}")

    def apply(self, changes: dict[Key, HandLabel | None], text: str) -> bool:
        """Set several labels in one undo step (None removes a label); False if no change."""
        step: dict[Key, tuple[HandLabel | None, HandLabel | None]] = {}
        for (pos, hand), new in changes.items():
            self._check(pos, hand)
            old = self.labels.get((pos, hand))
            if old == new or (old is None and new is None):
                continue
            step[(pos, hand)] = (old, new)
        if not step:
            return False
        self._set({k: v[1] for k, v in step.items()})
        self._undo.append((text, step))
        self._redo.clear()
        return True

    def _set(self, values: dict[Key, HandLabel | None]) -> None:
        for k, v in values.items():
            if v is None:
                self.labels.pop(k, None)
            else:
                self.labels[k] = v

    def set_label(self, pos: int, hand: int, label: HandLabel | None, text: str = "edit"
                  ) -> bool:
        return self.apply({(pos, hand): label}, text)

    def move_joint(self, pos: int, hand: int, joint: int, uv: tuple[float, float]) -> bool:
        """Move one 2D joint (a manual edit; its 3D label, now stale, is dropped)."""
        if not 0 <= joint < 21:
            raise ValueError(f"joint must be in [0, 21); got {joint}")
        p = np.asarray(uv, np.float64)
        if p.shape != (2,) or not np.all(np.isfinite(p)):
            raise ValueError(f"uv must be two finite pixel coordinates; got {uv!r}")
        base = self.initial_label(pos, hand)
        assert base.uv is not None
        new_uv = base.uv.copy()
        new_uv[joint] = p
        return self.set_label(pos, hand, replace(base, uv=new_uv, joints3d=None,
                                                 author=self.author, method="manual"),
                              f"move joint {joint}")

    def set_done(self, pos: int, hand: int, done: bool) -> bool:
        base = self.initial_label(pos, hand)
        return self.set_label(pos, hand, replace(base, done=bool(done)),
                              "mark done" if done else "mark not done")

    def set_handedness(self, pos: int, hand: int, handedness: str) -> bool:
        if handedness not in ("left", "right"):
            raise ValueError(f"handedness must be 'left' or 'right'; got {handedness!r}")
        return self.set_label(pos, hand, replace(self.initial_label(pos, hand),
                                                 handedness=handedness), "handedness")

    def depth_3d(self, pos: int, hand: int) -> bool:
        """Give slot ``hand`` 3D joints from the frame's depth map (depth-assisted 3D).

        Raises:
            ValueError: the frame has no depth, or no valid reading under the hand.
        """
        frame = self.frame(pos)
        if frame.depth is None:
            raise ValueError(f"frame {self.index_at(pos)} has no depth map")
        base = self.initial_label(pos, hand)
        assert base.uv is not None
        joints, own = lift_with_depth(base.uv, frame.depth, frame.K)
        return self.set_label(pos, hand, replace(base, joints3d=joints, method=(
            base.method + "+depth" if not base.method.endswith("+depth") else base.method)),
            "depth 3D")

    def undo(self) -> bool:
        if not self._undo:
            return False
        text, step = self._undo.pop()
        self._set({k: v[0] for k, v in step.items()})
        self._redo.append((text, step))
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        text, step = self._redo.pop()
        self._set({k: v[1] for k, v in step.items()})
        self._undo.append((text, step))
        return True

    @property
    def undo_text(self) -> str:
        return self._undo[-1][0] if self._undo else ""

    @property
    def redo_text(self) -> str:
        return self._redo[-1][0] if self._redo else ""

    # -- saving ------------------------------------------------------------------------------
    def changed(self) -> list[Key]:
        """Keys whose label differs from the file."""
        keys = set(self.labels) | set(self._saved)
        return sorted(k for k in keys if self.labels.get(k) != self._saved.get(k))

    @property
    def dirty(self) -> bool:
        return bool(self.changed())

    def save(self) -> int:
        """Append the changed labels to ``labels.jsonl``; returns how many were written.

        Raises:
            SessionWriteError: the disk refused the write (labels written before it stay).
        """
        todo = self.changed()
        if not todo:
            return 0
        n = 0
        with SessionWriter(self.path, append=True) as w:
            for pos, hand in todo:
                lab = self.labels.get((pos, hand))
                index = self.index_at(pos)
                if lab is None:
                    w.append_label(index, hand=hand, author=self.author, method="removed")
                else:
                    w.append_label(index, uv=lab.uv, joints3d=lab.joints3d, visible=lab.visible,
                                   handedness=lab.handedness, hand=hand,
                                   author=lab.author or self.author, method=lab.method,
                                   done=lab.done)
                self._saved[(pos, hand)] = lab  # type: ignore[assignment]
                if lab is None:
                    self._saved.pop((pos, hand), None)
                n += 1
        return n
