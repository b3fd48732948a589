"""The video with its 2D overlay: bones coloured by finger, joints coloured by confidence,
a label with handedness, track ID and confidence per hand, and a banner for messages.

Items are created once per hand slot and updated with ``setData`` / ``setPos``; a slot
without a hand is hidden. Poses stored in a replayed session (recorded predictions, or its
labels) are drawn dashed and tagged so they cannot be mistaken for live model output.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from handpose.core.skeleton import FINGERS
from handpose.core.types import HandPose

from ..colors import FINGER_COLORS, HAND_LABEL_COLORS, confidence_colors, to_255

__all__ = ["VideoView", "finger_polylines", "confidence_brushes"]


_BRUSH_STEPS = 10
_brushes: list[pg.QtGui.QBrush] = []


def confidence_brushes(confidence: np.ndarray) -> list[pg.QtGui.QBrush]:
    """One brush per joint, by confidence quantised to 0.1 (shared brush objects, so
    pyqtgraph's symbol cache is reused frame after frame)."""
    if not _brushes:
        cols = to_255(confidence_colors(np.linspace(0.0, 1.0, _BRUSH_STEPS + 1)))
        _brushes.extend(pg.mkBrush(*c) for c in cols)
    c = np.clip(np.nan_to_num(np.asarray(confidence, np.float64)), 0.0, 1.0)
    return [_brushes[k] for k in np.rint(c * _BRUSH_STEPS).astype(int)]


def finger_polylines(uv: np.ndarray) -> list[np.ndarray]:
    """Per finger the (5, 2) polyline wrist -> four joints (pixels)."""
    return [uv[[0, *f]] for f in FINGERS]


class _HandOverlay:
    """The items of one hand slot."""

    def __init__(self, vb: pg.ViewBox) -> None:
        self.fingers = []
        for f in range(5):
            item = pg.PlotCurveItem(pen=pg.mkPen(tuple(to_255(FINGER_COLORS[f])), width=3))
            vb.addItem(item)
            self.fingers.append(item)
        self.joints = pg.ScatterPlotItem(size=9, pen=pg.mkPen((20, 20, 20), width=1))
        vb.addItem(self.joints)
        self.label = pg.TextItem(anchor=(0.5, 0.0), fill=pg.mkBrush(0, 0, 0, 150))
        vb.addItem(self.label)
        self._style = ""
        self.hide()

    def hide(self) -> None:
        for item in (*self.fingers, self.joints, self.label):
            item.setVisible(False)

    def show(self, hand: HandPose, origin: str) -> None:
        uv = np.asarray(hand.uv, np.float64)
        stored = origin in ("recorded", "labels")
        if origin != self._style:
            for f, item in enumerate(self.fingers):
                item.setPen(pg.mkPen(tuple(to_255(FINGER_COLORS[f])), width=3,
                                     style=Qt.PenStyle.DashLine if stored else
                                     Qt.PenStyle.SolidLine))
            self._style = origin
        for line, item in zip(finger_polylines(uv), self.fingers):
            item.setData(line[:, 0], line[:, 1])
            item.setVisible(True)
        self.joints.setData(pos=uv, brush=confidence_brushes(hand.confidence))
        self.joints.setVisible(True)
        conf = float(np.mean(hand.confidence))
        side = "L" if hand.handedness == "left" else "R"
        tag = {"recorded": "  (recorded)", "labels": "  (label)"}.get(origin, "")
        text = f"{side} #{hand.track_id}  {conf:.2f}{tag}"
        self.label.setText(text, color=HAND_LABEL_COLORS[hand.handedness])
        lowest = uv[np.argmax(uv[:, 1])]  # below the hand
        self.label.setPos(float(uv[:, 0].mean()), float(lowest[1]) + 8.0)
        self.label.setVisible(True)


class VideoView(QWidget):
    """The video and its overlay (module docstring).

    Args:
        max_hands: hand slots (items created up front).
    """

    def __init__(self, max_hands: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground((22, 24, 28))
        self.viewbox = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.viewbox.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image)
        self.slots = [_HandOverlay(self.viewbox) for _ in range(max_hands)]
        self.banner = QLabel(self)
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("QLabel { background: rgba(120, 30, 30, 210); color: white;"
                                  " padding: 6px; font-weight: bold; }")
        self.banner.setVisible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.banner)
        lay.addWidget(self.graphics, 1)
        self._size: tuple[int, int] | None = None
        self.frames_drawn = 0

    def set_banner(self, text: str) -> None:
        """Show a message above the video ("" hides it)."""
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    def show_frame(self, rgb: np.ndarray, hands: tuple[HandPose, ...], overlay: bool,
                   origin: str = "model") -> None:
        """Draw a frame (H, W, 3) uint8 and, with ``overlay``, its hands (``origin``: a
        :class:`~handpose.app.engine.Tick` origin; stored poses are drawn dashed)."""
        self.image.setImage(rgb, autoLevels=False)  # uint8 without levels: no rescaling
        size = (rgb.shape[1], rgb.shape[0])
        if size != self._size:
            self._size = size
            self.viewbox.setRange(xRange=(0, size[0]), yRange=(0, size[1]), padding=0.0)
        for k, slot in enumerate(self.slots):
            if overlay and k < len(hands):
                slot.show(hands[k], origin)
            else:
                slot.hide()
        self.frames_drawn += 1

    def overlay_visible(self) -> bool:
        """True when any overlay item is shown."""
        return any(s.joints.isVisible() for s in self.slots)
