"""Qt glue over the core frame sources: choosing a source and opening it off the GUI thread.

:class:`SourceDialog` (File > Open source...) offers every kind of source of
:mod:`handpose.core.data.sources` and returns a spec string: a webcam (device and resolution
from :func:`~handpose.core.data.sources.list_cameras`), a video file, an image folder, an
RGB-D folder or camera (RealSense, Azure Kinect), a recorded session, or the demo.
:func:`spec_for_path` builds the spec of a file or folder picked in a file dialog.
:func:`open_source_job` opens a spec in a :class:`~handpose.app.workers.BackgroundJob` (a
camera may take seconds to open; the GUI never waits for it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from .loaders import open_app_source
from .workers import BackgroundJob

__all__ = ["SourceDialog", "spec_for_path", "open_source_job", "VIDEO_FILTER", "KINDS"]

VIDEO_FILTER = "Videos and images (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.jpg *.jpeg *.png " \
               "*.bmp);;All files (*)"
#: (kind, label) of the dialog's choices, in order.
KINDS = (("camera", "Webcam"), ("video", "Video file"), ("folder", "Image folder"),
         ("rgbd", "RGB-D folder"), ("realsense", "RealSense camera"),
         ("kinect", "Azure Kinect"), ("session", "Recorded session"), ("demo", "Demo"))
_FOLDER_KINDS = ("folder", "rgbd", "session")


def spec_for_path(kind: str, path: str) -> str:
    """The spec of a picked file or folder: ``video:PATH``, ``folder:DIR``, ...

    Raises:
        ValueError: an unknown kind or an empty path.
    """
    if kind not in ("video", *_FOLDER_KINDS):
        raise ValueError(f"kind must be video, folder, rgbd or session; got {kind!r}")
    if not path:
        raise ValueError("no path chosen")
    return f"{kind}:{path}"


def open_source_job(spec: str, K: np.ndarray | None = None) -> BackgroundJob:
    """A job (not started: connect, then ``start()``) that opens ``spec``; ``done`` carries
    ``(spec, source, SourceInfo)``."""

    def run(progress: Any, cancelled: Any) -> Any:
        source, info = open_app_source(spec, K)
        if cancelled():
            source.close()
            raise RuntimeError("cancelled")
        return spec, source, info

    return BackgroundJob(run, name="open-source")


class SourceDialog(QDialog):
    """Pick any source; :attr:`spec` holds the chosen spec after ``accept``.

    Args:
        cameras: ``list_cameras()`` result (index, resolutions) to offer.
        start_dir: where the file pickers start.
    """

    def __init__(self, cameras: list[Any], start_dir: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open source")
        self.spec = ""
        self.start_dir = start_dir
        self.radios: dict[str, QRadioButton] = {}
        form = QFormLayout()
        for kind, label in KINDS:
            self.radios[kind] = QRadioButton(label)
        self.camera = QComboBox()
        self.resolution = QComboBox()
        self._cameras = list(cameras)
        for c in self._cameras:
            self.camera.addItem(f"camera {c.index} ({c.backend})", c.index)
        if not self._cameras:
            self.camera.addItem("no camera found", None)
            self.radios["camera"].setEnabled(False)
        self.camera.currentIndexChanged.connect(self._fill_resolutions)
        self._fill_resolutions()
        cam_row = QHBoxLayout()
        cam_row.addWidget(self.camera)
        cam_row.addWidget(self.resolution)
        form.addRow(self.radios["camera"], cam_row)
        self.paths: dict[str, QLineEdit] = {}
        for kind in ("video", *_FOLDER_KINDS):
            edit = QLineEdit()
            browse = QPushButton("Browse...")
            browse.clicked.connect(lambda _=False, k=kind: self._browse(k))
            row = QHBoxLayout()
            row.addWidget(edit)
            row.addWidget(browse)
            edit.textEdited.connect(lambda _t, k=kind: self.radios[k].setChecked(True))
            self.paths[kind] = edit
            form.addRow(self.radios[kind], row)
        form.addRow(self.radios["realsense"])
        form.addRow(self.radios["kinect"])
        form.addRow(self.radios["demo"])
        (self.radios["camera"] if self._cameras else self.radios["demo"]).setChecked(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open |
                                   QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def _fill_resolutions(self) -> None:
        self.resolution.clear()
        index = self.camera.currentData()
        info = next((c for c in self._cameras if c.index == index), None)
        self.resolution.addItem("default", None)
        for w, h in (info.resolutions if info is not None else ()):
            self.resolution.addItem(f"{w} x {h}", f"{w}x{h}")

    def _browse(self, kind: str) -> None:
        if kind == "video":
            path, _ = QFileDialog.getOpenFileName(self, "Video file", self.start_dir,
                                                  VIDEO_FILTER)
        else:
            path = QFileDialog.getExistingDirectory(self, dict(KINDS)[kind], self.start_dir)
        if path:
            self.paths[kind].setText(path)
            self.radios[kind].setChecked(True)

    def chosen_spec(self) -> str:
        """The spec of the current choice ("" when incomplete)."""
        kind = next(k for k, r in self.radios.items() if r.isChecked())
        if kind == "camera":
            index = self.camera.currentData()
            if index is None:
                return ""
            res = self.resolution.currentData()
            return f"camera:{index}" + (f"@{res}" if res else "")
        if kind in self.paths:
            text = self.paths[kind].text().strip()
            return spec_for_path(kind, text) if text else ""
        return kind

    def _accept(self) -> None:
        self.spec = self.chosen_spec()
        if self.spec:
            self.accept()
