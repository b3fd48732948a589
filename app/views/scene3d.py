"""The 3D view: skeletons, the 41 spheres as shaded meshes, the coloured point cloud, a grid.

pyqtgraph's 3D view (its ``GLViewMixin``: drag to orbit, wheel to zoom, middle-drag or
Ctrl-drag to pan) on a ``QOpenGLWindow`` embedded with ``QWidget.createWindowContainer``,
not on a ``QOpenGLWidget``: a QOpenGLWidget makes Qt composite the WHOLE main window through
OpenGL on every repaint of any widget, which with software OpenGL (Xvfb, VMs, laptops without
a GPU driver) cost 40 ms per status-bar update here, against 5 ms with the embedded window
(benchmarks/app_latency.py). The native child window is drawn by the window system, so a
screenshot of the main window pastes it in from :meth:`Scene3DView.grab_image`.

Every OpenGL item is created once, for ``max_hands`` hand slots, and updated with
``setData`` / new vertex positions per frame; a slot without a hand is hidden. The geometry
arrives precomputed (:class:`~handpose.app.scene_data.SceneData`, built by the inference
thread) in the display frame ``(x, z, -y)`` of the camera frame, so the camera sits at the
origin looking along +y, its image "down" pointing to -z.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph.opengl as gl
from PyQt6.QtGui import QImage, QSurfaceFormat
from PyQt6.QtOpenGL import QOpenGLWindow
from PyQt6.QtWidgets import QVBoxLayout, QWidget
from pyqtgraph import Vector
from pyqtgraph.opengl.GLViewWidget import GLViewMixin

from ..scene_data import SceneData, sphere_mesh
from ..state import ViewOptions

__all__ = ["Scene3DView", "GLSceneWindow", "SphereMeshData", "DEFAULT_CAMERA"]

#: Initial view: centre (metres, display frame), distance, elevation and azimuth (degrees).
DEFAULT_CAMERA = {"center": (0.0, 0.42, -0.02), "distance": 0.62, "elevation": 14.0,
                  "azimuth": -62.0}
_GRID_Z = -0.25  # the grid lies 25 cm below the camera


class SphereMeshData(gl.MeshData):
    """MeshData of the 41 spheres with constant faces, normals and colours.

    Only the vertex positions change per frame; the normals of a translated, scaled sphere
    are those of the unit sphere, so they are not recomputed (pyqtgraph's own smooth normals
    loop over vertices in Python).
    """

    def __init__(self) -> None:
        m = sphere_mesh()
        super().__init__(vertexes=np.zeros_like(m.normals), faces=m.faces,
                         vertexColors=m.colors)
        self._normals = m.normals

    def vertexNormals(self, indexed: str | None = None) -> np.ndarray:  # noqa: N802
        if indexed is None:
            return self._normals
        return self._normals[self.faces()]


class _HandItems:
    """The OpenGL items of one hand slot."""

    def __init__(self, view: Any) -> None:
        self.bones = gl.GLLinePlotItem(pos=np.zeros((2, 3)), mode="lines", width=3.0,
                                       antialias=False, glOptions="opaque")
        self.joints = gl.GLScatterPlotItem(pos=np.zeros((1, 3)), size=9.0, pxMode=True,
                                           glOptions="opaque")
        self.mesh_data = SphereMeshData()
        self.spheres = gl.GLMeshItem(meshdata=self.mesh_data, smooth=True, shader="shaded",
                                     glOptions="opaque")
        for item in (self.spheres, self.bones, self.joints):
            view.addItem(item)
            item.setVisible(False)

    def hide(self) -> None:
        for item in (self.spheres, self.bones, self.joints):
            item.setVisible(False)


class GLSceneWindow(GLViewMixin, QOpenGLWindow):
    """pyqtgraph's 3D view on a QOpenGLWindow (see the module docstring)."""


class Scene3DView(QWidget):
    """The 3D view (module docstring).

    Args:
        max_hands: hand slots (items created up front).

    Attributes:
        gl: the :class:`GLSceneWindow` holding the items.
    """

    def __init__(self, max_hands: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gl = GLSceneWindow()
        fmt = QSurfaceFormat()
        fmt.setDepthBufferSize(24)  # the default window surface may have none: no occlusion
        self.gl.setFormat(fmt)
        self.container = QWidget.createWindowContainer(self.gl, self)
        self.container.setMinimumSize(200, 150)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.container)
        view = self.gl
        view.setBackgroundColor((22, 24, 28))
        self.grid = gl.GLGridItem(size=Vector(2.0, 2.0, 1.0))
        self.grid.setSpacing(0.1, 0.1, 0.1)
        self.grid.translate(0.0, 1.0, _GRID_Z)
        self.grid.setColor((255, 255, 255, 60))
        view.addItem(self.grid)
        self.camera_marker = gl.GLLinePlotItem(pos=self._frustum(), mode="lines",
                                               color=(0.8, 0.8, 0.8, 1.0), width=1.5)
        view.addItem(self.camera_marker)
        self.cloud = gl.GLScatterPlotItem(pos=np.zeros((1, 3)), size=2.0, pxMode=True,
                                          glOptions="opaque")
        self.cloud.setVisible(False)
        view.addItem(self.cloud)
        self.slots = [_HandItems(view) for _ in range(max_hands)]
        self.reset_view()

    @staticmethod
    def _frustum(depth: float = 0.08) -> np.ndarray:
        """Line segments of a small camera pyramid at the origin (display frame)."""
        w, h = 0.6 * depth, 0.45 * depth
        c = [(-w, depth, h), (w, depth, h), (w, depth, -h), (-w, depth, -h)]
        segs = []
        for i in range(4):
            segs += [(0.0, 0.0, 0.0), c[i], c[i], c[(i + 1) % 4]]
        return np.asarray(segs, np.float32)

    def reset_view(self) -> None:
        """Back to the initial viewpoint (View > Reset 3D view)."""
        c = DEFAULT_CAMERA
        self.gl.setCameraPosition(pos=Vector(*c["center"]), distance=c["distance"],
                                  elevation=c["elevation"], azimuth=c["azimuth"])

    def apply_view(self, view: ViewOptions) -> None:
        """Show or hide the grid (the other toggles act in :meth:`show_scene`)."""
        self.grid.setVisible(view.grid)

    def show_scene(self, scene: SceneData, view: ViewOptions) -> None:
        """Draw one frame's scene with the current toggles."""
        for k, items in enumerate(self.slots):
            if k >= len(scene.hands):
                items.hide()
                continue
            h = scene.hands[k]
            items.bones.setData(pos=h.segments, color=h.segment_colors)
            items.joints.setData(pos=h.joints, color=h.joint_colors)
            items.bones.setVisible(view.skeleton)
            items.joints.setVisible(view.skeleton)
            if view.spheres and h.sphere_vertices is not None:
                items.mesh_data.setVertexes(h.sphere_vertices, resetNormals=False)
                items.spheres.meshDataChanged()
                items.spheres.setVisible(True)
            else:
                items.spheres.setVisible(False)
        if view.point_cloud and scene.cloud.shape[0] > 0:
            self.cloud.setData(pos=scene.cloud, color=scene.cloud_colors)
            self.cloud.setVisible(True)
        else:
            self.cloud.setVisible(False)
        self.grid.setVisible(view.grid)
        self.gl.update()

    def renderToArray(self, size: tuple[int, int]) -> np.ndarray:  # noqa: N802 (pyqtgraph)
        """Render the scene off-screen at ``size`` (width, height): (H, W, 4) uint8 BGRA."""
        return np.asarray(self.gl.renderToArray(size))

    def grab_image(self) -> QImage:
        """The view as it is on screen (for screenshots of the main window)."""
        return self.gl.grabFramebuffer()
