"""Synthetic depth of sphere-model hands, made on the fly (Wan et al.'s initialisation data).

Hands come from the project's pose sampler (:class:`~handpose.core.data.synthetic.sampler.
HandSampler`, indexed: hand i depends on ``(seed, i)`` only). Each hand is placed in front of a
camera, rendered as a perspective depth map of its 41 spheres (plus an optional forearm of
spheres) by :func:`~handpose.core.render.render_depth_perspective`, degraded by sensor-like
noise (:func:`~handpose.core.data.depth_noise.add_depth_noise`) and cropped into the crop cube
by :func:`~handpose.core.data.depth_crop.depth_to_cube`, exactly as real depth is, so the
network sees one kind of input. With ``views > 1`` the same hand is seen by a calibrated rig
(cameras turned about the hand by ``view_angle_deg`` steps): the multi-view setting.

The virtual sensor is a window of ``px_per_cell x size`` pixels around the hand whose focal
length makes the cube's front face fill it (the principal point moves so that the hand's centre
projects to the window's centre, so off-axis perspective is exact).

Determinism: the hands, their placement and the radius factors depend on ``(seed, index)``
only; the sensor noise of a batch is seeded by its first index and its size (the training
loop's batches are themselves deterministic, so runs and resumes repeat exactly).

The output is a *view batch* (the format the fitting energies read, :func:`view_batch_keys`):
``input`` (B, V, 1, S, S), ``depth`` / ``hand`` / ``valid`` (B, V, S, S), ``centre`` (B, V, 3),
``side`` (B, V), ``to_world`` (B, V, 4, 4) camera v -> canonical (camera 0) frame, ``joints``
(B, V, 21, 3) metres in each camera, ``has_joints`` (B,), ``hand_scale`` (B,).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from handpose.core.data.depth_crop import depth_to_cube
from handpose.core.data.depth_noise import DepthNoise, add_depth_noise
from handpose.core.data.synthetic.sampler import HandSampler, SamplerConfig
from handpose.core.data.synthetic.seeding import PLACEMENT_STREAM, RENDER_STREAM, sample_rng
from handpose.core.render import render_depth_perspective
from handpose.core.spheres import spheres_from_joints

__all__ = ["SynthSpec", "DepthSynthesizer", "view_batch_keys"]

_FOREARM_SPHERES = 8


def view_batch_keys() -> tuple[str, ...]:
    """The keys of a view batch (see the module docstring)."""
    return ("input", "depth", "hand", "valid", "centre", "side", "to_world", "joints",
            "has_joints", "hand_scale")


@dataclass(frozen=True)
class SynthSpec:
    """Synthetic depth data (*choose* defaults; see the module docstring).

    Attributes:
        seed: the data seed (hand i depends on (seed, i) only).
        length: size of the virtual dataset (distinct hands).
        hand_scale: [lo, hi] hand size relative to the template (the sampler's range).
        length_sigma: log-std of the sampler's per-bone length factors (hand shape).
        radius_scale: [lo, hi] extra factor on the sphere radii (finger thickness).
        distance: [lo, hi] metres from the camera to the hand.
        off_axis_deg: the hand's direction from the optical axis, at most this angle.
        px_per_cell: sensor pixels per crop cell along each axis.
        forearm: render a forearm (a chain of spheres behind the wrist).
        centre_jitter: std (metres, per axis) of the crop centre around the mean joint.
        p_left: probability of a left hand (the network is trained on right hands).
        views: cameras per hand (1 = single view).
        view_angle_deg: angle between neighbouring cameras of the rig, about the hand.
    """

    seed: int = 0
    length: int = 100_000
    hand_scale: tuple[float, ...] = (0.8, 1.2)
    length_sigma: float = 0.03
    radius_scale: tuple[float, ...] = (1.0, 1.0)
    distance: tuple[float, ...] = (0.35, 0.7)
    off_axis_deg: float = 20.0
    px_per_cell: float = 2.0
    forearm: bool = True
    centre_jitter: float = 0.01
    p_left: float = 0.0
    views: int = 1
    view_angle_deg: float = 60.0

    def __post_init__(self) -> None:
        for name in ("hand_scale", "radius_scale", "distance"):
            v = getattr(self, name)
            if len(v) != 2 or not 0 < v[0] <= v[1]:
                raise ValueError(f"{name} must be [lo, hi] with 0 < lo <= hi; got {v}")
        if self.length < 1 or self.views < 1 or self.px_per_cell <= 0:
            raise ValueError("length and views must be >= 1 and px_per_cell > 0")
        if self.centre_jitter < 0 or self.length_sigma < 0 or not 0 <= self.p_left <= 1:
            raise ValueError("centre_jitter, length_sigma >= 0 and p_left in [0, 1] required")


def _rig_rotation(v: int, angle_deg: float) -> np.ndarray:
    """Rotation of camera v about the hand: yaw by +a, -a, +2a, ... and a little pitch."""
    if v == 0:
        return np.eye(3)
    k = (v + 1) // 2
    yaw = math.radians(angle_deg) * k * (1 if v % 2 else -1)
    pitch = math.radians(10.0) * (1 if v % 2 else -1)
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return rx @ ry


class DepthSynthesizer:
    """Makes view batches of synthetic depth (see the module docstring).

    Args:
        spec: the data distribution; noise: the sensor noise.
        cube_side: metres; size: crop cells S.
    """

    def __init__(self, spec: SynthSpec, noise: DepthNoise, cube_side: float, size: int):
        self.spec, self.noise, self.side, self.size = spec, noise, float(cube_side), int(size)
        s = spec.length_sigma
        self.sampler = HandSampler(SamplerConfig(
            hand_scale=(spec.hand_scale[0], spec.hand_scale[1]), p_left=spec.p_left,
            length_sigma=(s, s, s, s)))

    def _placement(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per hand: centre position (N, 3) in camera 0, radius factor (N,), jitter (N, 3)."""
        sp = self.spec
        pos, rad, jit = [], [], []
        for i in indices.tolist():
            g = sample_rng(sp.seed, int(i), PLACEMENT_STREAM)
            u = g.random(6)
            dist = sp.distance[0] + u[0] * (sp.distance[1] - sp.distance[0])
            theta = math.radians(sp.off_axis_deg) * math.sqrt(u[1])
            phi = 2 * math.pi * u[2]
            d = np.array([math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi),
                          math.cos(theta)])
            pos.append(d * dist / d[2])
            rad.append(sp.radius_scale[0] + u[3] * (sp.radius_scale[1] - sp.radius_scale[0]))
            jit.append(g.normal(0.0, 1.0, 3) * sp.centre_jitter)
        return np.array(pos), np.array(rad), np.array(jit)

    def _forearm(self, joints: torch.Tensor, scale: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F, 3) centres and (B, F) radii of a forearm behind the wrist."""
        wrist, mid = joints[:, 0], joints[:, 9]
        axis = wrist - mid
        axis = axis / axis.norm(dim=-1, keepdim=True).clamp(min=1e-9)
        t = torch.linspace(0.03, 0.25, _FOREARM_SPHERES, dtype=joints.dtype)
        centres = wrist[:, None] + axis[:, None] * t[None, :, None] * scale[:, None, None]
        radii = (0.024 + 0.03 * t)[None] * scale[:, None]
        return centres, radii

    def __call__(self, indices: Any) -> dict[str, torch.Tensor]:
        """The view batch of these dataset indices (deterministic in the indices)."""
        idx = np.asarray(torch.as_tensor(indices).cpu().numpy(), np.int64).reshape(-1)
        sp = self.spec
        hands = self.sampler.sample_indexed(sp.seed, idx)
        pos, rad_factor, jitter = self._placement(idx)
        local = hands.oriented()  # (B, 21, 3), wrist at 0
        world = local - local.mean(1, keepdims=True) + pos[:, None]
        scale = torch.as_tensor(hands.hand_scale, dtype=torch.float32)
        gen = torch.Generator().manual_seed(int(sample_rng(sp.seed, int(idx[0]), RENDER_STREAM)
                                                .integers(2**62)) ^ len(idx))
        views: dict[str, list[torch.Tensor]] = {k: [] for k in view_batch_keys()[:8]}
        win = max(8, int(round(sp.px_per_cell * self.size)))
        for v in range(sp.views):
            rot = _rig_rotation(v, sp.view_angle_deg)
            # camera v: x_v = R (x - p) + p, so the hand centre stays where it is in the image
            cam = np.einsum("ij,nkj->nki", rot, world - pos[:, None]) + pos[:, None]
            joints = torch.as_tensor(cam, dtype=torch.float32)
            centres, radii = spheres_from_joints(joints, scale * torch.as_tensor(
                rad_factor, dtype=torch.float32))
            if sp.forearm:
                fc, fr = self._forearm(joints, scale)
                centres, radii = torch.cat([centres, fc], 1), torch.cat([radii, fr], 1)
            centre = torch.as_tensor(pos + jitter, dtype=torch.float32)
            z = torch.as_tensor(pos[:, 2], dtype=torch.float32)
            f = win * (z - self.side / 2) / self.side
            K = torch.zeros(len(idx), 3, 3)
            K[:, 0, 0], K[:, 1, 1], K[:, 2, 2] = f, f, 1.0
            K[:, 0, 2] = (win - 1) / 2 - f * centre[:, 0] / z
            K[:, 1, 2] = (win - 1) / 2 - f * centre[:, 1] / z
            with torch.no_grad():
                d, m = render_depth_perspective(centres, radii, K, (win, win), far=0.0,
                                                tau=0.001, sigma=0.5)
                d = torch.where(m > 0.5, d / m.clamp(min=1e-6), torch.zeros_like(d))
                d = add_depth_noise(d, self.noise, gen)
                crop = depth_to_cube(d, K, centre, self.side, self.size)
            to_world = torch.eye(4).repeat(len(idx), 1, 1)
            rt = torch.as_tensor(rot.T, dtype=torch.float32)
            to_world[:, :3, :3] = rt  # x = R^T (x_v - p) + p
            to_world[:, :3, 3] = torch.as_tensor(pos, dtype=torch.float32) - torch.as_tensor(
                pos, dtype=torch.float32) @ rt.T
            for key, val in (("input", crop.normalized()), ("depth", crop.depth),
                             ("hand", crop.hand), ("valid", crop.valid),
                             ("centre", crop.centre), ("side", crop.side),
                             ("to_world", to_world), ("joints", joints)):
                views[key].append(val)
        out = {k: torch.stack(v, 1) for k, v in views.items()}
        out["has_joints"] = torch.ones(len(idx), dtype=torch.bool)
        out["hand_scale"] = scale
        return out
