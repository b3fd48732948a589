"""The annotation document (no Qt): edits, undo/redo, save and reload, depth-assisted 3D,
auto-labellers, and sessions left by a crash."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from app_helpers import K, StandInEstimator, hand_at

from handpose.app.annotate import AnnotationDocument, HandLabel, template_uv
from handpose.app.depth_assist import joint_depths, lift_with_depth
from handpose.app.labellers import MediaPipeLabeller, ModelLabeller, changes_for, label_frames
from handpose.core.data.errors import DataError
from handpose.core.data.session_reader import SessionReader
from handpose.core.data.teacher import TeacherPose
from handpose.core.geometry.camera import project


@pytest.fixture
def session(demo_session: Path, tmp_path: Path) -> Path:
    """An editable copy of the synthetic session."""
    return Path(shutil.copytree(demo_session, tmp_path / "s"))


def test_edits_survive_save_and_reload(session):
    doc = AnnotationDocument(session, author="ann")
    assert doc.labels == {} and not doc.dirty
    assert doc.move_joint(4, 0, 8, (100.5, 50.25))  # from the recorded prediction
    lab = doc.label(4, 0)
    pred = doc.predictions(4)[0]
    assert np.allclose(lab.uv[8], [100.5, 50.25]) and np.allclose(lab.uv[:8], pred.uv[:8])
    assert lab.joints3d is None and lab.method == "manual" and lab.handedness == "right"
    doc.set_done(4, 0, True)
    doc.move_joint(9, 1, 0, (10.0, 20.0))  # a second hand slot
    doc.set_handedness(9, 1, "left")
    assert doc.dirty and doc.counts() == (2, 1)
    assert doc.save() == 2 and not doc.dirty
    again = AnnotationDocument(session)
    assert again.labels == doc.labels
    assert again.label(4, 0).done and again.label(9, 1).handedness == "left"
    assert again.label(4, 0).author == "ann"
    assert doc.save() == 0  # nothing changed since


def test_undo_redo(session):
    doc = AnnotationDocument(session)
    doc.move_joint(0, 0, 3, (1.0, 2.0))
    first = doc.label(0, 0)
    doc.move_joint(0, 0, 3, (5.0, 6.0))
    assert doc.undo_text == "move joint 3"
    assert doc.undo() and doc.label(0, 0) == first
    assert doc.undo() and doc.label(0, 0) is None
    assert not doc.undo()
    assert doc.redo() and doc.label(0, 0) == first
    doc.set_done(0, 0, True)  # a new edit clears the redo stack
    assert not doc.redo()


def test_removing_a_saved_label_is_saved(session):
    doc = AnnotationDocument(session)
    doc.move_joint(2, 0, 0, (3.0, 4.0))
    doc.save()
    doc.set_label(2, 0, None, "remove")
    assert doc.changed() == [(2, 0)]
    doc.save()
    assert AnnotationDocument(session).label(2, 0) is None
    lines = (session / "labels.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"method":"removed"' in lines[1]


def test_template_when_nothing_was_predicted(tmp_path):
    from handpose.core.data.session_writer import SessionWriter
    from handpose.core.types import Frame

    with SessionWriter(tmp_path / "s", K=K) as w:
        w.append_frame(Frame(rgb=np.zeros((240, 320, 3), np.uint8), K=K))
    doc = AnnotationDocument(tmp_path / "s")
    lab = doc.initial_label(0, 0)
    assert np.allclose(lab.uv, template_uv(320, 240))
    assert np.all(lab.uv >= 0) and np.all(lab.uv[:, 0] < 320) and np.all(lab.uv[:, 1] < 240)


def test_depth_assisted_3d_recovers_the_hand(session):
    doc = AnnotationDocument(session)
    doc.set_label(5, 0, doc.initial_label(5, 0))
    doc.depth_3d(5, 0)
    lab = doc.label(5, 0)
    truth = hand_at(5 / 30.0)
    err = np.linalg.norm(lab.joints3d - truth, axis=1)
    assert err.max() < 0.015 and lab.method.endswith("+depth")  # bones drawn at mean depth
    doc.save()
    assert np.allclose(AnnotationDocument(session).label(5, 0).joints3d, lab.joints3d,
                       atol=1e-6)


def test_depth_assist_exact_on_a_plane_and_fills_holes():
    depth = np.full((60, 80), 0.7)
    uv = np.stack([np.linspace(10, 70, 21), np.linspace(5, 55, 21)], 1)
    pts, own = lift_with_depth(uv, depth, K)
    assert own.all() and np.allclose(pts[:, 2], 0.7)
    assert np.allclose(project(pts, K), uv, atol=1e-9)
    depth[int(round(uv[6, 1])) - 3:int(round(uv[6, 1])) + 4,
          int(round(uv[6, 0])) - 3:int(round(uv[6, 0])) + 4] = 0.0  # a hole under joint 6
    depth[int(round(uv[8, 1])), int(round(uv[8, 0]))] = np.nan  # one NaN: median of the rest
    far = uv[12].round().astype(int)
    depth[far[1] - 2:far[1] + 3, far[0] - 2:far[0] + 3] = 3.0  # background behind joint 12
    z, own = joint_depths(uv, depth)
    assert not own[6] and z[6] == 0.7  # its parent's (joint 5)
    assert own[8] and z[8] == 0.7
    assert not own[12] and z[12] == 0.7  # an outlier: parent's depth instead
    with pytest.raises(ValueError, match="no valid depth"):
        joint_depths(uv, np.zeros((60, 80)))


def test_torn_last_lines_are_skipped_and_repaired_on_save(session):
    n = len(SessionReader(session))
    with open(session / "poses.jsonl", "ab") as f:
        f.write(b'{"index": 30, "timestamp": 1.0, "rgb": "rgb/0000')  # a crash mid-append
    with open(session / "labels.jsonl", "ab") as f:
        f.write(b'{"index": 3, "hand"')
    doc = AnnotationDocument(session)
    assert len(doc) == n and doc.labels == {}
    assert any("torn" in w for w in doc.warnings)
    doc.move_joint(3, 0, 0, (1.0, 1.0))
    doc.save()  # the writer cuts the torn lines before appending
    again = AnnotationDocument(session)
    assert again.warnings == [] and again.label(3, 0) == doc.label(3, 0)


def test_not_a_session_is_a_clear_error(tmp_path):
    (tmp_path / "session.json").write_text("{not json")
    with pytest.raises(DataError, match="session.json"):
        AnnotationDocument(tmp_path)


class FakeTeacher:
    """MediaPipe stand-in: the true hand's 2D joints of the frame it is shown."""

    name = "fake-mediapipe"

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self, rgb: np.ndarray) -> TeacherPose | None:
        uv = np.asarray(project(hand_at(self.t), K))
        return TeacherPose(uv, np.zeros(21), 0.9, "right")


def test_mediapipe_labeller_with_depth_gives_3d(session):
    doc = AnnotationDocument(session)
    teacher = FakeTeacher()
    teacher.t = 6 / 30.0
    [lab] = MediaPipeLabeller(teacher).label(doc.frame(6))
    assert lab.method == "mediapipe+depth" and lab.author == "fake-mediapipe"
    assert np.linalg.norm(lab.joints3d - hand_at(6 / 30.0), axis=1).max() < 0.015


def test_model_labeller_and_whole_session_auto_label(session):
    doc = AnnotationDocument(session)
    doc.set_label(2, 0, HandLabel(uv=np.zeros((21, 2)), done=True))  # done: left alone
    labeller = ModelLabeller(estimator=StandInEstimator(session))
    seen = []
    changes = label_frames(doc, labeller, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (30, 30) and (2, 0) not in changes and len(changes) == 29
    assert doc.apply(changes, "auto-label session")
    lab = doc.label(7, 0)
    assert lab.method == "model" and np.allclose(lab.joints3d, hand_at(7 / 30.0), atol=1e-6)
    assert doc.undo() and doc.label(7, 0) is None and doc.label(2, 0).done  # one undo step
    assert changes_for(doc, 7, []) == {}  # nothing found: an existing label is kept
    stopped = label_frames(doc, labeller, cancelled=lambda: True)
    assert stopped == {}


def test_real_mediapipe_labels_a_real_rgbd_frame(rgbd_dir, tmp_path):
    """The MediaPipe path for real: a real RGB-D frame into a session, auto-labelled."""
    import json

    from handpose.core.data.imageio import read_depth_png, read_rgb
    from handpose.core.data.session_writer import SessionWriter
    from handpose.core.types import Frame

    meta = json.loads((rgbd_dir / "frames.json").read_text())["frames"][0]
    rgb = read_rgb(rgbd_dir / meta["rgb"])
    depth = read_depth_png(rgbd_dir / meta["depth"])
    Kr = np.asarray(meta["K"], np.float64)
    with SessionWriter(tmp_path / "real", K=Kr) as w:
        w.append_frame(Frame(rgb=rgb, K=Kr, depth=depth))
    doc = AnnotationDocument(tmp_path / "real")
    labeller = MediaPipeLabeller()
    try:
        changes = label_frames(doc, labeller)
    finally:
        labeller.close()
    assert (0, 0) in changes
    lab = changes[(0, 0)]
    truth = np.asarray(meta["joints_m"], np.float64)
    err2d = np.linalg.norm(lab.uv - np.asarray(project(truth, Kr)), axis=1)
    assert np.median(err2d) < 25.0  # pixels, 640 x 480: MediaPipe found this hand
    assert lab.joints3d is not None
    assert np.median(np.linalg.norm(lab.joints3d - truth, axis=1)) < 0.05
