"""Test-time refinement of 3D hand poses against a depth map (Wan et al.'s energies at run time).

A few Adam steps move the 21 joints so that the 41-sphere hand model
(:func:`~handpose.core.spheres.spheres_from_joints`) explains the observed depth:

    E = w_d2m  L_d2m(points, spheres)          every observed hand point near a sphere surface
      + w_m2d  L_m2d(render(spheres), depth)    the rendered depth matches the observed one
      + w_col  collision(spheres)               fingers do not interpenetrate
      + w_bone bone_length_band(joints, L0)     bones stay in [0.80, 1.05] x their start length
      + w_prior mean |J - J0|^2                 stay near the network's pose (few data: holes)

(:mod:`handpose.core.losses.fitting`, METHODS §6.) Per hand, the depth map is cropped around
the projected joints (a square ``margin`` x the keypoint box, resampled to ``render_size``
pixels with nearest-neighbour): pixels within ``band`` metres of the hand's median joint depth
are the hand (its points, subsampled to at most ``max_points``), every other valid pixel is
set to the renderer's ``far`` so L_m2d compares alike, holes are ignored. All hands of a frame
are optimised in one batch. The caller times it (``fit`` stage of the pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..geometry.camera import normalize_pixels, project
from ..geometry.crop import crop_from_keypoints, crop_image, crop_intrinsics
from ..losses.fitting import bone_length_band, collision, data_to_model, model_to_data
from ..render_depth import render_depth_perspective
from ..skeleton import BONES, NUM_JOINTS
from ..spheres import spheres_from_joints

__all__ = ["DepthFitParams", "DepthFit", "fit_to_depth"]


@dataclass(frozen=True)
class DepthFitParams:
    """Settings of :func:`fit_to_depth` (*choose* values, tuned on ``real_rgbd``-like frames).

    Attributes:
        steps: Adam steps (5-10 keep it within a few ms per hand).
        lr: Adam step size in metres (Adam's steps are about this long).
        w_d2m, w_m2d, w_collision: weights of the energies in metres.
        w_bone: weight of the bone-length band (square metres).
        w_prior: weight of the mean squared displacement from the start (square metres).
        margin: crop side / keypoint-box side of the depth window.
        render_size: side of the rendered / observed depth window in pixels.
        band: metres around the median joint depth that count as the hand.
        max_points: at most this many observed points per hand for L_d2m.
    """

    steps: int = 8
    lr: float = 0.002
    w_d2m: float = 1.0
    w_m2d: float = 1.0
    w_collision: float = 0.5
    w_bone: float = 100.0
    w_prior: float = 20.0
    margin: float = 1.3
    render_size: int = 24
    band: float = 0.08
    max_points: int = 400

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"DepthFitParams.steps must be an int >= 0; got {self.steps!r}")
        for name in ("lr", "margin", "band"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DepthFitParams.{name} must be > 0; got {getattr(self, name)}")
        if self.render_size < 4 or self.max_points < 1:
            raise ValueError("DepthFitParams.render_size must be >= 4 and max_points >= 1")


@dataclass(frozen=True)
class DepthFit:
    """Result of :func:`fit_to_depth`.

    Attributes:
        joints: (N, 21, 3) metres, refined.
        spheres: (N, 41, 4) centres and radii of the refined sphere model, metres.
        energy_start, energy_end: (N,) total energy before and after.
        points: (N,) number of observed hand points used per hand.
    """

    joints: np.ndarray
    spheres: np.ndarray
    energy_start: np.ndarray
    energy_end: np.ndarray
    points: np.ndarray


def _observations(joints: np.ndarray, depth: np.ndarray, K: np.ndarray,
                  p: DepthFitParams) -> tuple[np.ndarray, ...]:
    """Per hand: crop K (3, 3), observed window (R, R), valid (R, R), far, points (M, 3)."""
    n, r = len(joints), p.render_size
    uv = np.asarray(project(joints, K, min_depth=1e-3))
    Ks = np.zeros((n, 3, 3))
    obs = np.zeros((n, r, r))
    valid = np.zeros((n, r, r), bool)
    far = np.zeros(n)
    pts = np.zeros((n, p.max_points, 3))
    mask = np.zeros((n, p.max_points))
    jj, ii = np.meshgrid(np.arange(r, dtype=np.float64), np.arange(r, dtype=np.float64))
    grid = np.stack([jj, ii], -1).reshape(-1, 2)
    for h in range(n):
        A = np.asarray(crop_from_keypoints(uv[h], p.margin, r))
        Ks[h] = np.asarray(crop_intrinsics(K, A))
        win = crop_image(depth.astype(np.float32), A, r, interpolation="nearest")
        win = np.where(np.isfinite(win), win, 0.0).astype(np.float64)
        zc = float(np.median(joints[h, :, 2]))
        far[h] = zc + p.band + 0.05
        ok = win > 0
        hand = ok & (np.abs(win - zc) < p.band)
        valid[h] = ok
        obs[h] = np.where(hand, win, far[h])
        idx = np.flatnonzero(hand.reshape(-1))
        if idx.size > p.max_points:
            idx = idx[np.linspace(0, idx.size - 1, p.max_points).astype(np.int64)]
        if idx.size:
            xy = np.asarray(normalize_pixels(grid[idx], Ks[h]))
            z = win.reshape(-1)[idx, None]
            pts[h, :idx.size] = np.concatenate([xy * z, z], -1)
            mask[h, :idx.size] = 1.0
    return Ks, obs, valid, far, pts, mask


def fit_to_depth(joints: Any, depth: np.ndarray, K: Any, hand_scale: Any = None,
                 params: DepthFitParams | None = None) -> DepthFit:
    """Refine hand poses against a depth map with the sphere-model energies.

    Args:
        joints: (N, 21, 3) metres, camera frame (the pipeline's corrected poses).
        depth: (H, W) metres aligned to the image of ``K`` (0 / NaN = no reading).
        K: (3, 3) intrinsics.
        hand_scale: None (each hand's size from its own bones), a float or (N,) sizes
            relative to the template hand, for the sphere radii.
        params: :class:`DepthFitParams`.

    Returns:
        :class:`DepthFit`.
    """
    p = params or DepthFitParams()
    j0 = np.asarray(joints, dtype=np.float64)
    if j0.ndim != 3 or j0.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (N, 21, 3) metres; got {j0.shape}")
    if not isinstance(depth, np.ndarray) or depth.ndim != 2:
        raise ValueError(f"depth must be an (H, W) numpy array of metres; got "
                         f"{getattr(depth, 'shape', type(depth).__name__)}")
    k = np.asarray(K, dtype=np.float64)
    if k.shape != (3, 3):
        raise ValueError(f"K must have shape (3, 3); got {k.shape}")
    if not np.all(j0[..., 2] > 0):
        raise ValueError("joints must lie in front of the camera (Z > 0 m)")
    n = len(j0)
    if n == 0:
        empty = np.zeros((0,))
        return DepthFit(j0.copy(), np.zeros((0, 41, 4)), empty, empty, empty)
    Ks, obs, valid, far, pts, pmask = _observations(j0, depth, k, p)
    t = {name: torch.from_numpy(a).float() for name, a in
         (("Ks", Ks), ("obs", obs), ("far", far), ("pts", pts), ("pmask", pmask))}
    tvalid = torch.from_numpy(valid)
    start = torch.from_numpy(j0).float()
    bones = torch.tensor(BONES, dtype=torch.int64)
    ref = torch.linalg.vector_norm(start[:, bones[:, 1]] - start[:, bones[:, 0]], dim=-1)
    scale: Any = None
    if hand_scale is not None:
        scale = torch.as_tensor(np.broadcast_to(np.asarray(hand_scale, np.float64), (n,)).copy()
                                ).float()
    has_pts = (t["pmask"].sum(1) > 0).float()
    size = (p.render_size, p.render_size)

    def energy(j: torch.Tensor) -> torch.Tensor:
        centres, radii = spheres_from_joints(j, scale)
        rendered, _ = render_depth_perspective(centres, radii, t["Ks"], size, far=t["far"])
        e = p.w_m2d * model_to_data(rendered, t["obs"], tvalid, reduction="none")
        e = e + p.w_d2m * has_pts * data_to_model(t["pts"], centres, radii, t["pmask"],
                                                  reduction="none")
        e = e + p.w_collision * collision(centres, radii, reduction="none")
        e = e + p.w_bone * bone_length_band(j, ref, reduction="none")
        return e + p.w_prior * ((j - start) ** 2).sum(-1).mean(-1)

    x = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=p.lr)
    with torch.no_grad():
        e_start = energy(x)
    for _ in range(p.steps):
        opt.zero_grad(set_to_none=True)
        energy(x).sum().backward()
        opt.step()
    with torch.no_grad():
        e_end = energy(x)
        centres, radii = spheres_from_joints(x, scale)
    out = x.detach().double().numpy()
    spheres = np.concatenate([centres.double().numpy(), radii.double().numpy()[..., None]], -1)
    return DepthFit(out, spheres, e_start.double().numpy(), e_end.double().numpy(),
                    pmask.sum(1))
