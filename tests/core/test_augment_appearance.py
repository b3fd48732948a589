"""Appearance augmentation: each step does what it says, deterministically, within [0, 1]."""

from __future__ import annotations

import pytest
import torch
from kornia.color import hsv_to_rgb, rgb_to_hsv

from handpose.core.augment import (
    AppearanceAugmentation,
    color_jitter,
    random_erasing,
    random_gaussian_blur,
    random_grayscale,
)


def _images(b: int = 4, s: int = 24) -> torch.Tensor:
    return torch.rand(b, 3, s, s, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1


def test_color_jitter_identity_and_value_scaling() -> None:
    x = _images()
    same = color_jitter(x, hue=0.0, saturation=(1, 1), value=(1, 1), value_shift=0.0)
    assert torch.allclose(same, x, atol=1e-5)
    # value only: every pixel's V scales by one factor per image, hue and saturation stay
    out = color_jitter(x, hue=0.0, saturation=(1, 1), value=(0.5, 0.9), value_shift=0.0,
                       generator=1)
    hsv_in, hsv_out = rgb_to_hsv(x), rgb_to_hsv(out)
    ratio = hsv_out[:, 2] / hsv_in[:, 2]
    per_image = ratio.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-4)
    assert per_image.min() >= 0.5 - 1e-4 and per_image.max() <= 0.9 + 1e-4
    assert torch.allclose(hsv_out[:, 1], hsv_in[:, 1], atol=1e-4)


def test_hue_shift_rotates_hue() -> None:
    hsv = torch.zeros(1, 3, 4, 4)
    hsv[:, 0], hsv[:, 1], hsv[:, 2] = 1.0, 0.8, 0.7  # hue 1 rad
    x = hsv_to_rgb(hsv)
    out = color_jitter(x, hue=0.1, saturation=(1, 1), value=(1, 1), value_shift=0.0,
                       generator=3)
    dh = rgb_to_hsv(out)[:, 0] - 1.0
    assert dh.abs().max() > 1e-3 and dh.abs().max() <= 0.1 * 2 * torch.pi + 1e-4
    assert torch.allclose(dh, dh.flatten()[0].expand_as(dh), atol=1e-4)


def test_grayscale_blur_erasing() -> None:
    x = _images()
    g = random_grayscale(x, p=1.0)
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    assert torch.equal(random_grayscale(x, p=0.0), x)
    blurred = random_gaussian_blur(x, p=1.0, sigma=(1.5, 2.0))
    assert blurred[..., 4:-4, 4:-4].var() < 0.5 * x[..., 4:-4, 4:-4].var()
    erased = random_erasing(x, p=1.0, area=(0.1, 0.2), fill="zero", generator=5)
    frac = (erased == 0).all(dim=1).float().mean(dim=(1, 2))
    assert torch.all(frac >= 0.1 - 0.05) and torch.all(frac <= 0.2 + 0.05)
    assert torch.equal(random_erasing(x, p=0.0, generator=5), x)


def test_pipeline_is_seeded_and_stays_in_range() -> None:
    x = _images(8)
    aug = AppearanceAugmentation(grayscale_prob=0.3, blur_prob=0.5, erase_prob=0.5)
    a, b = aug(x, generator=42), aug(x, generator=42)
    assert torch.equal(a, b) and not torch.equal(a, aug(x, generator=43))
    assert a.min() >= 0 and a.max() <= 1
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        color_jitter(torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match="fill"):
        random_erasing(x, fill="noise")
