"""What the 3D view draws, computed off the GUI thread (Qt-free).

The inference worker turns each :class:`~handpose.core.types.FrameResult` into a
:class:`SceneData`: per hand the skeleton's line segments, the joints coloured by confidence
and the 41 spheres as one triangle mesh; and the coloured point cloud. The GUI thread then
only hands these arrays to the (once-created) OpenGL items.

Display frame. OpenGL views have z up; the camera frame is x right, y down, z forward. Points
are drawn at ``(x, z, -y)`` (metres): the camera looks along +y of the view, its "down" is
the view's -z, and a right-handed frame stays right-handed (a proper rotation).

Point cloud. With depth (RGB-D sources) every ``stride``-th pixel with a valid reading
(finite, > 0 and < ``max_depth`` m) is back-projected with the frame's K (the formula of
:func:`~handpose.core.geometry.camera.backproject_depth`) and coloured from the image.
Without depth nothing is drawn, unless the result carries its own cloud: a ``FrameResult``
with a ``point_cloud`` attribute ((N, 3) metres, camera frame) and optionally
``point_colors`` ((N, 3) uint8 RGB) is drawn as is. No producer sets these attributes yet;
the cross-modal VAE recipe (a point cloud reconstructed from RGB) is meant to.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from handpose.core.skeleton import BONES
from handpose.core.types import Frame, FrameResult, HandPose

from .colors import FINGER_COLORS, PALM_COLOR, bone_colors, confidence_colors

__all__ = [
    "camera_to_display",
    "skeleton_segments",
    "icosphere",
    "SphereMesh",
    "sphere_mesh",
    "point_cloud",
    "hand_spheres",
    "backproject_pixels",
    "HandGeometry",
    "SceneData",
    "build_scene",
]

_PARENT = np.array([p for p, _ in BONES], np.int64)
_CHILD = np.array([c for _, c in BONES], np.int64)


def camera_to_display(points: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) metres -> the 3D view's frame ``(x, z, -y)``, float32."""
    p = np.asarray(points)
    if p.shape[-1:] != (3,):
        raise ValueError(f"points must have shape (..., 3); got {p.shape}")
    out = np.empty(p.shape, np.float32)
    out[..., 0] = p[..., 0]
    out[..., 1] = p[..., 2]
    out[..., 2] = -p[..., 1]
    return out


def skeleton_segments(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Line segments of the 20 bones.

    Args:
        joints: (21, 3) points (any frame).
    Returns:
        (40, 3) float32 segment end points (parent, child per bone, ``BONES`` order) and
        (40, 4) float32 RGBA colours (by finger).
    """
    j = np.asarray(joints, np.float32)
    if j.shape != (21, 3):
        raise ValueError(f"joints must have shape (21, 3); got {j.shape}")
    seg = np.empty((40, 3), np.float32)
    seg[0::2] = j[_PARENT]
    seg[1::2] = j[_CHILD]
    return seg, np.repeat(bone_colors(), 2, axis=0)


@lru_cache(maxsize=4)
def icosphere(subdivisions: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A unit sphere mesh: (V, 3) float32 vertices on the unit sphere, (F, 3) int32 faces.

    An icosahedron whose triangles are split in four ``subdivisions`` times (12, 42, 162, ...
    vertices); faces are counter-clockwise seen from outside.
    """
    if not 0 <= subdivisions <= 4:
        raise ValueError(f"subdivisions must be in [0, 4]; got {subdivisions}")
    t = (1.0 + 5.0 ** 0.5) / 2.0
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t),
             (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9),
             (5, 11, 4), (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2),
             (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7),
             (9, 8, 1)]
    v = [np.asarray(p, np.float64) / np.linalg.norm(p) for p in verts]

    def midpoint(a: int, b: int, mid: dict[tuple[int, int], int]) -> int:
        key = (min(a, b), max(a, b))
        if key not in mid:
            m = v[a] + v[b]
            v.append(m / np.linalg.norm(m))
            mid[key] = len(v) - 1
        return mid[key]

    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}
        new = []
        for a, b, c in faces:
            ab, bc, ca = midpoint(a, b, cache), midpoint(b, c, cache), midpoint(c, a, cache)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new
    return np.asarray(v, np.float32), np.asarray(faces, np.int32)


@dataclass(frozen=True)
class SphereMesh:
    """The constant part of the 41-sphere mesh: faces, normals, colours (built once).

    Attributes:
        unit: (V, 3) unit-sphere vertices; faces: (41 F, 3) int32 indices into the
        (41 V, 3) vertex array; normals: (41 V, 3) float32; colors: (41 V, 4) by finger.
    """

    unit: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    colors: np.ndarray


@lru_cache(maxsize=2)
def sphere_mesh(subdivisions: int = 1) -> SphereMesh:
    """The shared :class:`SphereMesh` of the hand model's 41 spheres."""
    from handpose.core.spheres import NUM_SPHERES, sphere_parts

    unit, faces = icosphere(subdivisions)
    nv = unit.shape[0]
    all_faces = (faces[None] + (np.arange(NUM_SPHERES) * nv)[:, None, None]).reshape(-1, 3)
    parts = np.asarray(sphere_parts(), np.int64)  # 0 palm, 1..5 fingers
    palette = np.concatenate([PALM_COLOR[None], FINGER_COLORS])
    colors = np.repeat(palette[parts], nv, axis=0).astype(np.float32)
    normals = np.tile(unit, (NUM_SPHERES, 1))
    return SphereMesh(unit, all_faces.astype(np.int32), normals, colors)


def _sphere_vertices(centres: np.ndarray, radii: np.ndarray, mesh: SphereMesh) -> np.ndarray:
    v = centres[:, None, :] + radii[:, None, None] * mesh.unit[None]
    return v.reshape(-1, 3).astype(np.float32)


@lru_cache(maxsize=1)
def _sphere_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(41, 21) sphere weights, (41,) radii (metres, default hand), (20,) bone lengths."""
    from handpose.core.handmodel import load_hand_model

    m = load_hand_model()
    return (np.asarray(m.sphere_weights, np.float64), np.asarray(m.sphere_radii, np.float64),
            np.asarray(m.bone_lengths, np.float64))


def hand_spheres(hand: HandPose) -> tuple[np.ndarray, np.ndarray]:
    """(41, 3) camera-frame centres and (41,) radii in metres of a hand's spheres.

    The pose's own ``spheres`` when it has them (a depth fit); else the formula of
    :func:`~handpose.core.spheres.spheres_from_joints` (centres = sphere weights @ joints,
    radii = default radii x the hand's size: its mean bone length / the template's), in
    numpy: this runs per frame, where torch's thread pool costs more than the arithmetic.
    """
    if hand.spheres is not None:
        s = np.asarray(hand.spheres, np.float64)
        return s[:, :3], s[:, 3]
    weights, radii, template = _sphere_model()
    j = np.asarray(hand.joints, np.float64)
    lengths = np.linalg.norm(j[_CHILD] - j[_PARENT], axis=-1)
    scale = float(np.mean(lengths / template))
    return weights @ j, radii * scale


def backproject_pixels(depth: np.ndarray, K: np.ndarray, stride: int = 1
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Points of the valid pixels of a depth map, and the mask of those pixels.

    The formula and pixel order of :func:`~handpose.core.geometry.camera.backproject_depth`
    (row-major, every ``stride``-th row and column, valid = finite and > 0), in numpy (see
    :func:`hand_spheres` for why), plus the (H', W') mask to pick the pixels' colours.

    Returns:
        (M, 3) float64 metres, camera frame; (H', W') bool mask of the strided grid.
    """
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1; got {stride!r}")
    d = np.asarray(depth, np.float64)
    if d.ndim != 2:
        raise ValueError(f"depth must have shape (H, W); got {d.shape}")
    k = np.asarray(K, np.float64)
    sub = d[::stride, ::stride]
    valid = np.isfinite(sub) & (sub > 0)
    ii, jj = np.nonzero(valid)
    z = sub[ii, jj]
    u, v = jj * float(stride), ii * float(stride)
    y = (v - k[1, 2]) / k[1, 1]
    x = (u - k[0, 2] - k[0, 1] * y) / k[0, 0]
    return np.stack([x * z, y * z, z], 1), valid


def point_cloud(frame: Frame, stride: int = 4, max_depth: float = 3.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """The frame's coloured point cloud in the display frame (module docstring).

    Args:
        frame: a frame with ``depth`` (H, W) metres (else an empty cloud).
        stride: keep every ``stride``-th row and column (>= 1).
        max_depth: drop readings at or beyond this distance (metres).
    Returns:
        (N, 3) float32 positions and (N, 4) float32 RGBA colours in [0, 1].
    """
    if frame.depth is None:
        return np.zeros((0, 3), np.float32), np.zeros((0, 4), np.float32)
    d = np.asarray(frame.depth, np.float32)
    d = np.where(d < max_depth, d, 0.0)  # NaN compares False -> 0 (no reading)
    pts, valid = backproject_pixels(d, np.asarray(frame.K, np.float64), stride)
    rgb = frame.rgb[::stride, ::stride][valid]
    colors = np.empty((rgb.shape[0], 4), np.float32)
    colors[:, :3] = rgb / np.float32(255.0)
    colors[:, 3] = 1.0
    return camera_to_display(np.asarray(pts)), colors


@dataclass(frozen=True)
class HandGeometry:
    """One hand in the display frame.

    Attributes:
        track_id, handedness: from the pose.
        joints: (21, 3); joint_colors: (21, 4) by confidence.
        segments: (40, 3) bone end points; segment_colors: (40, 4) by finger.
        sphere_vertices: (41 V, 3) the sphere mesh's vertices, or None (not computed).
    """

    track_id: int
    handedness: str
    joints: np.ndarray
    joint_colors: np.ndarray
    segments: np.ndarray
    segment_colors: np.ndarray
    sphere_vertices: np.ndarray | None


@dataclass(frozen=True)
class SceneData:
    """Everything the 3D view draws for one frame (display frame, float32)."""

    hands: tuple[HandGeometry, ...]
    cloud: np.ndarray
    cloud_colors: np.ndarray


def build_scene(result: FrameResult, *, spheres: bool = True, cloud: bool = True,
                stride: int = 4, max_depth: float = 3.0) -> SceneData:
    """The 3D view's data of one result (module docstring); parts switched off are empty."""
    mesh = sphere_mesh()
    hands = []
    for h in result.hands:
        j = camera_to_display(h.joints)
        seg, seg_col = skeleton_segments(j)
        verts = None
        if spheres:
            c, r = hand_spheres(h)
            verts = _sphere_vertices(camera_to_display(c), np.asarray(r, np.float32), mesh)
        hands.append(HandGeometry(int(h.track_id), h.handedness, j,
                                  confidence_colors(h.confidence), seg, seg_col, verts))
    pos = np.zeros((0, 3), np.float32)
    col = np.zeros((0, 4), np.float32)
    if cloud:
        own = getattr(result, "point_cloud", None)
        if own is not None:
            pos = camera_to_display(np.asarray(own, np.float64).reshape(-1, 3))
            rgb = getattr(result, "point_colors", None)
            col = np.ones((pos.shape[0], 4), np.float32)
            if rgb is not None:
                col[:, :3] = np.asarray(rgb, np.float32).reshape(-1, 3) / 255.0
        elif result.frame.depth is not None:
            pos, col = point_cloud(result.frame, stride, max_depth)
    return SceneData(tuple(hands), pos, col)
