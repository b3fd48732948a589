"""The "Fine-tune on sessions" dialog: runs ``handpose-train`` in a subprocess (QProcess),
shows its progress and log, and offers to load the model it produced (the closed loop:
record -> annotate -> fine-tune -> track with the new model).

The plan, the command and the progress reading are Qt-free (:mod:`handpose.app.finetune`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QProcess, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .finetune import (
    RECIPES,
    FinetunePlan,
    SessionSummary,
    choose_recipe,
    prepare,
    read_progress,
    result_model,
    summarize_session,
    train_command,
)

__all__ = ["FinetuneDialog"]

_LOG_LINES = 2000


class FinetuneDialog(QDialog):
    """Plan, run and follow a fine-tuning run (module docstring).

    Args:
        state: the app state (folders).
        checkpoint: the current model, offered as the starting point (None: none).

    Signals:
        model_ready(str): the user chose to load the run's model (its path).
    """

    model_ready = pyqtSignal(str)

    def __init__(self, state: Any, checkpoint: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune on sessions")
        self.state = state
        self.checkpoint = checkpoint
        self.process: QProcess | None = None
        self.run_dir = ""
        self.output = ""
        self.model_path: Path | None = None
        self.offer_box: QMessageBox | None = None
        self.session = QLineEdit()
        self.session.setPlaceholderText("one or more session folders, separated by ;")
        browse = QPushButton("Add...")
        browse.clicked.connect(self._browse)
        self.session.editingFinished.connect(lambda: self.set_session(self.session.text()))
        row = QHBoxLayout()
        row.addWidget(self.session)
        row.addWidget(browse)
        self.summary = QLabel("Choose a recorded (and annotated) session.")
        self.summary.setWordWrap(True)
        self.recipe = QComboBox()
        for name, needs in RECIPES.items():
            self.recipe.addItem(f"{name} ({needs})", name)
        self.preset = QComboBox()
        self.preset.addItems(["cpu", "tiny", "paper"])
        self.steps = QSpinBox()
        self.steps.setRange(0, 1_000_000)
        self.steps.setSpecialValueText("preset's")
        self.steps.setValue(300)
        self.from_model = QCheckBox("start from the current model's encoder")
        self.from_model.setEnabled(bool(checkpoint))
        self.from_model.setChecked(bool(checkpoint))
        self.labelled = QLineEdit()
        self.labelled.setPlaceholderText("semihand: a labelled FreiHAND-layout folder")
        form = QFormLayout()
        form.addRow("Sessions", row)
        form.addRow("", self.summary)
        form.addRow("Recipe", self.recipe)
        form.addRow("Preset", self.preset)
        form.addRow("Steps", self.steps)
        form.addRow("", self.from_model)
        form.addRow("Labelled set", self.labelled)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(_LOG_LINES)
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel run")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.progress)
        lay.addWidget(self.log, 1)
        lay.addLayout(buttons)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._poll)
        self.resize(640, 480)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Session folder",
                                                self.state.recordings_dir or "")
        if path:
            self.set_session("; ".join([*self.sessions(), path]))

    def sessions(self) -> list[str]:
        """The chosen session folders."""
        return [p.strip() for p in self.session.text().split(";") if p.strip()]

    def set_session(self, paths: str) -> bool:
        """Choose the session(s) (``;``-separated); shows what they offer, picks the recipe."""
        self.session.setText(paths)
        chosen = self.sessions()
        if not chosen:
            return False
        try:
            sums = [summarize_session(p) for p in chosen]
        except (ValueError, OSError) as e:
            self.summary.setText(f"Not a usable session: {e}")
            return False
        total = SessionSummary("", sum(s.frames for s in sums), sum(s.labels_2d for s in sums),
                               sum(s.labels_3d for s in sums), sum(s.done for s in sums))
        many = f"{len(sums)} sessions (merged for the run): " if len(sums) > 1 else ""
        self.summary.setText(f"{many}{total.frames} frames; labels: {total.labels_2d} with 2D "
                             f"joints, {total.labels_3d} with 3D joints, {total.done} marked "
                             "done.")
        self.recipe.setCurrentIndex(self.recipe.findData(choose_recipe(total)))
        return True

    def plan(self) -> FinetunePlan:
        """The run the dialog describes (ValueError naming what is missing)."""
        chosen = self.sessions()
        if not chosen:
            raise ValueError("choose a session folder first")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        first = Path(chosen[0]).resolve()
        out = first.parent / "runs" / f"{first.name}-{stamp}"
        many = len(chosen) > 1
        return FinetunePlan(
            recipe=self.recipe.currentData(), session=str(out / "data") if many else chosen[0],
            out=str(out), preset=self.preset.currentText(), steps=self.steps.value() or None,
            checkpoint=self.checkpoint if self.from_model.isChecked() else None,
            labelled_root=self.labelled.text().strip(),
            merge_from=tuple(chosen) if many else ())

    def start(self, plan: FinetunePlan | None = None) -> bool:
        """Start the run (``plan`` default: :meth:`plan`); False with a message if it cannot."""
        if self.process is not None:
            return False
        try:
            plan = plan or self.plan()
            if plan.merge_from:
                self.log.appendPlainText(f"merging {len(plan.merge_from)} sessions into "
                                         f"{plan.session}")
            for path in plan.merge_from or (plan.session,):
                summarize_session(path)  # a folder that is no session fails here, named
            prepare(plan)
            cmd = train_command(plan)
        except (ValueError, OSError) as e:
            self.log.appendPlainText(f"cannot start: {e}")
            return False
        self.run_dir, self.output, self.model_path = plan.out, "", None
        self.log.appendPlainText("$ " + " ".join(cmd))
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        proc.readyReadStandardOutput.connect(lambda: self._read(proc, err=False))
        proc.readyReadStandardError.connect(lambda: self._read(proc, err=True))
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        self.process = proc
        proc.start(cmd[0], cmd[1:])
        self.progress.setRange(0, 0)  # busy until the total is known
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._timer.start(300)
        return True

    def _read(self, proc: QProcess, err: bool) -> None:
        data = proc.readAllStandardError() if err else proc.readAllStandardOutput()
        text = bytes(data.data()).decode("utf-8", "replace")
        self.output = (self.output + text)[-20000:]
        for line in text.replace("\r", "\n").splitlines():
            if line.strip():
                self.log.appendPlainText(line)

    def _poll(self) -> None:
        step, total = read_progress(self.run_dir, self.output)
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
            self.progress.setFormat(f"step {step} / {total}")

    def _error(self, err: QProcess.ProcessError) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self.log.appendPlainText("handpose-train could not be started (is handpose "
                                     "installed in this environment?)")
            self._done(-1)

    def _finished(self, code: int, _status: QProcess.ExitStatus) -> None:
        self._done(code)

    def _done(self, code: int) -> None:
        if self.process is None:
            return
        self._timer.stop()
        self._poll()
        self.process = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.model_path = result_model(self.run_dir) if code == 0 else None
        if self.model_path is None:
            self.progress.setValue(0)
            self.log.appendPlainText(f"the run ended with exit code {code}; see the log above")
            return
        self.progress.setValue(1)
        self.progress.setFormat("done")
        self.log.appendPlainText(f"new model: {self.model_path}")
        box = QMessageBox(QMessageBox.Icon.Question, "Fine-tuning done",
                          f"Load the new model?\n{self.model_path}",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.buttonClicked.connect(
            lambda b: self.accept_offer() if box.standardButton(b) ==
            QMessageBox.StandardButton.Yes else None)
        self.offer_box = box
        box.show()

    def accept_offer(self) -> None:
        """Load the run's model in the app (the offer's "Yes")."""
        if self.model_path is not None:
            self.model_ready.emit(str(self.model_path))
        if self.offer_box is not None:
            self.offer_box.close()

    def cancel(self) -> None:
        """Stop the run (terminate, then kill after 3 s)."""
        proc = self.process
        if proc is None:
            return
        proc.terminate()
        if not proc.waitForFinished(3000):
            proc.kill()

    def closeEvent(self, event: Any) -> None:  # noqa: N802
        self.cancel()
        super().closeEvent(event)
