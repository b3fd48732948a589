"""Smooth hand trajectories for synthetic video: key poses with holds and minimum-jerk
transitions, smooth joint jitter, smooth global rotation and motion, optional exits.

* Articulation: a sequence of key poses (:mod:`.keyposes`, each perturbed once), held for
  ``hold_s`` and joined by minimum-jerk transitions (``10 s^3 - 15 s^4 + 6 s^5``) of
  ``move_s``; plus Gaussian-low-pass jitter on every angle; clipped into the joint limits,
  so every frame is feasible (the palm and bone lengths are fixed for the whole video).
* Orientation: waypoints from the sampler's orientation distribution, each at most
  ``turn_deg`` from the previous, joined by minimum-jerk slerps.
* Position: image-space waypoints (and a depth giving the hand ``fill`` of the frame)
  joined by a clamped cubic spline; an *exit* ``(t0, t1)`` (seconds) sends the hand fully
  out of the frame through the nearer side edge and back in between ``t0`` and ``t1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from .keyposes import KEY_POSE_NAMES, key_pose_angles
from .placement import image_boxes, sphere_model
from .sampler import HandSampler

__all__ = ["TrajectoryConfig", "Trajectory", "min_jerk", "sample_trajectory"]

_PALM = [0, 5, 9, 13, 17]
_HAND_EXTENT_M: Final = 0.19  # template hand's silhouette length (18.2 cm + finger radius)


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk timing ``10 s^3 - 15 s^4 + 6 s^5`` of s clipped to [0, 1] (zero velocity
    and acceleration at both ends)."""
    s = np.clip(np.asarray(s, np.float64), 0.0, 1.0)
    return s * s * s * (10.0 - 15.0 * s + 6.0 * s * s)


@dataclass(frozen=True)
class TrajectoryConfig:
    """Timing and amplitudes of :func:`sample_trajectory` (seconds, degrees, fractions).

    Attributes:
        fps: frames per second.
        hold_s, move_s: [lo, hi] duration of a key-pose hold / transition.
        pose_noise_deg: std of the one-off perturbation of each key pose occurrence.
        jitter_deg, jitter_hz: std and bandwidth of the smooth per-frame angle jitter.
        turn_s: [lo, hi] time between orientation waypoints; turn_deg: max angle between them.
        drift_s: [lo, hi] time between position waypoints.
        drift_step: max image distance between consecutive position waypoints, as a
            fraction of min(W, H).
        fill: [lo, hi] hand size ``~ hand length / min(W, H)`` at the waypoints.
        margin: fraction of min(W, H) kept between the hand's centre box and the border.
    """

    fps: float = 30.0
    hold_s: tuple[float, float] = (0.25, 0.7)
    move_s: tuple[float, float] = (0.6, 1.2)
    pose_noise_deg: float = 4.0
    jitter_deg: float = 2.0
    jitter_hz: float = 1.0
    turn_s: tuple[float, float] = (1.2, 2.2)
    turn_deg: float = 55.0
    drift_s: tuple[float, float] = (0.9, 1.6)
    drift_step: float = 0.25
    fill: tuple[float, float] = (0.4, 0.6)
    margin: float = 0.05

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0; got {self.fps}")
        for name in ("hold_s", "move_s", "turn_s", "drift_s", "fill"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be [lo, hi] with 0 < lo <= hi; got {(lo, hi)}")
        if min(self.pose_noise_deg, self.jitter_deg, self.turn_deg, self.margin,
               self.drift_step) < 0:
            raise ValueError("pose_noise_deg, jitter_deg, turn_deg, margin and drift_step "
                             "must be >= 0")
        if not self.jitter_hz > 0:
            raise ValueError(f"jitter_hz must be > 0; got {self.jitter_hz}")


@dataclass(frozen=True)
class Trajectory:
    """A hand over T frames seen by one fixed camera (numpy float64).

    Attributes:
        joints: (T, 21, 3) metres, camera frame.
        flexion, abduction: (T, 15) radians. rotation: (T, 3, 3) hand -> camera.
        translation: (T, 3) metres (``joints = rotation @ hand joints + translation``).
        bone_lengths: (20,) metres. hand_scale: hand size. is_left: handedness.
        K: (3, 3). width, height: pixels. fps: frames per second.
        keys: (name, first frame of its hold) per key pose occurrence.
        box: (T, 4) silhouette box x0, y0, x1, y1 (sphere model), pixels.
        present: (T,) bool, the silhouette box overlaps the image.
        exits: the requested exits, seconds.
    """

    joints: np.ndarray
    flexion: np.ndarray
    abduction: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    bone_lengths: np.ndarray
    hand_scale: float
    is_left: bool
    K: np.ndarray
    width: int
    height: int
    fps: float
    keys: tuple[tuple[str, int], ...]
    box: np.ndarray
    present: np.ndarray
    exits: tuple[tuple[float, float], ...]

    def __len__(self) -> int:
        return len(self.joints)


def _articulation(n: int, rng: np.random.Generator, cfg: TrajectoryConfig,
                  sampler: HandSampler, keys: tuple[str, ...] | None
                  ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]]]:
    """(T, 15) flexion and abduction, and the (key, hold start frame) schedule."""
    model = sampler.model
    names = list(sampler.config.key_poses)
    flex = np.empty((n, 15))
    abd = np.empty((n, 15))
    sched: list[tuple[str, int]] = []
    frame, k, prev = 0, 0, None
    while frame < n:
        if keys is not None:
            name = keys[k % len(keys)]
        else:
            choices = [x for x in names if x != (sched[-1][0] if sched else None)] or names
            name = choices[int(rng.integers(len(choices)))]
        kf, ka = key_pose_angles((name,), model)
        noise = rng.normal(size=(2, 15)) * np.deg2rad(cfg.pose_noise_deg)
        noise[1] *= 0.3
        cur = np.stack([kf[0] + noise[0], ka[0] + noise[1]])
        hold = int(round(rng.uniform(*cfg.hold_s) * cfg.fps))
        move = max(1, int(round(rng.uniform(*cfg.move_s) * cfg.fps)))
        if prev is not None:  # transition from the previous key, then hold this one
            s = min_jerk(np.arange(1, move + 1) / move)[:, None, None]
            seg = (1 - s) * prev + s * cur
            m = min(move, n - frame)
            flex[frame:frame + m], abd[frame:frame + m] = seg[:m, 0], seg[:m, 1]
            frame += m
        sched.append((name, frame))
        m = max(0, min(max(hold, 1), n - frame))
        flex[frame:frame + m], abd[frame:frame + m] = cur[0], cur[1]
        frame += m
        prev, k = cur, k + 1
    sigma = cfg.fps / (2.0 * np.pi * cfg.jitter_hz)
    white = rng.normal(size=(n, 30))
    # gaussian_filter1d of unit white noise has std 1 / sqrt(2 sqrt(pi) sigma)
    jit = gaussian_filter1d(white, sigma, axis=0, mode="reflect") * np.sqrt(
        2.0 * np.sqrt(np.pi) * sigma)
    jit *= np.deg2rad(cfg.jitter_deg)
    flex = flex + jit[:, :15]
    abd = abd + 0.3 * jit[:, 15:]
    lim_f, lim_a = model.flexion_limits, model.abduction_limits
    flex = np.clip(flex, lim_f[:, 0] + 1e-4, lim_f[:, 1] - 1e-4)
    abd = np.clip(abd, lim_a[:, 0] + 1e-4, lim_a[:, 1] - 1e-4)
    return flex, abd, sched


def _orientation(n: int, rng: np.random.Generator, cfg: TrajectoryConfig,
                 sampler: HandSampler, first: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations: waypoints at most turn_deg apart, minimum-jerk slerps."""
    out = np.empty((n, 3, 3))
    frame, cur = 0, Rotation.from_matrix(first)
    while frame < n:
        seg = max(2, int(round(rng.uniform(*cfg.turn_s) * cfg.fps)))
        nxt = Rotation.from_matrix(sampler.orientations(rng.random((1, 8)))[0])
        delta = (cur.inv() * nxt).as_rotvec()
        ang = np.linalg.norm(delta)
        limit = np.deg2rad(cfg.turn_deg)
        if ang > limit:
            delta *= limit / ang
        s = min_jerk(np.arange(seg) / seg)
        m = min(seg, n - frame)
        out[frame:frame + m] = (cur * Rotation.from_rotvec(s[:m, None] * delta)).as_matrix()
        cur = cur * Rotation.from_rotvec(delta)
        frame += m
    return out


def _positions(n: int, rng: np.random.Generator, cfg: TrajectoryConfig, K: np.ndarray,
               width: int, height: int, scale: float,
               exits: tuple[tuple[float, float], ...]) -> np.ndarray:
    """(T, 3) camera-frame positions of the palm centre."""
    short = min(width, height)
    f = 0.5 * (K[0, 0] + K[1, 1])
    times: list[float] = []
    uvz: list[tuple[float, float, float]] = []
    t, end = 0.0, (n - 1) / cfg.fps
    step = cfg.drift_step * short
    while t <= end + 2.0:
        fill = rng.uniform(*cfg.fill)
        half = 0.5 * fill * short + cfg.margin * short
        lo_u, hi_u = min(half, width / 2), max(width - half, width / 2)
        lo_v, hi_v = min(half, height / 2), max(height - half, height / 2)
        u, v = rng.uniform(lo_u, hi_u), rng.uniform(lo_v, hi_v)
        if uvz:  # at most drift_step from the previous waypoint, still inside the margins
            pu, pv, _ = uvz[-1]
            d = np.hypot(u - pu, v - pv)
            if d > step:
                u, v = pu + (u - pu) * step / d, pv + (v - pv) * step / d
            u, v = float(np.clip(u, lo_u, hi_u)), float(np.clip(v, lo_v, hi_v))
        times.append(t)
        uvz.append((u, v, f * _HAND_EXTENT_M * scale / (fill * short)))
        t += rng.uniform(*cfg.drift_s)
    ts, pts = np.array(times), np.array(uvz)
    for t0, t1 in exits:
        keep = (ts < t0 - 0.3) | (ts > t1 + 0.3)
        mid = 0.5 * (t0 + t1)
        z = float(np.interp(mid, ts, pts[:, 2]))
        size = f * _HAND_EXTENT_M * scale / z
        u_in = float(np.interp(t0, ts, pts[:, 0]))
        right = u_in > width / 2
        edge_in = width - 0.5 * size if right else 0.5 * size
        out_u = width + 2.0 * size if right else -2.0 * size  # the forearm leaves too
        v_mid = float(np.interp(mid, ts, pts[:, 1]))
        extra_t = [t0, mid, t1]
        extra = [(edge_in, v_mid, z), (out_u, v_mid, z), (edge_in, v_mid, z)]
        ts = np.concatenate([ts[keep], extra_t])
        pts = np.concatenate([pts[keep], extra])
        order = np.argsort(ts)
        ts, pts = ts[order], pts[order]
    spline = CubicSpline(ts, pts, axis=0, bc_type="clamped")
    uvz_t = spline(np.arange(n) / cfg.fps)
    z = np.maximum(uvz_t[:, 2], 0.15)
    x = (uvz_t[:, 0] - K[0, 2]) * z / K[0, 0]
    y = (uvz_t[:, 1] - K[1, 2]) * z / K[1, 1]
    return np.stack([x, y, z], -1)


def sample_trajectory(
    num_frames: int,
    K: np.ndarray,
    width: int,
    height: int,
    rng: np.random.Generator | int | None = None,
    *,
    config: TrajectoryConfig | None = None,
    sampler: HandSampler | None = None,
    keys: tuple[str, ...] | list[str] | None = None,
    exits: tuple[tuple[float, float], ...] | list[tuple[float, float]] = (),
    handedness: str | None = None,
) -> Trajectory:
    """A smooth video of one hand (see the module docstring).

    Args:
        num_frames: T >= 1.
        K: (3, 3) intrinsics of the fixed camera. width, height: image size, pixels.
        rng: a Generator or a seed.
        config: timing/amplitudes (default :class:`TrajectoryConfig`).
        sampler: gives the hand's shape, its orientations and the key poses it may use.
        keys: explicit key pose sequence (cycled); default random, no immediate repeat.
        exits: (t0, t1) seconds: the hand leaves the frame after t0 and is back by t1.
        handedness: "left"/"right" to force it (default: the sampler's draw).

    Returns:
        a :class:`Trajectory`; every frame's joints are feasible.

    Raises:
        ValueError: bad sizes, K, key names, handedness or exits.
    """
    cfg = config or TrajectoryConfig()
    sampler = sampler or HandSampler()
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ValueError(f"num_frames must be an integer >= 1; got {num_frames!r}")
    K = np.asarray(K, np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K must be a finite (3, 3) intrinsic matrix; got shape {K.shape}")
    if not (isinstance(width, (int, np.integer)) and isinstance(height, (int, np.integer))
            and width > 0 and height > 0):
        raise ValueError(f"width and height must be positive integers; got {width}x{height}")
    if keys is not None and (not keys or any(k not in KEY_POSE_NAMES for k in keys)):
        raise ValueError(f"keys must be a non-empty list of {KEY_POSE_NAMES}; got {keys}")
    if handedness not in (None, "left", "right"):
        raise ValueError(f"handedness must be 'left', 'right' or None; got {handedness!r}")
    dur = num_frames / cfg.fps
    exits = tuple((float(a), float(b)) for a, b in exits)
    for a, b in exits:
        if not 0 <= a < b <= dur:
            raise ValueError(f"exits must be (t0, t1) with 0 <= t0 < t1 <= {dur:g} s; got "
                             f"{(a, b)}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = int(num_frames)
    shape = sampler.sample(1, gen)
    is_left = bool(shape.is_left[0]) if handedness is None else handedness == "left"
    flex, abd, sched = _articulation(n, gen, cfg, sampler, None if keys is None else tuple(keys))
    ones = np.ones(n)
    hand = sampler.articulate(flex, abd, np.broadcast_to(shape.bone_lengths, (n, 20)),
                              shape.cupping[0] * ones, shape.spread[0] * ones,
                              np.full(n, is_left))
    rot = _orientation(n, gen, cfg, sampler, shape.rotation[0])
    scale = float(shape.hand_scale[0])
    pos = _positions(n, gen, cfg, K, width, height, scale, exits)
    anchor = hand[:, _PALM].mean(1)
    trans = pos - np.einsum("nij,nj->ni", rot, anchor)
    joints = np.einsum("nij,nkj->nki", rot, hand) + trans[:, None]
    c, r = sphere_model(joints, np.full(n, scale), sampler.model)
    box = image_boxes(c, r, np.broadcast_to(K, (n, 3, 3)))
    present = (box[:, 2] > -0.5) & (box[:, 0] < width - 0.5) & (box[:, 3] > -0.5) & (
        box[:, 1] < height - 0.5)
    return Trajectory(
        joints=joints, flexion=flex, abduction=abd, rotation=rot, translation=trans,
        bone_lengths=shape.bone_lengths[0].copy(), hand_scale=scale, is_left=is_left, K=K,
        width=int(width), height=int(height), fps=float(cfg.fps), keys=tuple(sched), box=box,
        present=present, exits=exits,
    )
