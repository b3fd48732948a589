"""The annotation tool's window: step or scrub frames, drag joints, auto-label, mark done,
undo/redo, save to ``labels.jsonl``.

All edits go through :class:`~handpose.app.annotate.AnnotationDocument` (undo stack, save).
Auto-labelling runs in a background job (a model or MediaPipe takes a while to start; a whole
session takes minutes) and lands as ONE undo step; frames marked done are never overwritten.

Shortcuts: Left/Right previous/next frame, PgUp/PgDn -/+10, N next frame not done, D done,
A add the hand (from the prediction, else a template), Del remove it, Z depth-assisted 3D,
M / P auto-label the frame with the model / MediaPipe, Ctrl+Z / Ctrl+Shift+Z undo/redo,
Ctrl+S save, Ctrl+O open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QCloseEvent, QKeySequence
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from handpose.core.data.errors import DataError

from .annotate import AnnotationDocument
from .dialogs import message
from .labellers import MediaPipeLabeller, ModelLabeller, label_frames
from .views.joint_editor import JointEditor
from .workers import BackgroundJob

__all__ = ["AnnotationWindow"]


class AnnotationWindow(QMainWindow):
    """The annotation tool (module docstring).

    Args:
        state: the app state (device, folders).
        checkpoint: the model for "auto-label with the model" (None: the default one).
        author: recorded with manual edits.
    """

    def __init__(self, state: Any, checkpoint: str | None = None, author: str = "annotator",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("handpose annotation")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        self.state, self.checkpoint, self.author = state, checkpoint, author
        self.doc: AnnotationDocument | None = None
        self.pos, self.hand = 0, 0
        self.messages: list[QMessageBox] = []
        self.job: BackgroundJob | None = None
        self.confirm_close = True
        self._labellers: dict[str, Any] = {}
        self.labeller_factories: dict[str, Callable[[], Any]] = {
            "model": lambda: ModelLabeller(self.checkpoint, self.state.device),
            "mediapipe": MediaPipeLabeller,
        }
        self.editor = JointEditor()
        self.editor.joint_moved.connect(self._joint_moved)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self.go)
        self.info = QLabel()
        self.hand_box = QComboBox()
        self.hand_box.addItems(["hand 1", "hand 2"])
        self.hand_box.currentIndexChanged.connect(self._set_hand)
        self.side_box = QComboBox()
        self.side_box.addItems(["right", "left"])
        self.side_box.activated.connect(self._set_side)
        self.done_box = QCheckBox("done (D)")
        self.done_box.clicked.connect(self._set_done)
        row = QHBoxLayout()
        for w in (self.hand_box, self.side_box, self.done_box):
            row.addWidget(w)
        row.addWidget(self.slider, 1)
        row.addWidget(self.info)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.addWidget(self.editor, 1)
        lay.addLayout(row)
        self.setCentralWidget(central)
        self.actions: dict[str, QAction] = {}
        self._menus()
        self.resize(1000, 760)
        self.refresh()

    def _menus(self) -> None:
        def act(menu: Any, name: str, text: str, slot: Callable[[], Any],
                key: str | QKeySequence.StandardKey | None = None) -> None:
            a = QAction(text, self)
            if key is not None:
                a.setShortcut(QKeySequence(key))
            a.triggered.connect(lambda _=False: slot())
            menu.addAction(a)
            self.actions[name] = a

        bar = self.menuBar()
        m = bar.addMenu("&File")
        act(m, "open", "&Open session...", self.choose_session, "Ctrl+O")
        act(m, "save", "&Save labels", self.save, "Ctrl+S")
        act(m, "close", "&Close", self.close, "Ctrl+W")
        m = bar.addMenu("&Edit")
        act(m, "undo", "&Undo", self.undo, QKeySequence.StandardKey.Undo)
        act(m, "redo", "&Redo", self.redo, "Ctrl+Shift+Z")
        act(m, "add", "&Add this hand", self.add_hand, "A")
        act(m, "remove", "Re&move this hand's label", self.remove_hand, "Delete")
        act(m, "depth", "Depth-assisted &3D", self.depth_3d, "Z")
        act(m, "done", "Mark &done / not done", lambda: self._set_done(
            not self.done_box.isChecked()), "D")
        m = bar.addMenu("F&rame")
        act(m, "prev", "&Previous", lambda: self.go(self.pos - 1), "Left")
        act(m, "next", "&Next", lambda: self.go(self.pos + 1), "Right")
        act(m, "back10", "Back 10", lambda: self.go(self.pos - 10), "PgUp")
        act(m, "fwd10", "Forward 10", lambda: self.go(self.pos + 10), "PgDown")
        act(m, "next_todo", "Next frame &not done", self.next_not_done, "N")
        m = bar.addMenu("&Auto-label")
        act(m, "auto_model", "This frame with the &model", lambda: self.auto_label("model"),
            "M")
        act(m, "auto_mp", "This frame with Media&Pipe", lambda: self.auto_label("mediapipe"),
            "P")
        act(m, "auto_model_all", "Whole session with the model...",
            lambda: self.auto_label("model", whole=True))
        act(m, "auto_mp_all", "Whole session with MediaPipe...",
            lambda: self.auto_label("mediapipe", whole=True))

    # -- messages --------------------------------------------------------------------------
    def show_message(self, kind: str, title: str, text: str) -> QMessageBox:
        box = message(self, kind, title, text)
        self.messages.append(box)
        return box

    # -- session -----------------------------------------------------------------------------
    def choose_session(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open session",
                                                self.state.recordings_dir or "")
        if path:
            self.open_session(path)

    def open_session(self, path: str) -> bool:
        """Open a session folder; an unreadable one is reported and the tool stays as is."""
        if self.doc is not None and self.doc.dirty and not self._ask_save():
            return False
        try:
            doc = AnnotationDocument(path, self.author)
        except (DataError, OSError, ValueError) as e:
            self.show_message("error", "Cannot open the session", str(e))
            return False
        if len(doc) == 0:
            self.show_message("error", "Cannot open the session", f"{path}: no readable frames")
            return False
        self.doc, self.pos = doc, 0
        if doc.skipped:
            self.show_message("warning", "Session opened with problems",
                              f"{doc.skipped} bad lines or frames were skipped (e.g. a torn "
                              f"last line after a crash):\n" + "\n".join(doc.warnings[:3]))
        self.slider.blockSignals(True)
        self.slider.setRange(0, len(doc) - 1)
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.setWindowTitle(f"handpose annotation: {path}")
        self.refresh()
        return True

    # -- navigation and drawing ----------------------------------------------------------------
    def go(self, pos: int) -> None:
        if self.doc is None:
            return
        self.pos = max(0, min(int(pos), len(self.doc) - 1))
        if self.slider.value() != self.pos:
            self.slider.blockSignals(True)
            self.slider.setValue(self.pos)
            self.slider.blockSignals(False)
        self.refresh()

    def next_not_done(self) -> None:
        if self.doc is None:
            return
        for p in range(self.pos + 1, len(self.doc)):
            labs = [self.doc.label(p, s) for s in self.doc.slots(p)]
            if not labs or not all(lab is not None and lab.done for lab in labs):
                self.go(p)
                return

    def _set_hand(self, hand: int) -> None:
        self.hand = hand
        self.refresh()

    def refresh(self) -> None:
        doc = self.doc
        for name in ("save", "undo", "redo", "add", "remove", "depth", "done", "auto_model",
                     "auto_mp", "auto_model_all", "auto_mp_all"):
            self.actions[name].setEnabled(doc is not None)
        if doc is None:
            self.info.setText("File > Open session...")
            return
        try:
            frame = doc.frame(self.pos)
        except DataError as e:
            self.info.setText(f"frame {self.pos}: unreadable ({e})")
            return
        self.editor.show_frame(frame.rgb)
        lab = doc.label(self.pos, self.hand)
        preds = doc.predictions(self.pos)
        ref = preds[self.hand].uv if self.hand < len(preds) else None
        self.editor.show_hand(None if lab is None else lab.uv, ref)
        self.done_box.setChecked(bool(lab is not None and lab.done))
        if lab is not None and lab.handedness:
            self.side_box.setCurrentText(lab.handedness)
        labelled, done = doc.counts()
        what = "no label" if lab is None else f"{lab.method}" + (
            ", 3D" if lab.joints3d is not None else "") + (", done" if lab.done else "")
        self.info.setText(f"frame {self.pos + 1}/{len(doc)} (index {doc.index_at(self.pos)}), "
                          f"{what}{', depth' if doc.has_depth(self.pos) else ''} | labelled "
                          f"{labelled}, done {done}{' | unsaved' if doc.dirty else ''}")
        self.actions["undo"].setText(f"Undo {doc.undo_text}".strip())
        self.actions["redo"].setText(f"Redo {doc.redo_text}".strip())
        self.actions["depth"].setEnabled(doc.has_depth(self.pos))

    # -- edits ---------------------------------------------------------------------------------
    def _joint_moved(self, joint: int, u: float, v: float) -> None:
        if self.doc is not None:
            self.doc.move_joint(self.pos, self.hand, joint, (u, v))
            self.refresh()

    def _set_done(self, done: bool) -> None:
        if self.doc is not None:
            self.doc.set_done(self.pos, self.hand, bool(done))
            self.refresh()

    def _set_side(self, _index: int = 0) -> None:
        if self.doc is not None and self.doc.label(self.pos, self.hand) is not None:
            self.doc.set_handedness(self.pos, self.hand, self.side_box.currentText())
            self.refresh()

    def add_hand(self) -> None:
        if self.doc is not None and self.doc.label(self.pos, self.hand) is None:
            self.doc.set_label(self.pos, self.hand, self.doc.initial_label(self.pos, self.hand),
                               "add hand")
            self.refresh()

    def remove_hand(self) -> None:
        if self.doc is not None:
            self.doc.set_label(self.pos, self.hand, None, "remove hand")
            self.refresh()

    def depth_3d(self) -> None:
        if self.doc is None:
            return
        try:
            self.doc.depth_3d(self.pos, self.hand)
        except (ValueError, DataError) as e:
            self.show_message("error", "Depth-assisted 3D", str(e))
        self.refresh()

    def undo(self) -> None:
        if self.doc is not None and self.doc.undo():
            self.refresh()

    def redo(self) -> None:
        if self.doc is not None and self.doc.redo():
            self.refresh()

    def save(self) -> int:
        """Write the changed labels; returns how many (0 and a message on failure)."""
        if self.doc is None:
            return 0
        try:
            n = self.doc.save()
        except OSError as e:
            self.show_message("error", "Cannot save the labels", str(e))
            return 0
        self.statusBar().showMessage(f"Saved {n} labels to {self.doc.path / 'labels.jsonl'}",
                                     5000)
        self.refresh()
        return n

    # -- auto-labelling -------------------------------------------------------------------------
    def auto_label(self, kind: str, whole: bool = False) -> BackgroundJob | None:
        """Label this frame (or every frame) with "model" or "mediapipe" in the background."""
        doc = self.doc
        if doc is None or (self.job is not None and not self.job.finished):
            return None
        positions = list(range(len(doc))) if whole else [self.pos]
        factories, cache = self.labeller_factories, self._labellers

        def run(progress: Any, cancelled: Any) -> Any:
            if kind not in cache:
                cache[kind] = factories[kind]()
            return label_frames(doc, cache[kind], positions, progress, cancelled)

        job = BackgroundJob(run, name="auto-label")
        job.progress.connect(lambda d, t: self.statusBar().showMessage(
            f"auto-labelling: {d} / {t} frames"))
        job.done.connect(lambda changes, w=whole, k=kind: self._labelled(changes, k, w))
        job.failed.connect(lambda msg: self.show_message("error", "Auto-label failed", msg))
        self.job = job.start()
        return job

    def _labelled(self, changes: dict[Any, Any], kind: str, whole: bool) -> None:
        if self.doc is None:
            return
        text = f"auto-label {'session' if whole else 'frame'} ({kind})"
        self.doc.apply(changes, text)
        n = len({p for p, _ in changes})
        self.statusBar().showMessage(
            f"{text}: {n} frames changed" if changes or whole else
            f"{kind}: no hand found in this frame (or its label is marked done)", 5000)
        self.refresh()

    # -- closing ---------------------------------------------------------------------------------
    def _ask_save(self) -> bool:
        """Unsaved edits: save, discard or cancel (modal); False = cancel."""
        ans = QMessageBox.question(
            self, "Unsaved labels", "Save the changed labels first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard |
            QMessageBox.StandardButton.Cancel)
        if ans == QMessageBox.StandardButton.Cancel:
            return False
        if ans == QMessageBox.StandardButton.Save:
            return self.save() > 0 or not (self.doc and self.doc.dirty)
        return True

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.confirm_close and self.doc is not None and self.doc.dirty and \
                not self._ask_save():
            event.ignore()
            return
        if self.job is not None:
            self.job.cancel()
            self.job.wait(5.0)
        for lab in self._labellers.values():
            try:
                lab.close()
            except Exception:
                pass
        super().closeEvent(event)

