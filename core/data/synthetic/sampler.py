"""Pose and shape sampler of the synthetic hands: articulation, bone lengths, palm shape,
handedness and global orientation, feasible by construction (METHODS §3 limits).

Articulation is a mixture of three natural families, not independent noise per joint:

* ``key``: one grasp/gesture key pose (:mod:`.keyposes`) plus correlated angle noise;
* ``blend``: two key poses interpolated with a shared weight and a per-finger jitter (hands
  between gestures, or one finger from each);
* ``uniform``: every finger drawn inside anatomical ranges (intersected with the model's
  limits) with a grip level shared by the fingers and the DIP coupled to the PIP.

Bone lengths vary around the template with correlated factors (all phalanges, all
metacarpals, per finger, per bone) and are rescaled so that the middle finger's chain (wrist
to tip) is ``hand_scale`` times the template's; their ratios stay inside
``bone_length_range``. The palm is fanned in its plane and cupped (ring, pinky and thumb
metacarpals tilted towards the palm side). The orientation favours the fingers pointing up
in the image and palm or back views, but every direction has some probability.

Every draw is a column of a (N, :data:`NUM_UNIFORMS`) matrix of uniforms, so a sample depends
only on its row: :meth:`HandSampler.sample_indexed` makes row i from ``(seed, i)`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.special import ndtri

from ...biomech import correct_pose, count_violations, forward_kinematics
from ...biomech.frames import mirror_x
from ...handmodel import HandModel, load_hand_model
from ...skeleton import FINGERS, NUM_BONES, REFERENCE_BONE, ROOT_JOINTS
from .collision import SphereCollisions
from .keyposes import KEY_POSE_NAMES, key_pose_angles
from .orientation import camera_orientations
from .seeding import SAMPLER_STREAM, indexed_uniforms

__all__ = ["NUM_UNIFORMS", "NATURAL_RANGE_DEG", "SamplerConfig", "HandSamples", "HandSampler"]

#: Uniforms consumed per sample (columns of the matrix given to ``from_uniforms``).
NUM_UNIFORMS: Final = 128
#: Anatomical (flexion, abduction) ranges in degrees of the ``uniform`` family, per finger
#: level (thumb CMC/MCP/IP; finger MCP/PIP/DIP). Intersected with the model's limits.
NATURAL_RANGE_DEG: Final = {
    "thumb": (((-15.0, 60.0), (-45.0, 15.0)), ((-10.0, 55.0), (-5.0, 5.0)),
              ((-10.0, 80.0), (-5.0, 5.0))),
    "finger": (((-20.0, 90.0), (-18.0, 18.0)), ((0.0, 105.0), (-3.0, 3.0)),
               ((0.0, 80.0), (-3.0, 3.0))),
}
_MODES = ("key", "blend", "uniform")
_MARGIN = 1e-4  # radians kept inside every joint limit
_REF = REFERENCE_BONE[1] - 1
_MIDDLE_CHAIN = [FINGERS[2][0] - 1] + [j - 1 for j in FINGERS[2][1:]]  # bones wrist..tip
# Columns of the uniform matrix.
_C_MODE, _C_KEY_A, _C_KEY_B, _C_T, _C_LEFT, _C_SCALE, _C_CUP, _C_SPREAD = range(8)
_C_FINGER_T = slice(8, 13)  # per-finger blend jitter / grip level
_C_NOISE = slice(13, 43)  # 30 angle noises
_C_UNI = slice(43, 73)  # 30 uniform-mode angles
_C_LEN = slice(73, 100)  # 27 bone length factors
_C_ROT = slice(100, 108)  # orientation
_BONE_FINGER = np.array([(c - 1) // 4 for c in range(1, NUM_BONES + 1)])
_IS_ROOT = np.isin(np.arange(1, NUM_BONES + 1), ROOT_JOINTS)


@dataclass(frozen=True)
class SamplerConfig:
    """Distribution of the sampled hands.

    Attributes:
        mode_probs: probabilities of the ``key``, ``blend`` and ``uniform`` families.
        key_poses: key pose names the ``key``/``blend`` families draw from.
        key_noise_deg: std of the flexion noise of MCP/PIP (DIP follows the PIP's noise
            with ``2/3`` of it plus a third independently); abduction noise is 40 % of it at
            the MCP and 15 % beyond.
        hand_scale: [lo, hi] of the hand size relative to the template (uniform).
        length_sigma: (all phalanges, all metacarpals, per finger, per bone) log-std of the
            bone length factors.
        cupping_deg: [lo, hi] volar tilt of the pinky metacarpal (ring 50 %, thumb 40 %).
        spread: [lo, hi] relative change of the palm's fan angles.
        p_left: probability of a left hand.
        p_upright: probability that the finger direction is drawn around "up in the image"
            (camera -y) with concentration ``kappa``; otherwise uniformly on the sphere.
        kappa: von Mises-Fisher concentration of the upright finger directions.
        roll_bias: in [0, 0.5): how much the roll about the finger direction is pulled
            towards palm and back views (0 = uniform roll).
        max_penetration: self-collision bound on the 41-sphere model: the overlap of two
            spheres of different parts (``handpose.core.spheres.collision_pairs``) divided by
            the smaller radius. A pose beyond it is blended towards the ``open`` key pose by
            the smallest step (of 1/8) that respects it. None disables the check.
    """

    mode_probs: tuple[float, float, float] = (0.35, 0.4, 0.25)
    key_poses: tuple[str, ...] = KEY_POSE_NAMES
    key_noise_deg: float = 7.0
    hand_scale: tuple[float, float] = (0.8, 1.2)
    length_sigma: tuple[float, float, float, float] = (0.04, 0.04, 0.03, 0.03)
    cupping_deg: tuple[float, float] = (-3.0, 12.0)
    spread: tuple[float, float] = (-0.15, 0.15)
    p_left: float = 0.5
    p_upright: float = 0.75
    kappa: float = 2.0
    roll_bias: float = 0.35
    max_penetration: float | None = 1.0

    def __post_init__(self) -> None:
        p = np.asarray(self.mode_probs, np.float64)
        if p.shape != (3,) or np.any(p < 0) or not abs(p.sum() - 1.0) < 1e-9:
            raise ValueError(f"mode_probs must be 3 probabilities summing to 1; got "
                             f"{self.mode_probs}")
        if not self.key_poses or any(k not in KEY_POSE_NAMES for k in self.key_poses):
            raise ValueError(f"key_poses must be a non-empty subset of {KEY_POSE_NAMES}; got "
                             f"{self.key_poses}")
        lo, hi = self.hand_scale
        if not 0 < lo <= hi:
            raise ValueError(f"hand_scale must be [lo, hi] with 0 < lo <= hi; got "
                             f"{self.hand_scale}")
        for name, (a, b) in (("cupping_deg", self.cupping_deg), ("spread", self.spread)):
            if not a <= b:
                raise ValueError(f"{name} must be [lo, hi] with lo <= hi; got {(a, b)}")
        if not (-5.0 <= self.cupping_deg[0] and self.cupping_deg[1] <= 30.0):
            raise ValueError(f"cupping_deg must lie in [-5, 30] degrees; got "
                             f"{self.cupping_deg}")
        if not (-0.3 <= self.spread[0] and self.spread[1] <= 0.3):
            raise ValueError(f"spread must lie in [-0.3, 0.3]; got {self.spread}")
        for name, v, a, b in (("p_left", self.p_left, 0, 1), ("p_upright", self.p_upright, 0, 1),
                              ("roll_bias", self.roll_bias, 0, 0.49)):
            if not a <= v <= b:
                raise ValueError(f"{name} must lie in [{a}, {b}]; got {v}")
        if self.max_penetration is not None and not self.max_penetration > 0:
            raise ValueError(f"max_penetration must be > 0 or None; got {self.max_penetration}")
        if not (self.kappa > 0 and self.key_noise_deg >= 0
                and all(s >= 0 for s in self.length_sigma)):
            raise ValueError("kappa must be > 0, key_noise_deg and length_sigma >= 0")


@dataclass(frozen=True)
class HandSamples:
    """N sampled hands (numpy, float64, radians, metres).

    Attributes:
        joints: (N, 21, 3) in the hand frame: wrist at the origin, +y along the middle
            metacarpal, +z out of the palm; right hands have the thumb at +x, left hands are
            their mirror images (thumb at -x).
        rotation: (N, 3, 3) orientation of the hand frame in the camera frame (a camera-frame
            point is ``rotation @ joint + translation``).
        flexion, abduction: (N, 15) joint angles, chain order, as
            ``joint_angles(joints, handedness)`` reports them.
        bone_lengths: (N, 20) metres, BONES order.
        hand_scale: (N,) middle finger chain length / the template's.
        cupping, spread: (N,) palm shape parameters (radians of pinky metacarpal tilt,
            relative fan change).
        is_left: (N,) bool.
        mode: (N,) int index into ("key", "blend", "uniform").
        key_a, key_b: (N,) key pose ids (into ``config.key_poses``; -1 for ``uniform``).
        blend: (N,) weight of ``key_b`` (0 for ``key``/``uniform``).
        relaxed: (N,) weight in [0, 1] of the ``open`` pose blended in to undo a
            self-collision (0 for most hands).
        corrected: (N,) bool, True where ``correct_pose`` had to change the pose (the
            sampler is feasible by construction, so this should stay False).
    """

    joints: np.ndarray
    rotation: np.ndarray
    flexion: np.ndarray
    abduction: np.ndarray
    bone_lengths: np.ndarray
    hand_scale: np.ndarray
    cupping: np.ndarray
    spread: np.ndarray
    is_left: np.ndarray
    mode: np.ndarray
    key_a: np.ndarray
    key_b: np.ndarray
    blend: np.ndarray
    relaxed: np.ndarray
    corrected: np.ndarray

    def __len__(self) -> int:
        return len(self.joints)

    @property
    def handedness(self) -> list[str]:
        """N strings "left"/"right"."""
        return ["left" if b else "right" for b in self.is_left]

    def oriented(self) -> np.ndarray:
        """(N, 21, 3) joints rotated into the camera orientation (wrist still at 0)."""
        return np.einsum("nij,nkj->nki", self.rotation, self.joints)


def _normal(u: np.ndarray) -> np.ndarray:
    return ndtri(np.clip(u, 1e-12, 1.0 - 1e-12))


class HandSampler:
    """Samples feasible hands (see the module docstring).

    Args:
        config: the distribution (default :class:`SamplerConfig`).
        model: hand model (default the shipped one): limits, template lengths, rest palm.
    """

    def __init__(self, config: SamplerConfig | None = None, model: HandModel | None = None):
        self.config = config or SamplerConfig()
        self.model = model or load_hand_model()
        m = self.model
        self._flex_lim = m.flexion_limits + np.array([_MARGIN, -_MARGIN])
        self._abd_lim = m.abduction_limits + np.array([_MARGIN, -_MARGIN])
        self._key_flex, self._key_abd = key_pose_angles(self.config.key_poses, m, _MARGIN)
        nat = np.deg2rad(np.array([NATURAL_RANGE_DEG["thumb"]]
                                  + [NATURAL_RANGE_DEG["finger"]] * 4))  # (5, 3, 2, 2)
        nat = nat.reshape(15, 2, 2)
        self._nat_flex = np.stack([np.maximum(nat[:, 0, 0], self._flex_lim[:, 0]),
                                   np.minimum(nat[:, 0, 1], self._flex_lim[:, 1])], -1)
        self._nat_abd = np.stack([np.maximum(nat[:, 1, 0], self._abd_lim[:, 0]),
                                  np.minimum(nat[:, 1, 1], self._abd_lim[:, 1])], -1)
        roots = m.rest_pose[list(ROOT_JOINTS)]
        self._root_theta = np.arctan2(roots[:, 0], roots[:, 1])  # fan angle from +y
        self._template_chain = m.bone_lengths[_MIDDLE_CHAIN].sum()
        self._collisions = SphereCollisions(m)
        self._open = key_pose_angles(("open",), m, _MARGIN)

    # -- public API ------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> HandSamples:
        """``n`` hands from ``rng`` (a Generator, or a seed for ``numpy.random.default_rng``)."""
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be an integer >= 0; got {n!r}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return self.from_uniforms(gen.random((int(n), NUM_UNIFORMS)))

    def sample_indexed(self, seed: int, indices: np.ndarray | list[int] | range) -> HandSamples:
        """The hands with these dataset indices: hand i depends on ``(seed, i)`` only."""
        return self.from_uniforms(indexed_uniforms(seed, indices, NUM_UNIFORMS, SAMPLER_STREAM))

    def from_uniforms(self, u: np.ndarray) -> HandSamples:
        """Hands from a (N, :data:`NUM_UNIFORMS`) matrix of uniforms in [0, 1) (one row each)."""
        u = np.asarray(u, np.float64)
        if u.ndim != 2 or u.shape[1] != NUM_UNIFORMS:
            raise ValueError(f"u must have shape (N, {NUM_UNIFORMS}); got {u.shape}")
        if u.size and not (np.isfinite(u).all() and u.min() >= 0 and u.max() <= 1):
            raise ValueError("u must hold finite uniforms in [0, 1]")
        cfg = self.config
        cum = np.cumsum(cfg.mode_probs)
        mode = np.minimum(np.searchsorted(cum, u[:, _C_MODE], side="right"), 2)
        flex, abd, key_a, key_b, t = self._articulation(u, mode)
        lengths, scale = self._bone_lengths(u)
        cup = np.deg2rad(cfg.cupping_deg[0] + u[:, _C_CUP] * np.diff(cfg.cupping_deg)[0])
        spread = cfg.spread[0] + u[:, _C_SPREAD] * np.diff(cfg.spread)[0]
        palm = self._palm(cup, spread)
        right = forward_kinematics(palm, flex, abd, lengths)
        relaxed = np.zeros(len(u))
        if cfg.max_penetration is not None:
            right, flex, abd, relaxed = self._relax_collisions(palm, flex, abd, lengths, scale,
                                                               right)
        corrected = np.zeros(len(u), bool)
        bad = count_violations(right, "right", model=self.model) > 0
        if bad.any():  # safety net; by construction this does not happen (tests check)
            right[bad] = correct_pose(right[bad], lengths[bad], "right", self.model)
            corrected[bad] = True
        is_left = u[:, _C_LEFT] < cfg.p_left
        joints = np.where(is_left[:, None, None], mirror_x(right), right)
        return HandSamples(
            joints=joints, rotation=self._rotation(u[:, _C_ROT]), flexion=flex, abduction=abd,
            bone_lengths=lengths, hand_scale=scale, cupping=cup, spread=spread,
            is_left=is_left, mode=mode, key_a=key_a, key_b=key_b, blend=t, relaxed=relaxed,
            corrected=corrected,
        )

    def articulate(self, flexion: np.ndarray, abduction: np.ndarray, bone_lengths: np.ndarray,
                   cupping: np.ndarray, spread: np.ndarray, is_left: np.ndarray) -> np.ndarray:
        """Hand-frame joints (N, 21, 3) metres from (N, 15) angles (radians, inside the
        limits), (N, 20) bone lengths (metres), (N,) palm cupping (radians) and spread, (N,)
        bool handedness: the forward kinematics the sampler uses (no checks, no clipping)."""
        right = forward_kinematics(self._palm(np.asarray(cupping, np.float64),
                                              np.asarray(spread, np.float64)),
                                   flexion, abduction, bone_lengths)
        return np.where(np.asarray(is_left, bool)[:, None, None], mirror_x(right), right)

    def orientations(self, u: np.ndarray) -> np.ndarray:
        """(N, 8) uniforms -> (N, 3, 3) hand -> camera rotations from the configured
        orientation distribution (:func:`.orientation.camera_orientations`)."""
        return self._rotation(u)

    def _rotation(self, u: np.ndarray) -> np.ndarray:
        cfg = self.config
        return camera_orientations(u, cfg.p_upright, cfg.kappa, cfg.roll_bias)

    def penetration(self, joints: np.ndarray, hand_scale: np.ndarray) -> np.ndarray:
        """(N, 21, 3) metres, (N,) hand scale -> (N,) self-collision depth
        (:meth:`.collision.SphereCollisions.penetration`)."""
        return self._collisions.penetration(joints, hand_scale)

    # -- parts -----------------------------------------------------------------------------
    def _relax_collisions(self, palm: np.ndarray, flex: np.ndarray, abd: np.ndarray,
                          lengths: np.ndarray, scale: np.ndarray, right: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Blend colliding poses towards the open hand (smallest step of 1/8 that works)."""
        thr = float(self.config.max_penetration or np.inf)
        relaxed = np.zeros(len(flex))
        todo = np.flatnonzero(self.penetration(right, scale) > thr)
        right, flex, abd = right.copy(), flex.copy(), abd.copy()
        for step in range(1, 9):
            if not len(todo):
                break
            t = step / 8.0
            f = (1 - t) * flex[todo] + t * self._open[0]
            a = (1 - t) * abd[todo] + t * self._open[1]
            j = forward_kinematics(palm[todo], f, a, lengths[todo])
            ok = (self.penetration(j, scale[todo]) <= thr) | (step == 8)
            done = todo[ok]
            right[done], flex[done], abd[done], relaxed[done] = j[ok], f[ok], a[ok], t
            todo = todo[~ok]
        return right, flex, abd, relaxed

    def _noise(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 15) flexion and abduction noise, radians; DIP noise follows the PIP's."""
        z = _normal(u[:, _C_NOISE]).reshape(-1, 2, 5, 3)
        s = np.deg2rad(self.config.key_noise_deg)
        fz = z[:, 0].copy()
        fz[..., 2] = (2.0 * fz[..., 1] + np.sqrt(5.0) * fz[..., 2]) / 3.0  # corr 2/3 with PIP
        dflex = s * fz
        dabd = s * z[:, 1] * np.array([0.4, 0.15, 0.15])
        return dflex.reshape(-1, 15), dabd.reshape(-1, 15)

    def _articulation(self, u: np.ndarray, mode: np.ndarray) -> tuple[np.ndarray, ...]:
        n = len(u)
        nk = len(self._key_flex)
        key_a = np.minimum((u[:, _C_KEY_A] * nk).astype(np.int64), nk - 1)
        key_b = np.minimum((u[:, _C_KEY_B] * nk).astype(np.int64), nk - 1)
        t = np.where(mode == 1, u[:, _C_T], 0.0)
        # per-finger weight: shared t plus a jitter that sometimes takes a finger from b
        tf = np.clip(t[:, None] + 0.6 * (u[:, _C_FINGER_T] - 0.5), 0.0, 1.0)
        tf = np.where(mode[:, None] == 1, tf, 0.0)
        tj = np.repeat(tf, 3, axis=1)  # (N, 15)
        kf = (1 - tj) * self._key_flex[key_a] + tj * self._key_flex[key_b]
        ka = (1 - tj) * self._key_abd[key_a] + tj * self._key_abd[key_b]
        dflex, dabd = self._noise(u)
        uf, ua = self._uniform_family(u)
        uni = (mode == 2)[:, None]
        flex = np.where(uni, uf, kf + dflex)
        abd = np.where(uni, ua, ka + dabd)
        flex = np.clip(flex, self._flex_lim[:, 0], self._flex_lim[:, 1])
        abd = np.clip(abd, self._abd_lim[:, 0], self._abd_lim[:, 1])
        is_uni = mode == 2
        key_a = np.where(is_uni, -1, key_a)
        key_b = np.where(mode == 1, key_b, np.where(is_uni, -1, key_a))
        assert flex.shape == (n, 15)
        return flex, abd, key_a, key_b, t

    def _uniform_family(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fingers inside the natural ranges: a grip level shared by the fingers, PIP tied
        to the MCP loosely, DIP = 2/3 PIP plus noise, abduction with a shared spread."""
        v = u[:, _C_UNI].reshape(-1, 2, 5, 3)
        grip = u[:, _C_FINGER_T][:, 1:2]  # (N, 1), shared by the four fingers
        level = 0.5 * grip + 0.5 * v[:, 0, :, 0]  # (N, 5) per finger curl in [0, 1]
        lo_f, hi_f = self._nat_flex[:, 0].reshape(5, 3), self._nat_flex[:, 1].reshape(5, 3)
        mcp = 0.7 * level + 0.3 * v[:, 0, :, 1]
        pip = 0.6 * level + 0.4 * v[:, 0, :, 2]
        f0 = lo_f[:, 0] + mcp * (hi_f[:, 0] - lo_f[:, 0])
        f1 = lo_f[:, 1] + pip * (hi_f[:, 1] - lo_f[:, 1])
        f2 = (2.0 / 3.0) * f1 + np.deg2rad(8.0) * _normal(v[:, 1, :, 2])
        # the thumb moves on its own: uniform inside its natural box
        thumb = lo_f[0] + v[:, 1, 0, :] * (hi_f[0] - lo_f[0])
        flex = np.stack([f0, f1, f2], -1)
        flex[:, 0] = thumb
        lo_a, hi_a = self._nat_abd[:, 0].reshape(5, 3), self._nat_abd[:, 1].reshape(5, 3)
        spread = u[:, _C_FINGER_T][:, 2:3]  # shared spread of the MCPs
        a0 = 0.6 * spread + 0.4 * v[:, 1, :, 0]
        a0[:, 0] = v[:, 1, 0, 0]  # thumb CMC abduction independent
        a12 = 0.5 + 0.15 * (v[:, 1, :, 1:] - 0.5)  # near the middle of the small range
        ab = np.concatenate([a0[..., None], a12], -1)
        abd = lo_a + ab * (hi_a - lo_a)
        return flex.reshape(-1, 15), abd.reshape(-1, 15)

    def _bone_lengths(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 20) metres and (N,) hand scale (see :class:`SamplerConfig`)."""
        cfg = self.config
        m = self.model
        z = _normal(u[:, _C_LEN])  # 27 = 1 phalanges + 1 metacarpals + 5 fingers + 20 bones
        s_ph, s_mc, s_f, s_b = cfg.length_sigma
        log = np.where(_IS_ROOT, s_mc * z[:, 1:2], s_ph * z[:, 0:1])
        log = log + s_f * z[:, 2:7][:, _BONE_FINGER] + s_b * z[:, 7:27]
        lengths = m.bone_lengths * np.exp(log)
        # ratios to the reference bone inside the model's ranges (a tiny margin inside)
        rng_ = m.bone_length_range
        ref = lengths[:, _REF:_REF + 1]
        lo, hi = rng_[:, 0] * (1 + 1e-6), rng_[:, 1] * (1 - 1e-6)
        lengths = np.where(np.arange(NUM_BONES) == _REF, ref,
                           np.clip(lengths / ref, lo, hi) * ref)
        scale = cfg.hand_scale[0] + u[:, _C_SCALE] * (cfg.hand_scale[1] - cfg.hand_scale[0])
        chain = lengths[:, _MIDDLE_CHAIN].sum(1)
        lengths = lengths * (scale * self._template_chain / chain)[:, None]
        return lengths, scale

    def _palm(self, cup: np.ndarray, spread: np.ndarray) -> np.ndarray:
        """(N, 6, 3) right palm joints (unit root directions; FK sets the lengths)."""
        theta = self._root_theta * (1.0 + spread[:, None])  # (N, 5)
        tilt = cup[:, None] * np.array([0.4, 0.0, 0.0, 0.5, 1.0])
        d = np.stack([np.sin(theta) * np.cos(tilt), np.cos(theta) * np.cos(tilt),
                      np.sin(tilt)], -1)
        return np.concatenate([np.zeros((len(cup), 1, 3)), d], 1)
