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


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _cone(rng: np.random.Generator, axis: np.ndarray, max_angle: float) -> np.ndarray:
    """A direction uniform on the cap of half-angle ``max_angle`` around ``axis``."""
    axis = _unit(axis)
    cos_t = 1.0 - rng.random() * (1.0 - np.cos(max_angle))
    sin_t = np.sqrt(max(0.0, 1.0 - cos_t * cos_t))
    phi = 2 * np.pi * rng.random()
    helper = np.array([1.0, 0, 0]) if abs(axis[0]) < 0.9 else np.array([0, 1.0, 0])
    t1 = _unit(np.cross(axis, helper))
    t2 = np.cross(axis, t1)
    return _unit(cos_t * axis + sin_t * (np.cos(phi) * t1 + np.sin(phi) * t2))


def _colour_temperature(rng: np.random.Generator) -> np.ndarray:
    """A light colour from warm (tungsten) to cool (shade), linear, unit mean; mostly near
    neutral to warm."""
    t = float(np.clip(rng.normal(0.42, 0.18), 0.0, 1.0))
    warm, neutral, cool = np.array([1.25, 0.95, 0.7]), np.ones(3), np.array([0.85, 0.97, 1.2])
    c: np.ndarray = (1 - 2 * t) * warm + 2 * t * neutral if t < 0.5 else (
        (2 - 2 * t) * neutral + (2 * t - 1) * cool)
    return c / c.mean()


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A clothing-like colour (linear): often dark or muted, sometimes saturated."""
    kind = rng.random()
    if kind < 0.35:
        base = rng.uniform(0.01, 0.08) * np.ones(3) * (1 + 0.3 * rng.standard_normal(3))
    elif kind < 0.65:
        base = rng.uniform(0.05, 0.6) * np.ones(3) * (1 + 0.15 * rng.standard_normal(3))
    else:
        base = srgb_to_linear(rng.random(3))
    return np.clip(base, 0.003, 0.95)


def _one_appearance(rng: np.random.Generator, tone_range: tuple[float, float]) -> dict:
    tone = rng.uniform(*tone_range)
    skin = skin_albedo(np.array([tone]))[0]
    skin = skin * np.exp(rng.normal(0.0, [0.05, 0.04, 0.06]))
    skin = skin * np.array([1.0 + 0.08 * rng.random(), 1.0, 1.0])  # redness variety
    pink = np.array([0.62, 0.36, 0.30])
    palm = skin + (0.15 + 0.55 * tone) * (pink * (0.5 + 0.5 * skin.mean() / 0.5) - skin).clip(
        0.0, None)
    palm = np.maximum(palm, skin * 1.02) * rng.uniform(0.97, 1.08)
    nail = 0.45 * skin + 0.55 * np.array([0.75, 0.52, 0.48]) * (0.6 + 0.4 * (1 - tone))
    if rng.random() < 0.08:  # nail polish
        nail = srgb_to_linear(rng.random(3))
    r = rng.random()
    if r < 0.78:  # key light from the camera's side, often from above
        light = _cone(rng, np.array([0.0, -0.6, -1.0]), np.deg2rad(65))
    elif r < 0.93:
        light = _cone(rng, np.array([rng.choice([-1.0, 1.0]), -0.3, -0.2]), np.deg2rad(40))
    else:  # back light
        light = _cone(rng, np.array([0.0, -0.4, 1.0]), np.deg2rad(50))
    key_level = rng.uniform(0.5, 1.0)
    ambient = rng.uniform(0.18, 0.45)
    norm = rng.uniform(0.8, 1.15) / (key_level + ambient)  # total irradiance of a lit surface
    key = key_level * norm * _colour_temperature(rng)
    sky = ambient * norm * _colour_temperature(rng)
    ground = ambient * norm * rng.uniform(0.35, 0.8) * _colour_temperature(rng)
    roll = np.deg2rad(rng.normal(0.0, 25.0))
    up = np.array([np.sin(roll), -np.cos(roll), 0.0])
    sleeve = rng.random() < 0.55
    return {
        "skin_tone": tone, "skin_rgb": skin, "palm_rgb": palm, "nail_rgb": nail,
        "nail_strength": rng.uniform(0.5, 1.0), "redness": rng.uniform(0.1, 0.8),
        "texture_strength": rng.uniform(0.4, 1.2), "crease_strength": rng.uniform(0.4, 1.2),
        "texture_seed": rng.uniform(0.0, 100.0),
        "light_dir": light, "light_rgb": key,
        "fill_dir": _cone(rng, np.array([0.0, 0.3, -1.0]), np.deg2rad(60)),
        "fill": rng.uniform(0.0, 0.35), "sky_rgb": sky, "ground_rgb": ground,
        "env_tint": rng.uniform(0.05, 0.4), "up": up,
        "wrap": rng.uniform(0.35, 0.75), "specular": rng.uniform(0.02, 0.12),
        "shininess": rng.uniform(8.0, 40.0),
        "sleeve_start": rng.uniform(0.02, 0.11) if sleeve else 10.0,
        "sleeve_rgb": _random_colour(rng), "sleeve_rgb2": _random_colour(rng),
        "sleeve_pattern": float(rng.choice([0, 1, 2], p=[0.6, 0.2, 0.2])),
        "sleeve_freq": rng.uniform(30.0, 120.0),
        "exposure": rng.uniform(0.85, 1.15), "gamma": rng.uniform(2.0, 2.4),
        "blur_sigma": rng.uniform(0.0, 0.8) if rng.random() < 0.6 else 0.0,
        "noise_sigma": rng.uniform(0.0, 0.025),
        "occlusion": rng.uniform(0.0, 0.2),
    }


def sample_appearance(rngs: list[np.random.Generator],
                      tone_range: tuple[float, float] = (0.0, 1.0)) -> Appearance:
    """One random appearance per generator (see the module docstring).

    Args:
        rngs: B generators (one per sample).
        tone_range: [lo, hi] of the skin tone, uniform (0 = lightest, 1 = darkest).
    """
    lo, hi = tone_range
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"tone_range must satisfy 0 <= lo <= hi <= 1; got {tone_range}")
    out = _stack([_one_appearance(r, tone_range) for r in rngs], Appearance)
    assert isinstance(out, Appearance)
    return out


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
