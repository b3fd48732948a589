"""Skeleton images and the run logger."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from handpose.core.skeleton import BONES
from handpose.training.logging import RunLogger, draw_skeletons


def test_skeletons_are_drawn_along_the_bones_only() -> None:
    uv = torch.zeros(1, 21, 2)
    uv[0, :, 0] = torch.linspace(10, 50, 21)  # a zig-zag of joints inside a 64 px image
    uv[0, :, 1] = 32 + 10 * torch.tensor([(-1) ** k for k in range(21)], dtype=torch.float32)
    out = draw_skeletons(torch.zeros(1, 3, 64, 64, dtype=torch.uint8), uv)
    assert out.shape == (1, 3, 64, 64) and out.dtype == np.uint8
    p, c = BONES[10]  # a middle-finger bone: its midpoint is painted
    mid = ((uv[0, p] + uv[0, c]) / 2).round().long()
    assert out[0, :, mid[1], mid[0]].max() > 0
    assert out[0, :, 0:4, 60:64].max() == 0  # far from every bone: untouched
    gt = draw_skeletons(torch.zeros(1, 3, 64, 64), uv, uv_gt=uv + 3)
    assert gt.sum() > out.sum()
    with pytest.raises(ValueError, match=r"uv: expected \(1, 21, 2\)"):
        draw_skeletons(torch.zeros(1, 3, 8, 8), torch.zeros(1, 20, 2))


def test_logger_writes_jsonl_and_is_silent_when_disabled(tmp_path: Path) -> None:
    with RunLogger(tmp_path / "a", total_steps=3, progress=False) as log:
        log.scalars({"loss": 1.5}, 1, "train")
        log.images("img", np.zeros((2, 3, 4, 4), np.uint8), 1)
    assert json.loads((tmp_path / "a/metrics.jsonl").read_text()) == {"step": 1, "train/loss": 1.5}
    with RunLogger(tmp_path / "b", total_steps=3, enabled=False) as off:
        off.scalars({"loss": 1.0}, 1)
    assert not (tmp_path / "b").exists()
