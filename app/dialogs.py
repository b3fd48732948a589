"""Dialogs of the main window: messages, the model card, About, hand size, intrinsics.

Messages are non-modal (:func:`message`): the video keeps running while one is open, and a
test can find and close them. Dialogs that ask a question are modal (``exec``).
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

import numpy as np
from PyQt6.QtCore import QT_VERSION_STR, Qt
from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["message", "confirm_model", "about_text", "AboutDialog", "HandSizeDialog",
           "format_K"]

_ICONS = {"error": QMessageBox.Icon.Critical, "warning": QMessageBox.Icon.Warning,
          "info": QMessageBox.Icon.Information}


def message(parent: QWidget, kind: str, title: str, text: str, details: str = ""
            ) -> QMessageBox:
    """Show a non-modal message box (``kind``: "error", "warning", "info") and return it."""
    box = QMessageBox(_ICONS[kind], title, text, QMessageBox.StandardButton.Ok, parent)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    box.show()
    return box


def confirm_model(parent: QWidget, path: str, card: str) -> bool:
    """Ask whether to load the checkpoint whose model card is shown (modal)."""
    box = QMessageBox(QMessageBox.Icon.Question, "Load checkpoint",
                      f"Load {path}?", QMessageBox.StandardButton.Ok |
                      QMessageBox.StandardButton.Cancel, parent)
    box.setInformativeText(card)
    return box.exec() == QMessageBox.StandardButton.Ok


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def about_text(model_card: str, device: str) -> str:
    """The About text: versions, device, model."""
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    lines = [
        f"handpose {_version('handpose')}: real-time 3D hand pose estimation",
        "",
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}",
        f"torch {torch.__version__} (CUDA device: {cuda}, CPU threads {torch.get_num_threads()})",
        f"onnxruntime {_version('onnxruntime')}, mediapipe {_version('mediapipe')}, "
        f"opencv {_version('opencv-contrib-python')}",
        f"PyQt6 {_version('PyQt6')} (Qt {QT_VERSION_STR}), pyqtgraph {_version('pyqtgraph')}, "
        f"PyOpenGL {_version('PyOpenGL')}, numpy {_version('numpy')}",
        "",
        f"Model device/backend: {device or 'none'}",
        "",
        model_card or "No model loaded (File > Load checkpoint...).",
    ]
    return "\n".join(lines)


class AboutDialog(QDialog):
    """Help > About: versions, device and the model card (selectable text)."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About handpose")
        self.text = QPlainTextEdit(text)
        self.text.setReadOnly(True)
        self.text.setMinimumSize(560, 320)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.text)
        lay.addWidget(buttons)


class HandSizeDialog(QDialog):
    """Calibrate > Hand size: the user's hand length, or the default hand.

    ``result_length`` is the chosen length in metres (None = default hand) after ``Ok``;
    ``measure_requested`` is True when the user asked to measure from live frames.
    """

    def __init__(self, length_m: float | None, can_measure: bool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Hand size")
        self.result_length: float | None = length_m
        self.measure_requested = False
        self.spin = QDoubleSpinBox()
        self.spin.setRange(10.0, 30.0)
        self.spin.setDecimals(1)
        self.spin.setSuffix(" cm")
        self.spin.setValue(100.0 * (length_m or 0.182))
        info = QLabel("Hand length: from the wrist crease to the tip of the straight middle "
                      "finger. The metric size of a hand cannot be seen in an RGB image, so "
                      "distances are scaled by it (RGB-D sources measure it themselves).")
        info.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Hand length", self.spin)
        default = QPushButton("Use the default adult hand")
        default.clicked.connect(self._default)
        measure = QPushButton("Measure proportions from the next frames")
        measure.setEnabled(can_measure)
        measure.setToolTip("Hold a flat open hand facing the camera (needs a model)")
        measure.clicked.connect(self._measure)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok |
                                   QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(info)
        lay.addLayout(form)
        lay.addWidget(default)
        lay.addWidget(measure)
        lay.addWidget(buttons)

    def _ok(self) -> None:
        self.result_length = round(self.spin.value() / 100.0, 4)
        self.accept()

    def _default(self) -> None:
        self.result_length = None
        self.accept()

    def _measure(self) -> None:
        self.result_length = round(self.spin.value() / 100.0, 4)
        self.measure_requested = True
        self.accept()


def format_K(K: np.ndarray) -> str:
    """A camera matrix as three aligned rows."""
    return "\n".join("  ".join(f"{v:10.3f}" for v in row) for row in np.asarray(K))
