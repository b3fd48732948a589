"""Geometric augmentation and the PeCLR view sampler: matrices, keypoints, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from handpose.core.augment import (
    AppearanceAugmentation,
    GeometricAugmentation,
    PeclrViewSampler,
    affine_matrices,
    flip_handedness,
    transform_points,
    warp_images,
)


def _dots(points: torch.Tensor, size: int, sigma: float = 1.2) -> torch.Tensor:
    """(B, 3, size, size) images with one Gaussian dot at points (B, 2) (pixel centres at
    integers)."""
    ys = torch.arange(size, dtype=torch.float32).view(1, size, 1)
    xs = torch.arange(size, dtype=torch.float32).view(1, 1, size)
    d2 = (xs - points[:, 0, None, None]) ** 2 + (ys - points[:, 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * sigma**2)).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def _find_dot(images: torch.Tensor) -> torch.Tensor:
    """Intensity-weighted centroid (B, 2) of the first channel."""
    img = images[:, 0].clamp(min=0)
    h, w = img.shape[-2:]
    ys = torch.arange(h, dtype=img.dtype).view(1, h, 1)
    xs = torch.arange(w, dtype=img.dtype).view(1, 1, w)
    m = img.sum(dim=(1, 2))
    return torch.stack([(img * xs).sum(dim=(1, 2)) / m, (img * ys).sum(dim=(1, 2)) / m], -1)


def test_keypoints_follow_the_warped_dot() -> None:
    gen = torch.Generator().manual_seed(1)
    pts = 24 + 16 * torch.rand(8, 2, generator=gen)  # well inside a 64 px image
    images = _dots(pts, 64)
    aug = GeometricAugmentation(max_angle_deg=45, scale_range=(0.8, 1.2), max_translation_px=6,
                                flip_prob=0.5)
    out, kp, params = aug(images, pts[:, None, :], generator=7)
    assert out.shape == images.shape and params.flip.any() and (~params.flip).any()
    assert torch.allclose(_find_dot(out), kp[:, 0], atol=0.05)


def test_peclr_views_put_the_keypoints_on_the_dot_and_respect_ranges() -> None:
    gen = torch.Generator().manual_seed(2)
    b = 6
    pts = 30 + 20 * torch.rand(b, 2, generator=gen)
    images = _dots(pts, 80)
    centers = pts + torch.randn(b, 2, generator=gen)  # the hand box around the keypoint
    sides = torch.full((b,), 40.0)
    sampler = PeclrViewSampler(out_size=48, appearance=AppearanceAugmentation(jitter_prob=0))
    views, params, kp = sampler(images, centers, sides, generator=3, keypoints=pts[:, None])
    assert views.shape == (b, 3, 48, 48)
    assert torch.allclose(_find_dot(views), kp[:, 0], atol=0.05)
    # the hand centre lands at the view centre + translation
    centre_in_view = transform_points(centers[:, None], params.matrix)[:, 0]
    assert torch.allclose(centre_in_view, 23.5 + params.translation, atol=1e-4)
    # large batch: parameters within the METHODS ranges
    many, p2, _ = PeclrViewSampler(out_size=16)(torch.rand(400, 3, 32, 32), generator=0)
    assert p2.angle.abs().max() <= math.radians(45) and p2.angle.abs().max() > math.radians(40)
    assert p2.translation.abs().max() <= 15 and p2.translation.abs().max() > 14
    margin = 16 / (p2.scale * (32 / 1.2))
    assert margin.min() >= 0.9 - 1e-5 and margin.max() <= 1.5 + 1e-5
    assert margin.min() < 0.92 and margin.max() > 1.48
    assert 0.0 <= float(many.min()) and float(many.max()) <= 1.0


def test_rotation_is_counter_clockwise_as_displayed() -> None:
    m = affine_matrices(torch.tensor([math.pi / 2]), torch.ones(1), torch.zeros(1, 2),
                        torch.zeros(1, dtype=torch.bool), torch.tensor([10.0, 10.0]),
                        torch.tensor([10.0, 10.0]))
    right_of_centre = torch.tensor([[[15.0, 10.0]]])
    assert torch.allclose(transform_points(right_of_centre, m), torch.tensor([[[10.0, 5.0]]]),
                          atol=1e-5)  # now above the centre (y down)


def test_flip_is_a_mirror_and_composes_to_identity() -> None:
    images = torch.rand(2, 3, 9, 12)
    flip = torch.ones(2, dtype=torch.bool)
    m = affine_matrices(torch.zeros(2), torch.ones(2), torch.zeros(2, 2), flip,
                        torch.tensor([5.5, 4.0]), torch.tensor([5.5, 4.0]))
    flipped = warp_images(images, m, (9, 12))
    assert torch.allclose(flipped, torch.flip(images, dims=[-1]), atol=1e-5)
    m3 = torch.cat([m, torch.tensor([[[0.0, 0.0, 1.0]]]).expand(2, 1, 3)], 1)
    twice = (m3 @ m3)[:, :2]
    assert torch.allclose(twice, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3),
                          atol=1e-6)
    assert torch.allclose(warp_images(flipped, m, (9, 12)), images, atol=1e-5)
    right = torch.tensor([True, False, True])
    assert flip_handedness(right, torch.tensor([True, True, False])).tolist() == [
        False, True, True]


def test_flip_then_rotate_matches_the_matrix_product() -> None:
    gen = torch.Generator().manual_seed(5)
    pts = torch.rand(3, 5, 2, generator=gen) * 30
    aug = GeometricAugmentation(max_angle_deg=30, flip_prob=1.0)
    params = aug.sample(3, (32, 32), generator=11)
    c = torch.tensor([15.5, 15.5])
    flip_only = affine_matrices(torch.zeros(3), torch.ones(3), torch.zeros(3, 2),
                                torch.ones(3, dtype=torch.bool), c, c)
    rot_only = affine_matrices(params.angle, params.scale, params.translation,
                               torch.zeros(3, dtype=torch.bool), c, c)
    assert torch.allclose(transform_points(pts, params.matrix),
                          transform_points(transform_points(pts, flip_only), rot_only),
                          atol=1e-4)


def test_seeded_sampling_is_deterministic() -> None:
    images = torch.rand(4, 3, 32, 32)
    sampler = PeclrViewSampler(out_size=24)
    v1, p1, _ = sampler(images, generator=123)
    v2, p2, _ = sampler(images, generator=torch.Generator().manual_seed(123))
    v3, p3, _ = sampler(images, generator=124)
    assert torch.equal(v1, v2) and torch.equal(p1.matrix, p2.matrix)
    assert not torch.allclose(p1.matrix, p3.matrix)
    g = torch.Generator().manual_seed(9)
    a = GeometricAugmentation(max_angle_deg=10).sample(4, (32, 32), g)
    b = GeometricAugmentation(max_angle_deg=10).sample(4, (32, 32), g)
    assert not torch.equal(a.angle, b.angle)  # a shared generator advances


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="scale_range"):
        GeometricAugmentation(scale_range=(1.2, 0.8))
    with pytest.raises(ValueError, match="margin_range"):
        PeclrViewSampler(margin_range=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"sides must be \(2,\)|centers must be"):
        PeclrViewSampler()(torch.rand(2, 3, 8, 8), sides=torch.ones(3))
    with pytest.raises(ValueError, match="generator"):
        GeometricAugmentation().sample(2, (8, 8), generator="seed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"matrix must have shape \(2, 2, 3\)"):
        warp_images(torch.rand(2, 3, 8, 8), torch.zeros(3, 2, 3), (8, 8))
