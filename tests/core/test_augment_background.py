"""Background replacement of labelled crops: the hand region from keypoints and the swap."""

from __future__ import annotations

import numpy as np
import pytest

from handpose.core.augment_background import hand_region_mask, swap_background
from handpose.core.data.synthetic.backgrounds import BackgroundSource
from handpose.core.skeleton import BONES


def _hand(size: int = 128) -> np.ndarray:
    """(21, 2) an open upright hand in a ``size`` crop: the wrist low, fingers spread up."""
    c, s = size / 2, size / 128
    wrist = np.array([c, c + 40 * s])
    out = [wrist]
    for f, dx in enumerate((-30, -12, 0, 12, 24)):
        base = wrist + np.array([dx * 0.6, -25]) * s
        tip = wrist + np.array([dx * 1.2, -80 if f else -50]) * s
        out += [base + (tip - base) * k / 3 for k in range(4)]
    return np.array(out)


def test_the_mask_covers_every_joint_and_bone_and_not_the_corners() -> None:
    uv = _hand()
    m = hand_region_mask(uv, 128, 128, forearm=False, feather_px=0)
    assert set(np.unique(m)) <= {0.0, 1.0}
    for a, b in BONES:
        for t in np.linspace(0, 1, 9):
            x, y = np.round(uv[a] + t * (uv[b] - uv[a])).astype(int)
            assert m[y, x] == 1.0
    for y, x in ((0, 0), (0, 127), (127, 0), (127, 127)):
        assert m[y, x] == 0.0
    # a finger's capsule is about 0.13 of the keypoint box wide: a pixel 20 px outside the
    # little finger's middle is off the hand, one 3 px to the side is on it
    mid = np.round((uv[18] + uv[19]) / 2).astype(int)
    assert m[mid[1], mid[0] + 3] == 1.0 and m[mid[1], mid[0] + 20] == 0.0


def test_the_forearm_band_leaves_the_wrist_away_from_the_fingers() -> None:
    uv = _hand()
    with_arm = hand_region_mask(uv, 128, 128, forearm=True, feather_px=0)
    without = hand_region_mask(uv, 128, 128, forearm=False, feather_px=0)
    below = np.round(uv[0] + [0, 20]).astype(int)  # the wrist is low, the fingers point up
    above_tip = np.round(uv[12] - [0, 10]).astype(int)
    assert with_arm[below[1], below[0]] == 1.0 and without[below[1], below[0]] == 0.0
    assert with_arm[above_tip[1], above_tip[0]] == 0.0
    assert np.all(with_arm >= without)


def test_feathering_softens_only_the_edge() -> None:
    uv = _hand()
    hard = hand_region_mask(uv, 128, 128, feather_px=0)
    soft = hand_region_mask(uv, 128, 128, feather_px=1.5)
    assert np.all(soft[hard == 1.0] >= 0.5)  # the region itself is never more than half gone
    inner = hard.copy()
    for _ in range(6):  # 6 px (4 sigma) inside the edge the mask is whole again
        inner = np.minimum(inner, np.roll(inner, 1, 0))
        inner = np.minimum(inner, np.roll(inner, -1, 0))
        inner = np.minimum(inner, np.roll(inner, 1, 1))
        inner = np.minimum(inner, np.roll(inner, -1, 1))
    assert np.allclose(soft[inner == 1.0], 1.0, atol=1e-3)
    outer = hard.copy()
    for _ in range(6):  # and 6 px outside the edge nothing of the hand is left
        outer = np.maximum(outer, np.roll(outer, 1, 0))
        outer = np.maximum(outer, np.roll(outer, -1, 0))
        outer = np.maximum(outer, np.roll(outer, 1, 1))
        outer = np.maximum(outer, np.roll(outer, -1, 1))
    assert np.allclose(soft[outer == 0.0], 0.0, atol=2e-3)
    assert np.count_nonzero((soft > 0.01) & (hard == 0)) > 0  # but the edge is soft


def test_swap_keeps_the_hand_and_replaces_the_rest() -> None:
    rng = np.random.default_rng(0)
    img = np.full((128, 128, 3), 200, np.uint8)
    img[..., 0] = 30  # a flat backdrop with a distinct colour
    uv = _hand()
    out = swap_background(img, uv, np.random.default_rng(1))
    assert out.shape == img.shape and out.dtype == np.uint8 and out is not img
    keep = hand_region_mask(uv, 128, 128) >= 1.0 - 1e-6
    np.testing.assert_array_equal(out[keep], img[keep])
    outside = hand_region_mask(uv, 128, 128) == 0.0
    assert np.mean(np.any(out[outside] != img[outside], axis=-1)) > 0.9
    # deterministic in its generator, different across draws
    np.testing.assert_array_equal(out, swap_background(img, uv, np.random.default_rng(1)))
    assert not np.array_equal(out, swap_background(img, uv, rng))


def test_swap_takes_backgrounds_from_a_folder(tmp_path) -> None:
    import cv2

    (tmp_path / "bg").mkdir()
    blue = np.zeros((40, 60, 3), np.uint8)
    blue[..., 0] = 255  # BGR on disk: pure blue
    cv2.imwrite(str(tmp_path / "bg" / "wall.png"), blue)
    source = BackgroundSource(tmp_path / "bg", folder_prob=1.0)
    img = np.full((128, 128, 3), 128, np.uint8)
    uv = _hand()
    out = swap_background(img, uv, np.random.default_rng(0), source=source)
    outside = hand_region_mask(uv, 128, 128) == 0.0
    px = out[outside].astype(int)
    assert np.all(px[:, 0] == 0) and np.all(px[:, 1] == 0) and np.all(px[:, 2] > 150)


@pytest.mark.parametrize("uv, h, w, match", [
    (np.zeros((20, 2)), 64, 64, "21, 2"),
    (np.full((21, 2), np.nan), 64, 64, "finite"),
    (np.zeros((21, 2)), 0, 64, "positive"),
])
def test_bad_mask_inputs_are_rejected(uv, h, w, match) -> None:
    with pytest.raises(ValueError, match=match):
        hand_region_mask(uv, h, w)


def test_swap_rejects_images_that_are_not_rgb_bytes() -> None:
    with pytest.raises(ValueError, match="uint8"):
        swap_background(np.zeros((64, 64, 3), np.float32), _hand(64), np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        swap_background(np.zeros((64, 64), np.uint8), _hand(64), np.random.default_rng(0))
