"""Confidence calibration: the head's error_scale from hand and no-hand crops."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from handpose.core.models import build_model
from handpose.training.recipes.confidence import calibrate_confidence, mean_confidence

RAW = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}  # the model sees [0, 1] pixels


class _Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.error_scale = 0.05


class CentreNet(nn.Module):
    """Predicts a small error when the crop's centre is brighter than its border: 0.05 on a
    bright centre over a dark border, 0.3 on noise, a flat crop or a rolled one."""

    def __init__(self) -> None:
        super().__init__()
        self.head = _Head()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        s = x.shape[-1]
        centre = x[:, :, s // 4:3 * s // 4, s // 4:3 * s // 4].mean(dim=(1, 2, 3))
        border = (x.sum(dim=(1, 2, 3)) - centre * 3 * (s // 2) ** 2) / (3 * (s * s - (s // 2) ** 2))
        err = (0.3 - 0.5 * torch.relu(centre - border - 0.5))[:, None].expand(-1, 21)
        return {"uv_error": err, "confidence": torch.exp(-err / self.head.error_scale)}


def hand_crops(n: int, s: int = 32) -> list[dict[str, Tensor]]:
    img = torch.zeros(3, s, s, dtype=torch.uint8)
    img[:, s // 4:3 * s // 4, s // 4:3 * s // 4] = 255
    return [{"rgb": img.clone()} for _ in range(n)]


def test_scale_puts_the_no_hand_crops_on_the_threshold() -> None:
    model = CentreNet()
    info = calibrate_confidence(model, hand_crops(12), RAW, min_confidence=0.3,
                                negative_quantile=0.05)
    # every no-hand crop predicts 0.3: exp(-0.3 / s) = 0.3 at the boundary
    expected = 0.3 / math.log(1 / 0.3)
    assert info["error_scale"] == pytest.approx(expected, rel=2e-3)
    assert model.head.error_scale == pytest.approx(info["error_scale"], rel=1e-4)
    assert info["error_scale_before"] == 0.05
    assert info["hand_error_median"] == pytest.approx(0.05, abs=1e-4)
    assert info["hand_confidence_median"] == pytest.approx(math.exp(-0.05 / expected), abs=1e-3)
    assert info["hand_confident_share"] == 1.0 and info["no_hand_confident_share"] <= 0.05
    assert info["hand_crops"] == 12 and info["no_hand_crops"] == 12 + 4 + 2


def test_mean_confidence_is_the_mean_over_joints() -> None:
    e = torch.tensor([[0.0, 0.1], [0.2, 0.2]]).double().numpy()
    got = mean_confidence(e, 0.1)
    assert got[0] == pytest.approx((1 + math.exp(-1)) / 2) and got[1] == pytest.approx(
        math.exp(-2))


def test_a_real_posenet_is_calibrated_in_place() -> None:
    model = build_model("posenet_resnet18", width=8).train()
    info = calibrate_confidence(model, hand_crops(4, s=64), RAW, limit=3)
    assert model.training  # measured in eval mode, handed back as it came
    assert model.head.error_scale == pytest.approx(info["error_scale"], rel=1e-4)
    assert info["hand_crops"] == 3 and 0 <= info["no_hand_confident_share"] <= 0.05


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="head.error_scale"):
        calibrate_confidence(nn.Linear(2, 2), hand_crops(2), RAW)
    with pytest.raises(ValueError, match="no crops"):
        calibrate_confidence(CentreNet(), [], RAW)
    with pytest.raises(ValueError, match="min_confidence"):
        calibrate_confidence(CentreNet(), hand_crops(2), RAW, min_confidence=1.5)
    with pytest.raises(ValueError, match="uv_error"):
        calibrate_confidence(NoErrorNet(), hand_crops(2), RAW)


class NoErrorNet(CentreNet):
    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"uv": torch.zeros(len(x), 21, 2)}
