"""The annotation window (pytest-qt): drag a joint, mark done, undo/redo, auto-label with a
model in the background, depth-assisted 3D; the edits survive save and reload."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from app_helpers import StandInEstimator, hand_at

from handpose.app.annotate import AnnotationDocument
from handpose.app.labellers import ModelLabeller

pytestmark = pytest.mark.gui
WAIT = 60_000


@pytest.fixture
def ann(gui, qtbot, demo_session, tmp_path):
    from handpose.app.annotate_window import AnnotationWindow
    from handpose.app.state import AppState

    session = Path(shutil.copytree(demo_session, tmp_path / "s"))
    win = AnnotationWindow(AppState(), author="tester")
    win.confirm_close = False
    qtbot.addWidget(win)
    win.show()
    assert win.open_session(str(session))
    win.session = session
    return win  # qtbot closes it (and Qt deletes it: WA_DeleteOnClose)


def test_drag_done_undo_save_reload(ann, qtbot):
    ann.go(3)
    assert ann.info.text().startswith("frame 4/30") and "no label" in ann.info.text()
    ann.editor.drag_joint(8, 111.0, 42.0)  # what a finished mouse drag emits
    lab = ann.doc.label(3, 0)
    assert np.allclose(lab.uv[8], [111.0, 42.0])
    assert np.allclose(ann.editor.joints.uv[8], [111.0, 42.0])  # drawn where it was dropped
    ann.actions["done"].trigger()
    assert ann.doc.label(3, 0).done and ann.done_box.isChecked()
    ann.actions["undo"].trigger()
    assert not ann.doc.label(3, 0).done
    ann.actions["redo"].trigger()
    assert ann.doc.label(3, 0).done and "unsaved" in ann.info.text()
    ann.actions["next"].trigger()
    assert ann.pos == 4
    ann.actions["save"].trigger()
    assert not ann.doc.dirty
    again = AnnotationDocument(ann.session)
    assert again.label(3, 0) == ann.doc.label(3, 0) and again.label(3, 0).author == "tester"


def test_mouse_drag_moves_a_joint(ann, qtbot):
    """A real mouse drag on the joint handle, through Qt's event system."""
    from PyQt6.QtCore import QPoint, Qt
    from PyQt6.QtTest import QTest

    ann.actions["add"].trigger()  # the recorded prediction becomes the label
    before = ann.doc.label(0, 0).uv.copy()
    view = ann.editor.graphics
    vb = ann.editor.viewbox
    qtbot.waitUntil(lambda: view.isVisible(), timeout=WAIT)

    def to_widget(u: float, v: float) -> QPoint:
        scene = vb.mapViewToScene(__import__("pyqtgraph").Point(u, v))
        return view.mapFromScene(scene)

    start = to_widget(*before[12])
    end = to_widget(before[12][0] + 20, before[12][1] + 10)
    vp = view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for k in range(1, 6):
        QTest.mouseMove(vp, start + (end - start) * (k / 5))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    after = ann.doc.label(0, 0).uv
    moved = np.linalg.norm(after - before, axis=1)
    assert moved[12] > 5.0 and np.all(np.delete(moved, 12) == 0)


def test_auto_label_the_session_in_the_background(ann, qtbot):
    est = StandInEstimator(ann.session, delay_s=0.01)
    ann.labeller_factories["model"] = lambda: ModelLabeller(estimator=est)
    ann.doc.set_done(0, 0, True)  # a done frame is never overwritten
    done_label = ann.doc.label(0, 0)
    job = ann.auto_label("model", whole=True)
    qtbot.waitUntil(lambda: job.finished and ann.doc.label(29, 0) is not None, timeout=WAIT)
    assert ann.doc.label(0, 0) == done_label
    assert np.allclose(ann.doc.label(12, 0).joints3d, hand_at(12 / 30.0), atol=1e-6)
    ann.actions["undo"].trigger()  # one step undoes the whole auto-label
    assert ann.doc.label(12, 0) is None and ann.doc.label(0, 0) == done_label


def test_depth_3d_action(ann, qtbot):
    ann.go(10)
    ann.actions["add"].trigger()
    assert ann.actions["depth"].isEnabled()
    ann.actions["depth"].trigger()
    lab = ann.doc.label(10, 0)
    assert np.linalg.norm(lab.joints3d - hand_at(10 / 30.0), axis=1).max() < 0.015
    assert ", 3D" in ann.info.text()
