"""The replay controls under the video: play/pause, a seek slider and the frame position.

Shown for seekable sources (videos, folders, sessions, the demo). ``seek_requested(index)``
is emitted when the user moves the slider (drag, click, keys), never when the position is
updated from the playing replay.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

__all__ = ["ReplayBar"]


class ReplayBar(QWidget):
    """Play/pause, slider, position label."""

    play_clicked = pyqtSignal()
    seek_requested = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.button = QPushButton("Pause")
        self.button.setFixedWidth(70)
        self.button.clicked.connect(self.play_clicked)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.sliderMoved.connect(self.seek_requested)
        self.slider.actionTriggered.connect(self._action)
        self.label = QLabel("0 / 0")
        self.label.setMinimumWidth(90)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addWidget(self.button)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.label)

    def _action(self, action: int) -> None:
        if action != QSlider.SliderAction.SliderMove.value:  # clicks and keys; drags above
            self.seek_requested.emit(self.slider.sliderPosition())

    def set_length(self, length: int | None) -> None:
        """Configure for a replay of ``length`` frames (None hides the bar)."""
        self.setVisible(length is not None)
        if length is not None:
            self.slider.setRange(0, max(0, length - 1))

    def set_position(self, shown: int, length: int) -> None:
        """The frame at position ``shown`` (0-based) of ``length`` is on screen."""
        if not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(shown)
            self.slider.blockSignals(False)
        self.label.setText(f"{shown + 1} / {length}")

    def set_paused(self, paused: bool) -> None:
        self.button.setText("Play" if paused else "Pause")
