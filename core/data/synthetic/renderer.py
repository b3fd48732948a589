"""The synthetic hand renderer: labelled RGB + depth images of hands on given joints.

Given camera-frame joints (B, 21, 3) metres, intrinsics and handedness, :class:`HandRenderer`
skins the template hand (:mod:`.mesh`, :mod:`.skinning`) with a forearm onto the joints,
rasterises it with OpenGL on EGL (:mod:`.raster`; Mesa llvmpipe without a GPU), shades the skin
(:mod:`.appearance`) and composites it over a background (:mod:`.backgrounds`). It returns
:class:`RenderedHands`: RGB, depth, mask, per-pixel part ids, 2D joints, visibility, and
optionally a sensor-like depth map (:func:`handpose.core.data.depth_noise.add_depth_noise`).

Label consistency: every template joint is carried exactly onto the given joint, the tips lie
on the fingertip surface and the other joints inside the fingers/palm, about one finger radius
under the surface (:mod:`.hand_sdf`). A joint is *visible* when it projects inside the image,
onto the hand, and the rendered surface there is no more than ``joint_tolerance`` in front of
it: the depth of the joint's own flesh along the ray to the camera (an ellipsoid measured on
the template around each joint, posed and thickened with the hand) plus 1.5 mm. So nothing
else covers it. Tips lie on the surface, so on the silhouette when seen from the side; they are
tested at a point 1.5 mm inside the fingertip (towards the DIP), which projects within about a
pixel of the tip.

Randomness: sample i draws its appearance, shape, background and camera noise from
generators seeded with ``(seed, RENDER_STREAM, indices[i], k)``, so it does not depend on the
batch it is rendered in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...geometry.camera import check_intrinsics, project
from ..depth_noise import DepthNoise, add_depth_noise
from .appearance import Appearance, HandShape, sample_appearance, sample_shape
from .backgrounds import BackgroundSource
from .compositing import composite, joint_visibility
from .mesh import TemplateMesh, load_template_mesh, template_lod
from .raster import MeshRasterizer
from .seeding import RENDER_STREAM
from .shaders import APPEARANCE_OFFSET, NUM_PARAM_SLOTS
from .skinning import arm_away_bend, bone_transforms, hand_size

__all__ = ["RenderedHands", "HandRenderer", "LOD_TRIANGLES"]

#: Triangles of the lighter templates: (longest image side up to, triangles); larger images
#: use the full template.
LOD_TRIANGLES = ((160, 3000), (256, 5000))
_TOL_EXTRA = 0.0015  # metres added to the joint radius in the visibility test
_TIPS = torch.tensor([4, 8, 12, 16, 20])
_TIP_PROBE = 0.0015  # metres: tips are tested this far inside the fingertip
# which thickness control (finger 0, palm 1, forearm 2) sets each joint's radius
_JOINT_REGION = np.array([2, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
# the bone whose transform carries each joint's frame: the bone ending there (wrist: 0 -> 9)
_JOINT_BONE = [8] + list(range(20))


@dataclass(frozen=True)
class RenderedHands:
    """A rendered batch (torch tensors on the CPU).

    Attributes:
        rgb: (B, H, W, 3) uint8.
        depth: (B, H, W) float32 metres along the optical axis (camera z), 0 = background.
        mask: (B, H, W) bool, the hand and forearm.
        parts: (B, H, W) uint8, 0 background, 1 + the dominant skinning bone (1-20: ``BONES``
            index + 1, 21: forearm).
        joints: (B, 21, 3) float32 metres, camera frame. uv: (B, 21, 2) float32 pixels, the
            projection of ``joints`` with ``K``. K: (B, 3, 3) float32.
        visibility: (B, 21) bool (see the module docstring).
        joint_tolerance: (B, 21) float32 metres, the visibility test's depth tolerance.
        handedness: B strings "left"/"right".
        sensor_depth: (B, H, W) float32 metres with sensor-like noise and holes, or None.
        extrinsics: (B, 4, 4) float32 world -> camera of multi-view renders, else None.
        appearance, shape: the parameters used.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor
    parts: torch.Tensor
    joints: torch.Tensor
    uv: torch.Tensor
    K: torch.Tensor
    visibility: torch.Tensor
    joint_tolerance: torch.Tensor
    handedness: tuple[str, ...]
    sensor_depth: torch.Tensor | None
    extrinsics: torch.Tensor | None
    appearance: Appearance
    shape: HandShape

    def __len__(self) -> int:
        return len(self.rgb)


def _as_array(x: Any, name: str) -> np.ndarray:
    try:
        a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return a.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a numeric array; got {type(x).__name__}") from e


def _check_joints(joints: Any, name: str = "joints") -> np.ndarray:
    j = _as_array(joints, name)
    if j.ndim != 3 or j.shape[1:] != (21, 3) or len(j) == 0:
        raise ValueError(f"{name} must have shape (B, 21, 3) with B >= 1 (metres); got "
                         f"{j.shape}")
    if not np.isfinite(j).all():
        raise ValueError(f"{name} must be finite; got {int((~np.isfinite(j)).sum())} NaN/inf "
                         f"value(s)")
    return j


def _check_size(image_size: Any) -> tuple[int, int]:
    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
    try:
        w, h = (int(s) for s in size)
        ok = all(isinstance(s, (int, np.integer)) for s in size) and 0 < w <= 8192 and (
            0 < h <= 8192)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"image_size must be an int or (width, height) of positive integers "
                         f"up to 8192; got {image_size!r}")
    return w, h


def _check_handedness(handedness: Any, n: int) -> np.ndarray:
    items = [handedness] * n if isinstance(handedness, str) else list(handedness)
    if len(items) != n:
        raise ValueError(f"handedness must be 'left', 'right' or a sequence of {n} of them; "
                         f"got {len(items)} values")
    out = np.zeros(n, bool)
    for i, h in enumerate(items):
        if isinstance(h, (bool, np.bool_)):
            out[i] = bool(h)
        elif isinstance(h, str) and h.lower() in ("left", "right"):
            out[i] = h.lower() == "left"
        else:
            raise ValueError(f"handedness[{i}] must be 'left' or 'right' (or a bool is_left); "
                             f"got {h!r}")
    return out


def _check_K(K: Any, n: int, name: str = "K") -> np.ndarray:
    k = _as_array(K, name)
    if k.shape == (3, 3):
        k = np.broadcast_to(k, (n, 3, 3))
    if k.shape != (n, 3, 3):
        raise ValueError(f"{name} must have shape (3, 3) or ({n}, 3, 3); got {k.shape}")
    k = np.array(k, np.float64)  # a writable copy (broadcasts are read-only)
    check_intrinsics(torch.from_numpy(k), name)
    return k


def _rngs(seed: int, indices: np.ndarray, k: int, view: int = 0) -> list[np.random.Generator]:
    return [np.random.default_rng([seed, RENDER_STREAM, int(i), k, view]) for i in indices]


class HandRenderer:
    """Batched renderer of labelled synthetic hands (see the module docstring).

    Args:
        samples: colour multisampling: 1 (fast; edges anti-aliased on the CPU) or 4.
        max_batch: samples per OpenGL draw (larger batches are split).
        background_dir: optional folder of background images (never real hand photos: they
            would add unlabelled hands); procedural backgrounds otherwise.
        background_folder_prob: probability of a folder image when ``background_dir`` is set.
        mesh_path: a template mesh asset (default: the shipped ``assets/hand_mesh.json``).
        lod: use the lighter templates of :data:`LOD_TRIANGLES` for small images.
        arm_away: bend the wrist (within anatomical limits, nearest to the sampled bend) so
            the forearm does not come towards the camera, as in photos of people's hands;
            the bend used is in the returned ``shape``.

    Raises:
        RuntimeError: OpenGL through EGL is not available (libEGL / Mesa missing).
        ValueError: bad arguments.
    """

    def __init__(self, *, samples: int = 1, max_batch: int = 64,
                 background_dir: str | Path | None = None, background_folder_prob: float = 0.5,
                 mesh_path: str | Path | None = None, lod: bool = True,
                 arm_away: bool = True):
        self.mesh = load_template_mesh(mesh_path)
        self.lods = [(px, template_lod(self.mesh, tri)) for px, tri in LOD_TRIANGLES] if lod \
            else []
        self.backgrounds = BackgroundSource(background_dir, background_folder_prob)
        self.samples = samples
        self.max_batch = max_batch
        self.arm_away = bool(arm_away)
        self._raster: dict[int, MeshRasterizer] = {}
        self._raster_for(self.mesh_for(128, 128))  # fail early when there is no OpenGL

    def mesh_for(self, width: int, height: int) -> TemplateMesh:
        """The template used for images of this size (level of detail)."""
        for px, mesh in self.lods:
            if max(width, height) <= px:
                return mesh
        return self.mesh

    def _raster_for(self, mesh: TemplateMesh) -> MeshRasterizer:
        key = id(mesh)
        if key not in self._raster:
            self._raster[key] = MeshRasterizer(mesh, self.samples, self.max_batch)
        return self._raster[key]

    def close(self) -> None:
        """Release the OpenGL contexts."""
        for r in self._raster.values():
            r.release()
        self._raster.clear()

    def __enter__(self) -> HandRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API -------------------------------------------------------------------------
    def render(self, joints: Any, K: Any, image_size: int | tuple[int, int],
               handedness: str | Sequence[str] | Sequence[bool], *,
               shape: HandShape | None = None, appearance: Appearance | None = None,
               seed: int = 0, indices: Sequence[int] | np.ndarray | None = None,
               sensor_noise: DepthNoise | None = None) -> RenderedHands:
        """Render B hands, one per camera.

        Args:
            joints: (B, 21, 3) metres, camera frame (OpenCV axes), FreiHAND/MediaPipe order;
                every joint in front of the camera (z > 0).
            K: (3, 3) or (B, 3, 3) intrinsics in pixels of the output image.
            image_size: W (square) or (W, H) pixels.
            handedness: "left"/"right" for all, or B of them (or B bools, True = left).
            shape, appearance: per-sample parameters (B each); None draws them at random.
            seed, indices: randomness of sample i comes from ``(seed, indices[i])``
                (default indices ``0..B-1``).
            sensor_noise: also return ``sensor_depth`` degraded with these parameters.

        Returns:
            :class:`RenderedHands`.

        Raises:
            ValueError: wrong shapes, NaN/inf, a joint at or behind the camera (z <= 0), a K
                with zero focal length or a bad bottom row, bad sizes, handedness, seeds.
        """
        j = _check_joints(joints)
        n = len(j)
        k = _check_K(K, n)
        if np.any(j[..., 2] <= 0):
            b = int(np.argwhere(j[..., 2] <= 0)[0, 0])
            raise ValueError(f"joints must lie in front of the camera (z > 0); sample {b} has "
                             f"min z = {j[b, :, 2].min():.4g} m (hand behind the camera?)")
        w, h = _check_size(image_size)
        is_left = _check_handedness(handedness, n)
        idx = self._indices(seed, indices, n)
        shape = self._shape(shape, n, idx, seed)
        app = appearance if appearance is not None else sample_appearance(_rngs(seed, idx, 0))
        if len(app) != n:
            raise ValueError(f"appearance must describe {n} samples; got {len(app)}")
        bg_rngs = _rngs(seed, idx, 2)
        post_rngs = _rngs(seed, idx, 3)
        return self._render(j, k, w, h, is_left, shape, app, bg_rngs, post_rngs, sensor_noise,
                            None)

    def render_views(self, joints: Any, K: Any, extrinsics: Any,
                     image_size: int | tuple[int, int],
                     handedness: str | Sequence[str] | Sequence[bool], *,
                     shape: HandShape | None = None, appearance: Appearance | None = None,
                     seed: int = 0, indices: Sequence[int] | np.ndarray | None = None,
                     sensor_noise: DepthNoise | None = None) -> RenderedHands:
        """Render B hands, each seen by V calibrated cameras (a multi-view rig).

        Args:
            joints: (B, 21, 3) metres in the rig's world frame.
            K: (B, V, 3, 3) intrinsics. extrinsics: (B, V, 4, 4) world -> camera rigid
                transforms (``handpose.core.data.synthetic.placement.place(views=V)`` makes
                both).
            appearance: B appearances whose directions (lights, sky) are in the world frame;
                every view of a hand shares its shape and appearance.
            Others as :meth:`render`.

        Returns:
            :class:`RenderedHands` of B * V images, hand-major (image ``b * V + v``), with
            ``joints`` in each camera's frame and ``extrinsics`` set.

        Raises:
            ValueError: as :meth:`render`, and extrinsics that are not rigid transforms.
        """
        jw = _check_joints(joints)
        n = len(jw)
        e = _as_array(extrinsics, "extrinsics")
        if e.ndim != 4 or e.shape[0] != n or e.shape[2:] != (4, 4) or e.shape[1] < 1:
            raise ValueError(f"extrinsics must have shape ({n}, V, 4, 4); got {e.shape}")
        v = e.shape[1]
        rot = e[..., :3, :3]
        if not np.isfinite(e).all() or np.abs(rot @ np.swapaxes(rot, -1, -2) - np.eye(3)).max(
        ) > 1e-6 or np.abs(np.linalg.det(rot) - 1).max() > 1e-6 or np.abs(
                e[..., 3, :] - [0, 0, 0, 1]).max() > 1e-9:
            raise ValueError("extrinsics must be finite rigid transforms [R t; 0 0 0 1] with "
                             "R a rotation")
        k = _as_array(K, "K")
        if k.shape != (n, v, 3, 3):
            raise ValueError(f"K must have shape ({n}, {v}, 3, 3); got {k.shape}")
        cam = np.einsum("bvij,bkj->bvki", rot, jw) + e[:, :, None, :3, 3]
        flat = cam.reshape(n * v, 21, 3)
        if np.any(flat[..., 2] <= 0):
            b = int(np.argwhere(flat[..., 2] <= 0)[0, 0])
            raise ValueError(f"joints must lie in front of every camera; hand {b // v} is "
                             f"behind camera {b % v}")
        kf = _check_K(k.reshape(n * v, 3, 3), n * v)
        w, h = _check_size(image_size)
        is_left = np.repeat(_check_handedness(handedness, n), v)
        idx = self._indices(seed, indices, n)
        shape = self._shape(shape, n, idx, seed)
        app = appearance if appearance is not None else sample_appearance(_rngs(seed, idx, 0))
        if len(app) != n:
            raise ValueError(f"appearance must describe {n} samples; got {len(app)}")
        rep = np.repeat(np.arange(n), v)
        app_v = app.take(rep).rotated(rot.reshape(n * v, 3, 3))
        bg = [r for i in idx for r in
              (np.random.default_rng([seed, RENDER_STREAM, int(i), 2, vv]) for vv in range(v))]
        post = [r for i in idx for r in
                (np.random.default_rng([seed, RENDER_STREAM, int(i), 3, vv]) for vv in range(v))]
        return self._render(flat, kf, w, h, is_left, shape.take(rep), app_v, bg, post,
                            sensor_noise, e.reshape(n * v, 4, 4))

    # -- internals --------------------------------------------------------------------------
    @staticmethod
    def _tolerance(mesh: TemplateMesh, mats: torch.Tensor, jr: torch.Tensor,
                   kfac: np.ndarray) -> torch.Tensor:
        """(B, 21) metres: depth of each joint's flesh ellipsoid (the template's
        ``joint_extent`` along ``joint_frames``, carried by the joint's bone transform and
        thickened like the mesh) along the ray to the camera, plus 1.5 mm."""
        lin = mats[:, _JOINT_BONE, :, :3].double()  # (B, 21, 3, 3)
        axes = torch.as_tensor(mesh.joint_frames * mesh.joint_extent[:, None, :])  # (21, 3, 3)
        k = torch.as_tensor(kfac[:, _JOINT_REGION])[..., None, None]
        m = lin @ axes[None] * k  # columns: posed semi-axes
        ray = -jr.double() / torch.linalg.norm(jr.double(), dim=-1, keepdim=True)
        y = torch.linalg.solve(m, ray[..., None])[..., 0]
        return (1.0 / torch.linalg.norm(y, dim=-1) + _TOL_EXTRA).float()

    @staticmethod
    def _indices(seed: int, indices: Any, n: int) -> np.ndarray:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
        idx = np.arange(n) if indices is None else np.asarray(indices)
        if idx.shape != (n,) or (n and (idx.dtype.kind not in "iu" or idx.min() < 0)):
            raise ValueError(f"indices must be {n} integers >= 0; got {indices!r:.80}")
        return idx

    @staticmethod
    def _shape(shape: HandShape | None, n: int, idx: np.ndarray, seed: int) -> HandShape:
        out = shape if shape is not None else sample_shape(_rngs(seed, idx, 1))
        if len(out) != n:
            raise ValueError(f"shape must describe {n} samples; got {len(out)}")
        return out

    def _render(self, j: np.ndarray, K: np.ndarray, w: int, h: int, is_left: np.ndarray,
                shape: HandShape, app: Appearance, bg_rngs: list, post_rngs: list,
                sensor_noise: DepthNoise | None, extrinsics: np.ndarray | None
                ) -> RenderedHands:
        n = len(j)
        mesh = self.mesh_for(w, h)
        mirror = np.where(is_left, -1.0, 1.0)
        jr = torch.as_tensor(j * np.stack([mirror, np.ones(n), np.ones(n)], 1)[:, None],
                             dtype=torch.float32)
        rest = torch.as_tensor(mesh.rest_joints, dtype=torch.float32)
        bend = torch.as_tensor(shape.wrist_bend, dtype=torch.float32)
        if self.arm_away:
            bend = arm_away_bend(jr, rest, bend)
            shape = HandShape(shape.thickness, bend.numpy().astype(np.float64),
                              shape.forearm_scale)
        mats = bone_transforms(jr, rest, bend,
                               torch.as_tensor(shape.forearm_scale, dtype=torch.float32))
        size = hand_size(jr, rest).numpy().astype(np.float64)
        kfac = np.asarray(shape.thickness, np.float64) * size[:, None]  # (B, 3)
        bgs = np.stack([self.backgrounds.sample(r, w, h) for r in bg_rngs])  # sRGB
        env = (np.clip(bgs, 0, 1) ** 2.2).reshape(n, -1, 3).mean(1)
        p = np.zeros((n, NUM_PARAM_SLOTS, 4), np.float32)
        p[:, :63] = mats.reshape(n, 63, 4).numpy()
        p[:, 63, :3] = kfac - 1.0
        p[:, 63, 3] = mirror
        p[:, 64, :3] = K[:, 0]
        p[:, 65, :3] = K[:, 1]
        p[:, APPEARANCE_OFFSET:] = app.shader_params(env)
        rgba, label = self._raster_for(mesh).render(p, w, h)
        depth = torch.from_numpy(label[..., 0].copy())
        parts = torch.from_numpy(np.rint(label[..., 1]).astype(np.uint8))
        mask = parts > 0
        depth = torch.where(mask, depth, torch.zeros_like(depth))
        rgb = composite(rgba, bgs, app.blur_sigma, app.noise_sigma, post_rngs,
                        antialias=self.samples == 1, depth=label[..., 0],
                        occlusion=app.occlusion)
        jt = torch.as_tensor(j, dtype=torch.float64)
        uv = project(jt, torch.as_tensor(K, dtype=torch.float64))
        tol = self._tolerance(mesh, mats, jr, kfac)
        # a tip lies on the silhouette when its finger points sideways: test a point 1.5 mm
        # inside the fingertip instead
        probe = jt.clone()
        back = jt[:, _TIPS - 1] - jt[:, _TIPS]
        probe[:, _TIPS] += back * (_TIP_PROBE / torch.linalg.norm(back, dim=-1,
                                                                  keepdim=True).clamp_min(1e-9))
        vis = joint_visibility(project(probe, torch.as_tensor(K, dtype=torch.float64)),
                               probe[..., 2], depth, tol)
        sensor = None
        if sensor_noise is not None:
            sensor = torch.cat([
                add_depth_noise(depth[i:i + 1], sensor_noise,
                                torch.Generator().manual_seed(int(r.integers(2**62))))
                for i, r in enumerate(post_rngs)])
        return RenderedHands(
            rgb=rgb, depth=depth, mask=mask, parts=parts, joints=jt.float(), uv=uv.float(),
            K=torch.as_tensor(K, dtype=torch.float32), visibility=vis, joint_tolerance=tol,
            handedness=tuple("left" if b else "right" for b in is_left), sensor_depth=sensor,
            extrinsics=None if extrinsics is None else torch.as_tensor(extrinsics,
                                                                       dtype=torch.float32),
            appearance=app, shape=shape,
        )
