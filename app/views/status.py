"""The status bar: source, model, device, frame rate, and the recording indicator."""

from __future__ import annotations

from PyQt6.QtWidgets import QLabel, QStatusBar, QWidget

__all__ = ["StatusBar", "FIELDS"]

#: Fields shown permanently, left to right (keys of ``AppState.status_fields``).
FIELDS = ("source", "model", "device", "fps")


class StatusBar(QStatusBar):
    """Permanent labels for :data:`FIELDS` plus a recording label."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: dict[str, QLabel] = {}
        for name in FIELDS:
            lab = QLabel()
            lab.setToolTip(name)
            lab.setStyleSheet("QLabel { padding: 0 8px; }")
            self.addPermanentWidget(lab, 1 if name in ("source", "model") else 0)
            self.labels[name] = lab
        self.recording = QLabel()
        self.recording.setStyleSheet("QLabel { color: #ff5555; font-weight: bold; }")
        self.recording.setVisible(False)
        self.addPermanentWidget(self.recording)

    def set_fields(self, values: dict[str, str]) -> None:
        for name, text in values.items():
            lab = self.labels.get(name)
            if lab is not None and lab.text() != text:
                lab.setText(text)

    def set_recording(self, text: str, problem: bool = False) -> None:
        """Show the recording line ("" hides it); ``problem`` highlights back-pressure."""
        self.recording.setText(text)
        self.recording.setVisible(bool(text))
        color = "#ffaa00" if problem else "#ff5555"
        self.recording.setStyleSheet(f"QLabel {{ color: {color}; font-weight: bold; }}")
