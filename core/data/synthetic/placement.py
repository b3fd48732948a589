"""Placing sampled hands in front of cameras: random intrinsics, a requested fill of the image
at a random position, and multi-view rigs around the hand.

Two modes (:class:`PlacementConfig`):

* ``"crop"`` (training sets such as FreiHAND): the image is a square-ish window of a virtual
  camera frame (``frame_size``, horizontal field of view in ``fov_deg``) around a hand at a
  realistic distance (``distance``) anywhere in that frame. The window is sized so the hand
  fills the requested fraction at a random position; the image's K is the window's (focal
  length scaled, principal point off-centre), exactly like a crop of a real photo.
* ``"frame"`` (videos, whole webcam frames): the image is the camera frame itself; the hand
  is moved in depth and sideways until it fills the requested fraction at the requested
  position (fixed-point iterations; never closer than 10 cm to the camera).

The hand's image extent is measured on the 41-sphere model (each sphere projected as a disc
of radius ``f r / z``), so "fill" is the silhouette's box, not the joints':
``fill = max(box width, box height) / min(W, H)``. A rig's world frame is camera 0's frame
(its extrinsics are the identity); the other cameras look at the hand from directions
uniform on the sphere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from ...handmodel import HandModel, load_hand_model

__all__ = [
    "PLACEMENT_UNIFORMS",
    "VIEW_UNIFORMS",
    "PlacementConfig",
    "Placement",
    "intrinsics_for_fovs",
    "sphere_model",
    "image_boxes",
    "translation_for",
    "place",
    "num_placement_uniforms",
]

#: Uniforms of one camera: fov, fill, box position x, y, distance, hand position x, y in the
#: virtual frame.
PLACEMENT_UNIFORMS: Final = 7
#: Uniforms of each extra rig camera: viewing direction (2), roll, then a camera's.
VIEW_UNIFORMS: Final = 3 + PLACEMENT_UNIFORMS
_MODES = ("crop", "frame")
_ITERATIONS = 6
_NEAR = 0.1  # metres: no sphere surface comes closer to a camera


@dataclass(frozen=True)
class PlacementConfig:
    """How hands are put in front of cameras (see the module docstring).

    Attributes:
        mode: ``"crop"`` or ``"frame"``.
        fov_deg: [lo, hi] horizontal field of view of the (virtual) camera frame, degrees.
        fill: [lo, hi] of ``max(box w, box h) / min(W, H)`` of the output image.
        distance: [lo, hi] metres from the camera to the hand's centre (``crop`` mode).
        frame_size: (W, H) pixels of the virtual camera frame (``crop`` mode).
        max_roll_deg: rig cameras are rolled about their optical axis by up to this.
    """

    mode: str = "crop"
    fov_deg: tuple[float, float] = (50.0, 80.0)
    fill: tuple[float, float] = (0.4, 0.8)
    distance: tuple[float, float] = (0.25, 0.8)
    frame_size: tuple[int, int] = (640, 480)
    max_roll_deg: float = 20.0

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}; got {self.mode!r}")
        for name, (lo, hi), top in (("fov_deg", self.fov_deg, 180.0), ("fill", self.fill, 10.0),
                                    ("distance", self.distance, 100.0)):
            if not 0 < lo <= hi < top:
                raise ValueError(f"{name} must be [lo, hi] with 0 < lo <= hi < {top}; got "
                                 f"{(lo, hi)}")
        _check_size(*self.frame_size)
        if not 0 <= self.max_roll_deg <= 180:
            raise ValueError(f"max_roll_deg must be in [0, 180]; got {self.max_roll_deg}")


@dataclass(frozen=True)
class Placement:
    """Cameras and hand positions of N samples x V views (float64).

    Attributes:
        K: (N, V, 3, 3) intrinsics of the output images, pixels.
        extrinsics: (N, V, 4, 4) world -> camera (view 0 is the identity).
        joints: (N, V, 21, 3) metres, each view's camera frame.
        fill: (N, V) achieved ``max(box w, box h) / min(W, H)``.
        box: (N, V, 4) silhouette box x0, y0, x1, y1 in pixels (sphere model).
        width, height: image size in pixels.
    """

    K: np.ndarray
    extrinsics: np.ndarray
    joints: np.ndarray
    fill: np.ndarray
    box: np.ndarray
    width: int
    height: int


def intrinsics_for_fovs(fov_deg: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) horizontal fields of view in degrees -> (N, 3, 3) pinhole K, square pixels,
    principal point at the image centre ((W - 1) / 2, (H - 1) / 2)."""
    fov = np.asarray(fov_deg, np.float64)
    if fov.ndim != 1 or not np.all((fov > 0) & (fov < 180)):
        raise ValueError(f"fov_deg must be a 1D array of degrees in (0, 180); got {fov!r:.80}")
    _check_size(width, height)
    f = 0.5 * width / np.tan(np.deg2rad(fov) / 2.0)
    K = np.zeros((len(fov), 3, 3))
    K[:, 0, 0] = K[:, 1, 1] = f
    K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = (width - 1) / 2.0, (height - 1) / 2.0, 1.0
    return K


def _check_size(width: int, height: int) -> None:
    if not (isinstance(width, (int, np.integer)) and isinstance(height, (int, np.integer))
            and width > 0 and height > 0):
        raise ValueError(f"width and height must be positive integers; got {width}x{height}")


def sphere_model(joints: np.ndarray, hand_scale: np.ndarray,
                 model: HandModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(..., 21, 3) metres, (...,) scale -> sphere centres (..., 41, 3) and radii (..., 41)."""
    m = model or load_hand_model()
    c = np.matmul(m.sphere_weights, np.asarray(joints, np.float64))
    return c, m.sphere_radii * np.asarray(hand_scale, np.float64)[..., None]


def image_boxes(centres: np.ndarray, radii: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Silhouette boxes of sphere models: (..., S, 3) camera-frame centres (z > 0), (..., S)
    radii, (..., 3, 3) K -> (..., 4) x0, y0, x1, y1 pixels (spheres as discs f r / z)."""
    z = centres[..., 2]
    if np.any(z <= 0):
        raise ValueError("centres must lie in front of the camera (z > 0)")
    fx, fy = K[..., 0, 0][..., None], K[..., 1, 1][..., None]
    u = fx * centres[..., 0] / z + K[..., 0, 2][..., None] + K[..., 0, 1][..., None] * (
        centres[..., 1] / z)
    v = fy * centres[..., 1] / z + K[..., 1, 2][..., None]
    ru, rv = fx * radii / z, fy * radii / z
    return np.stack([(u - ru).min(-1), (v - rv).min(-1), (u + ru).max(-1), (v + rv).max(-1)], -1)


def translation_for(centres: np.ndarray, radii: np.ndarray, K: np.ndarray,
                    centre_px: np.ndarray, size_px: np.ndarray) -> np.ndarray:
    """Translation putting an oriented sphere model at a given image box.

    Args:
        centres: (N, S, 3) sphere centres in the camera ORIENTATION, relative to any origin
            (the returned translation moves that origin).
        radii: (N, S) metres. K: (N, 3, 3).
        centre_px: (N, 2) wanted box centre, pixels. size_px: (N,) wanted max(box w, h).

    Returns:
        (N, 3) metres: ``centres + t`` has the wanted box (size typically within 1 %; a
        hand that would come closer than 10 cm to the camera is pushed back, so it fills
        less than asked).
    """
    mid = 0.5 * (centres.max(1) + centres.min(1))  # (N, 3)
    p = centres - mid[:, None]
    ext = (p[..., :2].max(1) - p[..., :2].min(1)).max(-1) + 2 * radii.max(1)
    f = 0.5 * (K[:, 0, 0] + K[:, 1, 1])
    z = np.maximum(f * ext / size_px, (radii - p[..., 2]).max(1) + _NEAR)
    t = np.zeros((len(p), 3))
    aim = centre_px.astype(np.float64).copy()
    for _ in range(_ITERATIONS):
        t[:, 0] = (aim[:, 0] - K[:, 0, 2]) * z / K[:, 0, 0]
        t[:, 1] = (aim[:, 1] - K[:, 1, 2]) * z / K[:, 1, 1]
        t[:, 2] = z
        box = image_boxes(p + t[:, None], radii, K)
        size = np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
        got = 0.5 * (box[:, :2] + box[:, 2:])
        z = np.maximum(z * size / size_px, (radii - p[..., 2]).max(1) + _NEAR)
        aim = aim + (centre_px - got)
    t[:, 0] = (aim[:, 0] - K[:, 0, 2]) * z / K[:, 0, 0]
    t[:, 1] = (aim[:, 1] - K[:, 1, 2]) * z / K[:, 1, 1]
    t[:, 2] = z
    return t - mid


def num_placement_uniforms(views: int) -> int:
    """Uniforms per sample that :func:`place` needs for ``views`` cameras."""
    if not isinstance(views, (int, np.integer)) or views < 1:
        raise ValueError(f"views must be an integer >= 1; got {views!r}")
    return PLACEMENT_UNIFORMS + (int(views) - 1) * VIEW_UNIFORMS


def _box_centre(u: np.ndarray, size: np.ndarray, width: int, height: int) -> np.ndarray:
    """Uniforms (M, 2) -> box centres keeping a box of side ``size`` inside the image."""
    half = 0.5 * size
    lo_x, hi_x = half - 0.5, width - 0.5 - half
    lo_y, hi_y = half - 0.5, height - 0.5 - half
    cx = np.where(hi_x > lo_x, lo_x + u[:, 0] * (hi_x - lo_x), (width - 1) / 2.0)
    cy = np.where(hi_y > lo_y, lo_y + u[:, 1] * (hi_y - lo_y), (height - 1) / 2.0)
    return np.stack([cx, cy], -1)


def _lerp(r: tuple[float, float], u: np.ndarray) -> np.ndarray:
    return r[0] + u * (r[1] - r[0])


def _place_camera(c: np.ndarray, r: np.ndarray, u: np.ndarray, fov: np.ndarray, width: int,
                  height: int, cfg: PlacementConfig, K: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One camera per row: oriented sphere centres (M, S, 3) relative to any origin, radii
    (M, S), uniforms (M, PLACEMENT_UNIFORMS), fov (M,) -> (K (M, 3, 3), t (M, 3)) such that
    ``c + t`` are the camera-frame centres."""
    size = _lerp(cfg.fill, u[:, 1]) * min(width, height)
    centre = _box_centre(u[:, 2:4], size, width, height)
    if cfg.mode == "frame" or K is not None:
        Ks = intrinsics_for_fovs(fov, width, height) if K is None else K
        return Ks, translation_for(c, r, Ks, centre, size)
    fw, fh = cfg.frame_size
    kf = intrinsics_for_fovs(fov, fw, fh)
    mid = 0.5 * (c.max(1) + c.min(1))
    z = _lerp(cfg.distance, u[:, 4])
    z = np.maximum(z, (r - (c - mid[:, None])[..., 2]).max(1) + _NEAR)
    px = np.stack([u[:, 5] * (fw - 1), u[:, 6] * (fh - 1)], -1)  # hand centre in the frame
    t = np.stack([(px[:, 0] - kf[:, 0, 2]) * z / kf[:, 0, 0],
                  (px[:, 1] - kf[:, 1, 2]) * z / kf[:, 1, 1], z], -1) - mid
    box = image_boxes(c + t[:, None], r, kf)  # in the virtual frame
    s = size / np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])  # frame px -> image px
    # x_img = s * (x_frame - a) - 0.5 maps the box centre onto the wanted centre
    a = 0.5 * (box[:, :2] + box[:, 2:]) - (centre + 0.5) / s[:, None]
    Ks = kf.copy()
    Ks[:, :2, :2] *= s[:, None, None]
    Ks[:, :2, 2] = s[:, None] * (kf[:, :2, 2] - a) - 0.5
    return Ks, t


def _look_rotation(g: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(M, 3) unit directions hand -> camera, (M,) roll radians -> (M, 3, 3) world->camera
    rotations whose optical axis is -g, "up" near world -y, then rolled about the axis."""
    zc = -g
    ref = np.where((np.abs(zc[:, 1]) > 0.95)[:, None], np.array([1.0, 0.0, 0.0]),
                   np.array([0.0, 1.0, 0.0]))
    xc = np.cross(ref, zc)
    xc /= np.linalg.norm(xc, axis=-1, keepdims=True)
    yc = np.cross(zc, xc)
    cr, sr = np.cos(roll)[:, None], np.sin(roll)[:, None]
    xr, yr = cr * xc + sr * yc, -sr * xc + cr * yc
    return np.stack([xr, yr, zc], 1)  # rows: camera axes in world coordinates


def place(
    joints: np.ndarray,
    hand_scale: np.ndarray,
    u: np.ndarray,
    width: int,
    height: int,
    *,
    views: int = 1,
    config: PlacementConfig | None = None,
    K: np.ndarray | None = None,
    model: HandModel | None = None,
) -> Placement:
    """Cameras for N oriented hands: camera 0 sees the hand in the sampled orientation, the
    other ``views - 1`` look at it from directions uniform on the sphere (same lens).

    Args:
        joints: (N, 21, 3) metres in camera 0's orientation (``HandSamples.oriented()``).
        hand_scale: (N,) hand size (sphere radii scale).
        u: (N, :func:`num_placement_uniforms` (views)) uniforms in [0, 1].
        width, height: output image size, pixels.
        views: cameras per hand (>= 1).
        config: :class:`PlacementConfig` (default: crop mode).
        K: (3, 3) or (N, 3, 3) fixed intrinsics of the output images (frame-mode placement
            with this K; ``fov_deg`` unused).
        model: hand model of the sphere radii.

    Returns:
        a :class:`Placement` (world frame = camera 0).

    Raises:
        ValueError: bad shapes, sizes or views.
    """
    cfg = config or PlacementConfig()
    j = np.asarray(joints, np.float64)
    if j.ndim != 3 or j.shape[1:] != (21, 3):
        raise ValueError(f"joints must have shape (N, 21, 3); got {j.shape}")
    n = len(j)
    scale = np.broadcast_to(np.asarray(hand_scale, np.float64), (n,))
    u = np.asarray(u, np.float64)
    want = num_placement_uniforms(views)
    if u.shape != (n, want):
        raise ValueError(f"u must have shape ({n}, {want}) for {views} views; got {u.shape}")
    _check_size(width, height)
    m = model or load_hand_model()
    Kfix = None
    if K is not None:
        Karr = np.asarray(K, np.float64)
        if Karr.shape not in ((3, 3), (n, 3, 3)):
            raise ValueError(f"K must have shape (3, 3) or ({n}, 3, 3); got {Karr.shape}")
        Kfix = np.broadcast_to(Karr, (n, 3, 3))
    fov = _lerp(cfg.fov_deg, u[:, 0])
    c, r = sphere_model(j, scale, m)
    K0, t0 = _place_camera(c, r, u[:, :PLACEMENT_UNIFORMS], fov, width, height, cfg, Kfix)
    world = j + t0[:, None]
    Ks, Es, Js = [K0], [np.broadcast_to(np.eye(4), (n, 4, 4))], [world]
    cw = c + t0[:, None]
    hub = 0.5 * (cw.max(1) + cw.min(1))  # hand centre, world
    for v in range(1, views):
        uv = u[:, PLACEMENT_UNIFORMS + (v - 1) * VIEW_UNIFORMS:][:, :VIEW_UNIFORMS]
        cz = 2.0 * uv[:, 0] - 1.0
        ang = 2.0 * np.pi * uv[:, 1]
        rs = np.sqrt(np.clip(1.0 - cz * cz, 0.0, 1.0))
        g = np.stack([rs * np.cos(ang), rs * np.sin(ang), cz], -1)
        R = _look_rotation(g, np.deg2rad(cfg.max_roll_deg) * (2.0 * uv[:, 2] - 1.0))
        cv = np.einsum("nij,nsj->nsi", R, cw - hub[:, None])
        Kv, tv = _place_camera(cv, r, uv[:, 3:], fov, width, height, cfg, Kfix)
        E = np.zeros((n, 4, 4))
        E[:, :3, :3], E[:, 3, 3] = R, 1.0
        E[:, :3, 3] = tv - np.einsum("nij,nj->ni", R, hub)
        Ks.append(Kv)
        Es.append(E)
        Js.append(np.einsum("nij,nkj->nki", R, world) + E[:, None, :3, 3])
    Kall, Jall = np.stack(Ks, 1), np.stack(Js, 1)
    cs, rs_ = sphere_model(Jall, scale[:, None], m)
    box = image_boxes(cs, rs_, Kall)
    fill = np.maximum(box[..., 2] - box[..., 0], box[..., 3] - box[..., 1]) / min(width, height)
    return Placement(K=Kall, extrinsics=np.ascontiguousarray(np.stack(Es, 1)), joints=Jall,
                     fill=fill, box=box, width=int(width), height=int(height))
