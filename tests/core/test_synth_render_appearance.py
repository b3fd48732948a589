"""Appearance sampling, backgrounds and compositing of the synthetic renderer (no OpenGL)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from handpose.core.data.synthetic.appearance import (
    SKIN_TONES_SRGB,
    sample_appearance,
    sample_shape,
    skin_albedo,
    srgb_to_linear,
)
from handpose.core.data.synthetic.backgrounds import (
    BACKGROUND_KINDS,
    BackgroundSource,
    procedural_background,
)
from handpose.core.data.synthetic.compositing import (
    composite,
    contact_occlusion,
    joint_visibility,
)
from handpose.core.data.synthetic.shaders import APPEARANCE_SLOTS


def test_skin_albedo_runs_from_light_to_dark_through_the_anchors():
    tones = np.linspace(0, 1, 10)
    alb = skin_albedo(tones)
    assert np.allclose(alb, srgb_to_linear(SKIN_TONES_SRGB / 255.0), atol=1e-12)
    lum = alb @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(lum) < 0)
    mid = skin_albedo(np.array([0.5 / 9]))[0]  # halfway between the first two anchors
    assert np.allclose(mid, 0.5 * (alb[0] + alb[1]))


def test_appearance_is_reproducible_and_in_range():
    a = sample_appearance([np.random.default_rng(i) for i in range(20)], tone_range=(0.5, 1))
    b = sample_appearance([np.random.default_rng(i) for i in range(20)], tone_range=(0.5, 1))
    assert np.array_equal(a.skin_rgb, b.skin_rgb) and np.array_equal(a.light_dir, b.light_dir)
    assert np.all((a.skin_tone >= 0.5) & (a.skin_tone <= 1.0))
    assert np.allclose(np.linalg.norm(a.light_dir, axis=1), 1.0)
    assert np.all(a.palm_rgb.mean(1) >= a.skin_rgb.mean(1))  # palms are lighter
    p = a.shader_params(np.full((20, 3), 0.2))
    assert p.shape == (20, APPEARANCE_SLOTS, 4) and p.dtype == np.float32
    sub = a.take(np.array([3, 5]))
    assert np.array_equal(sub.skin_rgb, a.skin_rgb[[3, 5]])
    rot = np.tile(np.diag([-1.0, -1.0, 1.0]), (20, 1, 1))
    assert np.allclose(a.rotated(rot).light_dir, a.light_dir * [-1, -1, 1])
    with pytest.raises(ValueError, match="tone_range"):
        sample_appearance([np.random.default_rng(0)], tone_range=(0.8, 0.2))
    s = sample_shape([np.random.default_rng(i) for i in range(50)])
    assert np.all((s.thickness >= 0.8) & (s.thickness <= 1.25))
    assert np.all(np.abs(s.wrist_bend) <= 0.8)


@pytest.mark.parametrize("kind", BACKGROUND_KINDS)
def test_procedural_backgrounds(kind):
    a = procedural_background(np.random.default_rng(1), 40, 30, kind)
    b = procedural_background(np.random.default_rng(1), 40, 30, kind)
    assert a.shape == (30, 40, 3) and a.dtype == np.float32
    assert np.array_equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert a.std() > 0 or kind == "gradient"


def test_background_folder(tmp_path):
    img = np.zeros((50, 80, 3), np.uint8)
    img[:, :40] = (0, 0, 255)  # red left half (BGR)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    src = BackgroundSource(tmp_path, folder_prob=1.0)
    out = src.sample(np.random.default_rng(0), 32, 32)
    assert out.shape == (32, 32, 3)
    assert out[..., 1].max() < 0.05 and out[..., 2].max() < 0.05  # only red and black
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image"):
        BackgroundSource(empty)
    with pytest.raises(ValueError, match="does not exist"):
        BackgroundSource(tmp_path / "nope")


def test_contact_occlusion_darkens_skin_just_behind_a_nearer_surface():
    d = np.full((40, 40), 0.5, np.float32)
    d[15:25, 15:25] = 0.45  # a finger 5 cm in front
    d[:, :3] = 0.0  # background
    occ = contact_occlusion(d, 3)
    assert occ[20, 20] < 0.05  # the finger itself: nothing in front
    assert occ[20, 27] > 0.3  # right next to it, behind
    assert occ[20, 37] < 0.01  # far from it
    assert occ[:, :3].max() < 0.2  # the background only gets the blur's spill


def test_composite_blends_by_coverage_and_keeps_uint8_range():
    rgba = np.zeros((2, 8, 8, 4), np.uint8)
    rgba[:, 2:6, 2:6] = (200, 100, 50, 255)
    bg = np.full((2, 8, 8, 3), 0.5, np.float32)
    rngs = [np.random.default_rng(0), np.random.default_rng(1)]
    out = composite(rgba, bg, np.zeros(2), np.zeros(2), rngs, antialias=False).numpy()
    assert np.array_equal(out[0, 3, 3], [200, 100, 50])
    assert np.array_equal(out[0, 0, 0], [128, 128, 128])
    soft = composite(rgba, bg, np.zeros(2), np.zeros(2), rngs, antialias=True).numpy()
    assert np.array_equal(soft[0, 3, 3], [200, 100, 50])  # inside: untouched
    assert 128 < soft[0, 2, 2, 0] < 200  # the rim blends with the background
    noisy = composite(rgba, bg, np.zeros(2), np.full(2, 0.05), rngs).numpy()
    assert 5 < np.abs(noisy.astype(int) - out.astype(int)).mean() < 20


def test_joint_visibility_rules():
    import torch

    depth = torch.zeros(1, 10, 10)
    depth[0, 4:7, 4:7] = 0.50
    uv = torch.tensor([[[5.0, 5.0], [5.2, 4.9], [1.0, 1.0], [20.0, 5.0]]])
    z = torch.tensor([[0.505, 0.53, 0.5, 0.5]])
    tol = torch.full((1, 4), 0.01)
    vis = joint_visibility(uv, z, depth, tol)
    # on the hand within tolerance / covered by something 3 cm in front / background / outside
    assert vis.tolist() == [[True, False, False, False]]
