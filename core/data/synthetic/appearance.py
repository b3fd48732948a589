"""Appearance and shape parameters of synthetic hands, and their random distributions.

Skin tones: 10 steps from very light to very dark, aligned with the 10 tones of the Monk Skin
Tone scale, but as skin looks in photographs (:data:`SKIN_TONES_SRGB`): the Monk swatches are
much paler and greyer than the mean hand colour in real photos (even the lightest hands of
the real 11k-Hands sample have R - B of about 60 in sRGB, Monk 1 has 18). Per-hand hue and
redness jitter; palms are lighter and pinker than the back of
the hand, more so for darker skin. Lights: a key light mostly from the camera's side and above
(sometimes from the side or behind), a fill light, a hemisphere ambient tinted by the
background, colour temperatures from warm indoor to cool daylight. Skin shading has a wrapped
(subsurface-like) diffuse term, a weak oily specular, mottling and pores, knuckle wrinkles,
flexion and palm creases, and nails. About half the arms wear a sleeve.

Every sample draws from its own ``numpy.random.Generator`` (see :mod:`.seeding`), so sample i
depends only on its generator, whatever the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

import numpy as np
from scipy.special import ndtri

from .shaders import APPEARANCE_SLOTS

__all__ = [
    "SKIN_TONES_SRGB",
    "Appearance",
    "HandShape",
    "srgb_to_linear",
    "skin_albedo",
    "sample_appearance",
    "sample_shape",
    "default_shape",
]

#: Skin albedo anchors (sRGB 0-255), lightest first, one per Monk Skin Tone step: the colour
#: of lit skin in photographs (calibrated against the mean hand colours of the real hand photos
#: in ``shared/data/real_hands``; 11k-Hands median (188, 155, 133); very dark skin is rarely
#: photographed darker than about (70, 46, 34): exposure and sheen lift it).
SKIN_TONES_SRGB: Final = np.array([
    [238, 196, 176], [230, 184, 160], [224, 172, 140], [208, 154, 120], [190, 136, 100],
    [160, 110, 76], [136, 90, 63], [112, 74, 52], [90, 59, 42], [70, 46, 34],
], np.float64)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> linear RGB (same shape)."""
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def skin_albedo(tone: np.ndarray) -> np.ndarray:
    """(N,) skin tones in [0, 1] (0 = lightest step, 1 = darkest) -> (N, 3) linear albedo
    (piecewise-linear between :data:`SKIN_TONES_SRGB`, in linear RGB)."""
    t = np.clip(np.asarray(tone, np.float64), 0.0, 1.0) * (len(SKIN_TONES_SRGB) - 1)
    lo = np.minimum(np.floor(t).astype(int), len(SKIN_TONES_SRGB) - 2)
    f = (t - lo)[:, None]
    lin = srgb_to_linear(SKIN_TONES_SRGB / 255.0)
    return (1 - f) * lin[lo] + f * lin[lo + 1]


def _stack(rows: list[dict[str, np.ndarray]], cls: type) -> object:
    return cls(**{f.name: np.stack([np.asarray(r[f.name]) for r in rows])
                  for f in fields(cls)})


@dataclass(frozen=True)
class HandShape:
    """Per-sample shape beyond the joints (numpy, leading dim B). Bone lengths come from the
    joints; these add thickness and the forearm.

    Attributes:
        thickness: (B, 3) finger, palm and forearm thickness factors (1 = template), applied
            on top of the hand's size (mean posed / template bone length ratio).
        wrist_bend: (B, 2) forearm flexion (about the hand's x axis, + bends the arm towards
            the back of the hand) and radial/ulnar deviation (about z), radians.
        forearm_scale: (B,) forearm length factor (1 = 26 cm from the wrist).
    """

    thickness: np.ndarray
    wrist_bend: np.ndarray
    forearm_scale: np.ndarray

    def __len__(self) -> int:
        return len(self.thickness)

    def take(self, idx: np.ndarray) -> HandShape:
        """The samples at ``idx`` (any integer index array)."""
        return HandShape(*(np.asarray(getattr(self, f.name))[idx] for f in fields(self)))


@dataclass(frozen=True)
class Appearance:
    """Per-sample appearance (numpy, leading dim B). Colours are linear RGB; directions are
    unit vectors in the camera frame pointing from the hand towards the light / sky.

    Attributes:
        skin_tone: (B,) in [0, 1], 0 = lightest tone, 1 = darkest (step ``round(9 t) + 1``
            of the 10-step scale).
        skin_rgb, palm_rgb, nail_rgb: (B, 3) albedo of the back, the palm side, the nails.
        nail_strength: (B,) 0..1 visibility of the nails. redness: (B,) knuckles/fingertips.
        texture_strength, crease_strength: (B,) mottling/pores and wrinkles/creases, 0..~1.5.
        texture_seed: (B,) offset of the procedural noise (float).
        light_dir, light_rgb: (B, 3) key light. fill_dir: (B, 3), fill: (B,) its strength.
        sky_rgb, ground_rgb: (B, 3) hemisphere ambient before the background tint.
        env_tint: (B,) 0..1, how much the ambient takes the background's mean colour.
        up: (B, 3) the sky direction.
        wrap, specular, shininess: (B,) shading.
        sleeve_start: (B,) metres along the forearm where a sleeve starts (>= 1: bare arm).
        sleeve_rgb, sleeve_rgb2: (B, 3). sleeve_pattern: (B,) 0 plain, 1 print, 2 rings;
        sleeve_freq: (B,) rings per metre (pattern 2) or print scale (pattern 1).
        exposure, gamma: (B,) tone mapping.
        blur_sigma, noise_sigma: (B,) camera blur (pixels) and noise (0..1 intensity units).
        occlusion: (B,) 0..1 strength of the screen-space contact shadows.
    """

    skin_tone: np.ndarray
    skin_rgb: np.ndarray
    palm_rgb: np.ndarray
    nail_rgb: np.ndarray
    nail_strength: np.ndarray
    redness: np.ndarray
    texture_strength: np.ndarray
    crease_strength: np.ndarray
    texture_seed: np.ndarray
    light_dir: np.ndarray
    light_rgb: np.ndarray
    fill_dir: np.ndarray
    fill: np.ndarray
    sky_rgb: np.ndarray
    ground_rgb: np.ndarray
    env_tint: np.ndarray
    up: np.ndarray
    wrap: np.ndarray
    specular: np.ndarray
    shininess: np.ndarray
    sleeve_start: np.ndarray
    sleeve_rgb: np.ndarray
    sleeve_rgb2: np.ndarray
    sleeve_pattern: np.ndarray
    sleeve_freq: np.ndarray
    exposure: np.ndarray
    gamma: np.ndarray
    blur_sigma: np.ndarray
    noise_sigma: np.ndarray
    occlusion: np.ndarray

    def __len__(self) -> int:
        return len(self.skin_tone)

    def take(self, idx: np.ndarray) -> Appearance:
        """The samples at ``idx`` (any integer index array)."""
        return Appearance(*(np.asarray(getattr(self, f.name))[idx] for f in fields(self)))

    def rotated(self, R: np.ndarray) -> Appearance:
        """Directions rotated by (B, 3, 3) rotations (another camera of a rig)."""
        rot = {k: np.einsum("bij,bj->bi", R, getattr(self, k))
               for k in ("light_dir", "fill_dir", "up")}
        return Appearance(**{f.name: rot.get(f.name, getattr(self, f.name))
                             for f in fields(self)})

    def shader_params(self, env_rgb: np.ndarray) -> np.ndarray:
        """(B, APPEARANCE_SLOTS, 4) float32 parameter rows (:mod:`.shaders`), with the
        ambient tinted by ``env_rgb`` (B, 3), the backgrounds' mean linear colours."""
        n = len(self)
        env = np.asarray(env_rgb, np.float64)
        lum = env.mean(1, keepdims=True).clip(1e-3)
        tint = 1.0 + self.env_tint[:, None] * (env / lum - 1.0)
        p = np.zeros((n, APPEARANCE_SLOTS, 4))
        p[:, 0] = np.c_[self.light_dir, self.specular]
        p[:, 1] = np.c_[self.light_rgb, self.shininess]
        p[:, 2] = np.c_[self.sky_rgb * tint, self.wrap]
        p[:, 3] = np.c_[self.ground_rgb * tint, self.texture_strength]
        p[:, 4] = np.c_[self.up, self.texture_seed]
        p[:, 5] = np.c_[self.skin_rgb, self.crease_strength]
        p[:, 6] = np.c_[self.palm_rgb, self.nail_strength]
        p[:, 7] = np.c_[self.nail_rgb, self.redness]
        p[:, 8] = np.c_[self.sleeve_rgb, self.sleeve_start]
        p[:, 9] = np.c_[self.fill_dir, self.fill]
        p[:, 10] = np.c_[self.exposure, self.gamma, self.sleeve_pattern, self.sleeve_freq]
        p[:, 11, :3] = self.sleeve_rgb2
        return p.astype(np.float32)


_NUM_UNIFORMS = 64  # uniforms drawn per sample (one call per generator)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _lerp(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return lo + u * (hi - lo)


def _cone(axis: np.ndarray, max_angle: float, u_cos: np.ndarray, u_phi: np.ndarray
          ) -> np.ndarray:
    """(B, 3) directions uniform on caps of half-angle ``max_angle`` around axes (B, 3)."""
    axis = _unit(axis)
    cos_t = 1.0 - u_cos * (1.0 - np.cos(max_angle))
    sin_t = np.sqrt(np.clip(1.0 - cos_t * cos_t, 0.0, None))
    phi = 2 * np.pi * u_phi
    helper = np.where((np.abs(axis[:, :1]) < 0.9), [[1.0, 0, 0]], [[0, 1.0, 0]])
    t1 = _unit(np.cross(axis, helper))
    t2 = np.cross(axis, t1)
    return _unit(cos_t[:, None] * axis + sin_t[:, None] * (np.cos(phi)[:, None] * t1
                                                            + np.sin(phi)[:, None] * t2))


def _colour_temperature(u: np.ndarray) -> np.ndarray:
    """(B,) uniforms -> (B, 3) light colours from warm (tungsten) to cool (shade), linear,
    unit mean; mostly near neutral to warm."""
    t = np.clip(0.42 + 0.18 * ndtri(np.clip(u, 1e-9, 1 - 1e-9)), 0.0, 1.0)[:, None]
    warm, neutral, cool = np.array([1.25, 0.95, 0.7]), np.ones(3), np.array([0.85, 0.97, 1.2])
    c = np.where(t < 0.5, (1 - 2 * t) * warm + 2 * t * neutral,
                 (2 - 2 * t) * neutral + (2 * t - 1) * cool)
    return c / c.mean(1, keepdims=True)


def _random_colour(u: np.ndarray) -> np.ndarray:
    """(B, 5) uniforms -> (B, 3) clothing-like linear colours: often dark or muted, sometimes
    saturated."""
    jitter = ndtri(np.clip(u[:, 2:5], 1e-9, 1 - 1e-9))
    dark = _lerp(u[:, 1:2], 0.01, 0.08) * (1 + 0.3 * jitter)
    muted = _lerp(u[:, 1:2], 0.05, 0.6) * (1 + 0.15 * jitter)
    vivid = srgb_to_linear(u[:, 2:5])
    kind = u[:, :1]
    return np.clip(np.where(kind < 0.35, dark, np.where(kind < 0.65, muted, vivid)), 0.003, 0.95)


def _appearance_from_uniforms(u: np.ndarray, tone_range: tuple[float, float]) -> Appearance:
    """Appearances of B samples from a (B, _NUM_UNIFORMS) matrix of uniforms (one row each)."""
    b = len(u)
    z = ndtri(np.clip(u, 1e-9, 1 - 1e-9))
    tone = _lerp(u[:, 0], *tone_range)
    skin = skin_albedo(tone) * np.exp(z[:, 1:4] * [0.05, 0.04, 0.06])
    skin[:, 0] *= 1.0 + 0.08 * u[:, 4]  # redness variety
    pink = np.array([0.62, 0.36, 0.30])
    target = pink * (0.5 + skin.mean(1, keepdims=True))
    palm = skin + (0.15 + 0.55 * tone)[:, None] * (target - skin).clip(0.0, None)
    palm = np.maximum(palm, skin * 1.02) * _lerp(u[:, 5:6], 0.97, 1.08)
    nail = 0.45 * skin + 0.55 * np.array([0.75, 0.52, 0.48]) * (0.6 + 0.4 * (1 - tone))[:, None]
    nail = np.where(u[:, 6:7] < 0.08, srgb_to_linear(u[:, 7:10]), nail)  # nail polish
    mode = u[:, 10]
    side = np.where(u[:, 13] < 0.5, -1.0, 1.0)
    front = _cone(np.tile([0.0, -0.6, -1.0], (b, 1)), np.deg2rad(65), u[:, 11], u[:, 12])
    sideways = _cone(np.stack([side, np.full(b, -0.3), np.full(b, -0.2)], 1), np.deg2rad(40),
                     u[:, 11], u[:, 12])
    behind = _cone(np.tile([0.0, -0.4, 1.0], (b, 1)), np.deg2rad(50), u[:, 11], u[:, 12])
    light = np.where((mode < 0.78)[:, None], front,
                     np.where((mode < 0.93)[:, None], sideways, behind))
    key_level = _lerp(u[:, 14], 0.5, 1.0)
    ambient = _lerp(u[:, 15], 0.18, 0.45)
    norm = _lerp(u[:, 16], 0.8, 1.15) / (key_level + ambient)  # irradiance of a lit surface
    key = (key_level * norm)[:, None] * _colour_temperature(u[:, 17])
    sky = (ambient * norm)[:, None] * _colour_temperature(u[:, 18])
    ground = (ambient * norm * _lerp(u[:, 20], 0.35, 0.8))[:, None] * _colour_temperature(
        u[:, 19])
    roll = np.deg2rad(25.0) * z[:, 21]
    up = np.stack([np.sin(roll), -np.cos(roll), np.zeros(b)], 1)
    pattern = np.where(u[:, 44] < 0.6, 0.0, np.where(u[:, 44] < 0.8, 1.0, 2.0))
    return Appearance(
        skin_tone=tone, skin_rgb=skin, palm_rgb=palm, nail_rgb=nail,
        nail_strength=_lerp(u[:, 32], 0.5, 1.0), redness=_lerp(u[:, 33], 0.1, 0.8),
        texture_strength=_lerp(u[:, 34], 0.4, 1.2), crease_strength=_lerp(u[:, 35], 0.4, 1.2),
        texture_seed=_lerp(u[:, 36], 0.0, 100.0), light_dir=light, light_rgb=key,
        fill_dir=_cone(np.tile([0.0, 0.3, -1.0], (b, 1)), np.deg2rad(60), u[:, 37], u[:, 38]),
        fill=_lerp(u[:, 39], 0.0, 0.35), sky_rgb=sky, ground_rgb=ground,
        env_tint=_lerp(u[:, 40], 0.05, 0.4), up=up, wrap=_lerp(u[:, 41], 0.35, 0.75),
        specular=_lerp(u[:, 42], 0.02, 0.12), shininess=_lerp(u[:, 43], 8.0, 40.0),
        sleeve_start=np.where(u[:, 22] < 0.55, _lerp(u[:, 23], 0.02, 0.11), 10.0),
        sleeve_rgb=_random_colour(u[:, 24:29]), sleeve_rgb2=_random_colour(u[:, 52:57]),
        sleeve_pattern=pattern, sleeve_freq=_lerp(u[:, 45], 30.0, 120.0),
        exposure=_lerp(u[:, 46], 0.85, 1.15), gamma=_lerp(u[:, 47], 2.0, 2.4),
        blur_sigma=np.where(u[:, 48] < 0.6, _lerp(u[:, 49], 0.0, 0.8), 0.0),
        noise_sigma=_lerp(u[:, 50], 0.0, 0.025), occlusion=_lerp(u[:, 51], 0.0, 0.2),
    )


def sample_appearance(rngs: list[np.random.Generator],
                      tone_range: tuple[float, float] = (0.0, 1.0)) -> Appearance:
    """One random appearance per generator (see the module docstring).

    Args:
        rngs: B >= 1 generators (one per sample; each gives one row of uniforms).
        tone_range: [lo, hi] of the skin tone, uniform (0 = lightest, 1 = darkest).
    """
    lo, hi = tone_range
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"tone_range must satisfy 0 <= lo <= hi <= 1; got {tone_range}")
    if not rngs:
        raise ValueError("rngs must hold at least one generator")
    return _appearance_from_uniforms(np.stack([r.random(_NUM_UNIFORMS) for r in rngs]),
                                     (float(lo), float(hi)))


def sample_shape(rngs: list[np.random.Generator]) -> HandShape:
    """One random shape per generator: thickness factors around 1 (fingers +-12 %, palm
    +-12 %, forearm +-15 %, correlated), wrist flexion N(0, 20 deg) clipped to +-45 deg,
    deviation N(0, 8 deg), forearm length 0.8-1.1."""
    rows = []
    for rng in rngs:
        common = rng.normal(0.0, 0.06)
        thick = np.exp(common + rng.normal(0.0, 0.05, 3)).clip(0.8, 1.25)
        bend = np.array([np.clip(rng.normal(0.0, np.deg2rad(20)), -0.8, 0.8),
                         np.clip(rng.normal(0.0, np.deg2rad(8)), -0.35, 0.35)])
        rows.append({"thickness": thick, "wrist_bend": bend,
                     "forearm_scale": rng.uniform(0.8, 1.1)})
    out = _stack(rows, HandShape)
    assert isinstance(out, HandShape)
    return out


def default_shape(n: int) -> HandShape:
    """``n`` template shapes: thickness 1, straight wrist, full forearm."""
    return HandShape(thickness=np.ones((n, 3)), wrist_bend=np.zeros((n, 2)),
                     forearm_scale=np.ones(n))
