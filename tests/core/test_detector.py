from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from handpose.core.inference.detector import PalmDetector


@pytest.fixture(scope="module")
def detector():
    with PalmDetector(max_hands=2) as d:
        yield d


def test_finds_the_hand_in_real_frames_and_its_region_covers_the_keypoints(detector, hgc_dir):
    xyz = np.array(json.loads((hgc_dir / "training_xyz.json").read_text()))
    K = np.array(json.loads((hgc_dir / "training_K.json").read_text()))
    found = 0
    for i in range(0, 400, 40):
        bgr = cv2.imread(str(hgc_dir / "training" / "rgb" / f"{i:08d}.jpg"))
        rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (512, 512))
        dets = detector.detect(rgb)
        if not dets:
            continue
        found += 1
        p = (K[i] @ xyz[i].T).T
        uv = p[:, :2] / p[:, 2:] * 2.0  # labels are for 256x256
        x, y, w, h = dets[0].box()
        inside = (uv[:, 0] >= x) & (uv[:, 0] <= x + w) & (uv[:, 1] >= y) & (uv[:, 1] <= y + h)
        assert inside.mean() >= 0.9, f"frame {i}: the hand region misses keypoints"
        assert 0.0 < dets[0].score <= 1.0
    assert found >= 8


def test_no_hand_in_a_blank_frame(detector) -> None:
    assert detector.detect(np.full((240, 320, 3), 127, np.uint8)) == []


def test_bad_input(detector) -> None:
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        detector.detect(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="max_hands"):
        PalmDetector(max_hands=0)
