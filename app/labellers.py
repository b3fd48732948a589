"""Automatic labellers for the annotation tool (Qt-free): the current model, or MediaPipe.

A labeller maps one :class:`~handpose.core.types.Frame` to a list of
:class:`~handpose.app.annotate.HandLabel` (one per hand found, slot order):

* :class:`ModelLabeller`: the tracking pipeline with a checkpoint (its own
  ``HandPoseEstimator``, tracks reset per frame, no temporal smoothing): 2D joints, metric
  3D joints (from the depth map when the frame has one) and handedness. Method ``"model"``.
* :class:`MediaPipeLabeller`: MediaPipe Hands in static-image mode through
  :class:`~handpose.core.data.teacher.MediaPipeTeacher` (one hand per frame, handedness of
  the subject's hand): 2D joints and handedness; with depth also 3D joints by
  :func:`~handpose.app.depth_assist.lift_with_depth`. Method ``"mediapipe"``
  (``"mediapipe+depth"``).

:func:`label_frames` runs a labeller over a document's frames (the whole-session auto-label)
and returns the changes to apply as one undo step; frames whose labels are marked done are
left alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from handpose.core.data.errors import DataError
from handpose.core.types import Frame

from .annotate import AnnotationDocument, HandLabel
from .depth_assist import lift_with_depth

__all__ = ["Labeller", "ModelLabeller", "MediaPipeLabeller", "label_frames", "changes_for"]


class Labeller(Protocol):
    name: str

    def label(self, frame: Frame) -> list[HandLabel]: ...

    def close(self) -> None: ...


class ModelLabeller:
    """Labels from a checkpoint (module docstring).

    Args:
        checkpoint: ``.pt`` / ``.onnx``; None = the default checkpoint.
        device: "auto", "cpu", "cuda[:N]".
        estimator: an already built estimator to use instead (it is not closed here).

    Raises:
        ModelLoadError: the checkpoint cannot be loaded.
    """

    def __init__(self, checkpoint: str | os.PathLike[str] | None = None, device: str = "auto",
                 estimator: Any = None) -> None:
        if estimator is None:
            from .loaders import open_model

            estimator, info = open_model(checkpoint, device)
            self._owned = estimator
            self.name = info.checkpoint or "model"
        else:
            self._owned = None
            self.name = str(getattr(estimator, "name", "model"))
        self._est = estimator.with_options(smoothing=None) \
            if hasattr(estimator, "with_options") else estimator

    def label(self, frame: Frame) -> list[HandLabel]:
        if hasattr(self._est, "reset"):
            self._est.reset()
        result = self._est.process(frame)
        return [HandLabel.from_hand(h, self.name, "model") for h in result.hands]

    def close(self) -> None:
        if self._owned is not None and hasattr(self._owned, "close"):
            self._owned.close()


class MediaPipeLabeller:
    """Labels from MediaPipe Hands (module docstring).

    Args:
        teacher: a callable ``rgb -> TeacherPose | None`` (default: a
            :class:`~handpose.core.data.teacher.MediaPipeTeacher`, static images, full model).
    """

    def __init__(self, teacher: Any = None) -> None:
        if teacher is None:
            from handpose.core.data.teacher import MediaPipeTeacher

            teacher = MediaPipeTeacher(model_complexity=1)
        self._teacher = teacher
        self.name = str(getattr(teacher, "name", "mediapipe"))

    def label(self, frame: Frame) -> list[HandLabel]:
        found = self._teacher(frame.rgb)
        if found is None:
            return []
        uv = np.asarray(found.uv, np.float64)
        joints3d, method = None, "mediapipe"
        if frame.depth is not None:
            try:
                joints3d, _ = lift_with_depth(uv, frame.depth, frame.K)
                method = "mediapipe+depth"
            except ValueError:
                joints3d = None
        return [HandLabel(uv=uv, joints3d=joints3d, handedness=found.handedness,
                          author=self.name, method=method)]

    def close(self) -> None:
        if hasattr(self._teacher, "close"):
            self._teacher.close()


def changes_for(doc: AnnotationDocument, pos: int, hands: list[HandLabel]
                ) -> dict[tuple[int, int], HandLabel | None]:
    """The label changes that put ``hands`` into frame ``pos``: slots 0..n-1 get the new
    labels, other labelled slots are cleared. Nothing changes in a frame with a done label,
    nor when no hand was found (an existing label is kept)."""
    slots = doc.slots(pos)
    if not hands or any(lab.done for s in slots if (lab := doc.label(pos, s)) is not None):
        return {}
    out: dict[tuple[int, int], HandLabel | None] = {(pos, k): lab for k, lab in
                                                     enumerate(hands)}
    for s in slots:
        if s >= len(hands):
            out[(pos, s)] = None
    return out


def label_frames(doc: AnnotationDocument, labeller: Labeller, positions: list[int] | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None
                 ) -> dict[tuple[int, int], HandLabel | None]:
    """Run ``labeller`` over frames of ``doc`` (all by default); returns the changes.

    Frames that cannot be decoded are skipped. Stops early (returning what it has) when
    ``cancelled()`` turns True.
    """
    todo = list(range(len(doc))) if positions is None else list(positions)
    changes: dict[tuple[int, int], HandLabel | None] = {}
    for k, pos in enumerate(todo):
        if cancelled is not None and cancelled():
            break
        try:
            frame = doc.frame(pos)
        except DataError:
            continue
        changes.update(changes_for(doc, pos, labeller.label(frame)))
        if progress is not None:
            progress(k + 1, len(todo))
    return changes
