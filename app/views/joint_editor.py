"""The annotation tool's image view: a frame, its hand's 21 draggable joints, the bones by
finger, and the recorded prediction (grey, dashed) for reference.

Dragging a joint moves it live (``joint_dragging``); releasing it emits ``joint_moved(joint,
u, v)`` once, which the window turns into one undoable edit. :meth:`JointEditor.drag_joint`
does the same programmatically (keyboard nudges, tests).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from handpose.core.skeleton import FINGERS

from ..colors import FINGER_COLORS, to_255
from .video import finger_polylines

__all__ = ["JointEditor", "DraggableJoints"]


class DraggableJoints(pg.GraphItem):
    """21 joint handles; drag one with the left mouse button."""

    joint_moved = pyqtSignal(int, float, float)
    joint_dragging = pyqtSignal(int, float, float)

    def __init__(self) -> None:
        super().__init__()
        self.uv = np.zeros((21, 2))
        self._drag: int | None = None
        self._offset = np.zeros(2)

    def set_uv(self, uv: np.ndarray | None) -> None:
        if uv is None:
            self.uv = np.zeros((0, 2))
            self.setData(pos=np.zeros((0, 2)))
            return
        self.uv = np.asarray(uv, np.float64).copy()
        brushes = [pg.mkBrush(255, 255, 255)] + [
            pg.mkBrush(*to_255(FINGER_COLORS[(j - 1) // 4])[:3]) for j in range(1, 21)]
        self.setData(pos=self.uv, size=11, symbol="o", pxMode=True, brush=brushes,
                     pen=pg.mkPen((10, 10, 10), width=1.5))

    def mouseDragEvent(self, ev: object) -> None:  # noqa: N802 (Qt name)
        if ev.button() != Qt.MouseButton.LeftButton or self.uv.shape[0] == 0:  # type: ignore
            ev.ignore()  # type: ignore[attr-defined]
            return
        if ev.isStart():  # type: ignore[attr-defined]
            pts = self.scatter.pointsAt(ev.buttonDownPos())  # type: ignore[attr-defined]
            if len(pts) == 0:
                ev.ignore()  # type: ignore[attr-defined]
                return
            self._drag = int(pts[0].index())
            p = ev.buttonDownPos()  # type: ignore[attr-defined]
            self._offset = self.uv[self._drag] - np.array([p.x(), p.y()])
        elif self._drag is None:
            ev.ignore()  # type: ignore[attr-defined]
            return
        p = ev.pos()  # type: ignore[attr-defined]
        new = np.array([p.x(), p.y()]) + self._offset
        j = self._drag
        if ev.isFinish():  # type: ignore[attr-defined]
            self._drag = None
            self.joint_moved.emit(j, float(new[0]), float(new[1]))
        else:
            self.uv[j] = new
            self.setData(pos=self.uv)
            self.joint_dragging.emit(j, float(new[0]), float(new[1]))
        ev.accept()  # type: ignore[attr-defined]


class JointEditor(QWidget):
    """Frame + draggable joints + bones + reference prediction (module docstring)."""

    joint_moved = pyqtSignal(int, float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground((22, 24, 28))
        self.viewbox = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.viewbox.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image)
        self.reference = []
        for _ in FINGERS:
            item = pg.PlotCurveItem(pen=pg.mkPen((170, 170, 170), width=1.5,
                                                 style=Qt.PenStyle.DashLine))
            self.viewbox.addItem(item)
            self.reference.append(item)
        self.bones = []
        for f in range(5):
            item = pg.PlotCurveItem(pen=pg.mkPen(tuple(to_255(FINGER_COLORS[f])), width=2.5))
            self.viewbox.addItem(item)
            self.bones.append(item)
        self.joints = DraggableJoints()
        self.viewbox.addItem(self.joints)
        self.joints.joint_dragging.connect(self._dragging)
        self.joints.joint_moved.connect(self.joint_moved)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.graphics)
        self._size: tuple[int, int] | None = None

    def show_frame(self, rgb: np.ndarray) -> None:
        self.image.setImage(rgb, autoLevels=False)
        size = (rgb.shape[1], rgb.shape[0])
        if size != self._size:
            self._size = size
            self.viewbox.setRange(xRange=(0, size[0]), yRange=(0, size[1]), padding=0.02)

    def show_hand(self, uv: np.ndarray | None, reference: np.ndarray | None = None) -> None:
        """The edited hand's joints (None: no label) and a reference pose (None: none)."""
        self.joints.set_uv(uv)
        self._draw_bones(uv)
        lines = finger_polylines(np.asarray(reference)) if reference is not None else None
        for k, item in enumerate(self.reference):
            if lines is None:
                item.setData([], [])
            else:
                item.setData(lines[k][:, 0], lines[k][:, 1])

    def _draw_bones(self, uv: np.ndarray | None) -> None:
        lines = finger_polylines(np.asarray(uv)) if uv is not None else None
        for k, item in enumerate(self.bones):
            if lines is None:
                item.setData([], [])
            else:
                item.setData(lines[k][:, 0], lines[k][:, 1])

    def _dragging(self, joint: int, u: float, v: float) -> None:
        self._draw_bones(self.joints.uv)

    def drag_joint(self, joint: int, u: float, v: float) -> None:
        """Move ``joint`` to (u, v) pixels as a finished drag would."""
        self.joint_moved.emit(int(joint), float(u), float(v))
