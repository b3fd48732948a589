"""The sample contract: make_sample, collate, and hand crops that keep every field consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from handpose.core.data.handcrop import crop_sample
from handpose.core.data.sample import collate, make_sample
from handpose.core.geometry.crop import invert_affine


def _hand(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    K = np.array([[300.0, 0, 150], [0, 310.0, 100], [0, 0, 1]])
    joints = np.array([0.0, 0.0, 0.5]) + rng.normal(0, 0.03, (21, 3))
    return joints, K


def test_make_sample_types_projection_and_scale(rng):
    joints, K = _hand(rng)
    rgb = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    s = make_sample(rgb, index=3, source="t", K=K, joints3d=joints, handedness=1)
    assert s["rgb"].dtype == torch.uint8 and s["rgb"].shape == (3, 200, 300)
    assert torch.equal(s["rgb"].permute(1, 2, 0), torch.from_numpy(rgb))
    assert s["K"].dtype == torch.float32 and s["has_K"] is True
    cam = joints @ K.T
    np.testing.assert_allclose(s["uv"].numpy(), cam[:, :2] / cam[:, 2:], atol=1e-3)
    assert float(s["scale"]) == pytest.approx(np.linalg.norm(joints[9] - joints[10]), rel=1e-5)
    assert s["index"] == 3 and s["source"] == "t" and s["handedness"] == 1


def test_make_sample_default_K_and_no_labels(rng):
    rgb = np.zeros((480, 640, 3), np.uint8)
    s = make_sample(rgb, index=0, source="x")
    assert s["has_K"] is False
    K = s["K"].numpy()
    assert K[0, 2] == pytest.approx(319.5) and K[1, 2] == pytest.approx(239.5)
    assert K[0, 0] == pytest.approx(K[1, 1]) and 400 < K[0, 0] < 800  # a webcam-like FOV
    assert "joints3d" not in s and "uv" not in s and "scale" not in s and s["handedness"] == -1


def test_make_sample_rejects_bad_input():
    rgb = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="joints3d.*\\(21, 3\\)"):
        make_sample(rgb, index=0, source="x", joints3d=np.zeros((20, 3)))
    with pytest.raises(ValueError, match="rgb must be"):
        make_sample(rgb.astype(np.float32), index=0, source="x")
    with pytest.raises(ValueError, match="depth must have the image's shape"):
        make_sample(rgb, index=0, source="x", depth=np.zeros((5, 5), np.float32))
    with pytest.raises(ValueError, match="unknown sample keys"):
        make_sample(rgb, index=0, source="x", colour=1)
    with pytest.raises(ValueError, match="handedness"):
        make_sample(rgb, index=0, source="x", handedness=2)


def test_collate_optional_keys_are_zero_filled_with_flags(rng):
    joints, K = _hand(rng)
    a = make_sample(np.zeros((8, 8, 3), np.uint8), index=0, source="a", K=K, joints3d=joints)
    b = make_sample(np.ones((8, 8, 3), np.uint8), index=1, source="b",
                    depth=np.full((8, 8), 0.5, np.float32))
    batch = collate([a, b])
    assert batch["rgb"].shape == (2, 3, 8, 8)
    assert batch["has_joints3d"].tolist() == [True, False]
    assert batch["has_depth"].tolist() == [False, True]
    assert torch.equal(batch["joints3d"][1], torch.zeros(21, 3))
    assert torch.allclose(batch["joints3d"][0], torch.as_tensor(joints, dtype=torch.float32))
    assert batch["depth"][0].abs().sum() == 0 and batch["depth"][1].min() == 0.5
    assert batch["has_K"].tolist() == [True, False] and batch["has_K"].dtype == torch.bool
    assert batch["index"].tolist() == [0, 1] and batch["source"] == ["a", "b"]
    assert "has_rgb" not in batch


def test_collate_errors_and_dataloader():
    a = make_sample(np.zeros((8, 8, 3), np.uint8), index=0, source="a")
    b = make_sample(np.zeros((9, 8, 3), np.uint8), index=1, source="a")
    with pytest.raises(ValueError, match="crop_size"):
        collate([a, b])
    with pytest.raises(ValueError, match="empty"):
        collate([])
    loader = DataLoader([a, a, a], batch_size=2, collate_fn=collate)
    sizes = [len(bt["index"]) for bt in loader]
    assert sizes == [2, 1]


def test_crop_keeps_uv_K_depth_mask_consistent(rng):
    joints, K = _hand(rng)
    h, w = 200, 300
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = (np.arange(w) % 256)[None]  # red encodes the column
    rgb[..., 1] = (np.arange(h) % 256)[:, None]  # green the row
    depth = np.zeros((h, w), np.float32)
    depth[:, : w // 2] = 0.4
    depth[:, w // 2:] = 0.7
    mask = (depth > 0.5).astype(np.uint8)
    s = make_sample(rgb, index=0, source="t", K=K, joints3d=joints, depth=depth, mask=mask,
                    box=np.array([10, 20, 30, 40], np.float32))
    c = crop_sample(s, 64, 1.5)
    A = c["crop_affine"].double().numpy()
    assert c["rgb"].shape == (3, 64, 64) and c["depth"].shape == (1, 64, 64)
    # uv and K stay consistent: projecting with the crop K gives the crop uv
    cam = joints @ c["K"].double().numpy().T
    np.testing.assert_allclose(c["uv"].numpy(), cam[:, :2] / cam[:, 2:], atol=1e-2)
    # uncropping the crop uv gives the original uv
    back = np.asarray(invert_affine(A))
    full = c["uv"].double().numpy() @ back[:, :2].T + back[:, 2]
    np.testing.assert_allclose(full, s["uv"].numpy(), atol=1e-3)
    # the keypoints' bounding box fills 1 / 1.5 of the crop
    ext = (c["uv"].max(0).values - c["uv"].min(0).values).max()
    assert float(ext) == pytest.approx(64 / 1.5, rel=0.02)
    # image content moved with the affine: the centre pixel's colour encodes its source pixel
    src = back @ np.array([32.0, 32.0, 1.0])
    r, g = int(c["rgb"][0, 32, 32]), int(c["rgb"][1, 32, 32])
    assert abs(r - src[0] % 256) <= 1.5 and abs(g - src[1] % 256) <= 1.5
    # nearest-neighbour depth and mask: only original values, mask agrees with depth
    allowed = set(np.float32([0, 0.4, 0.7]).tolist())
    assert set(np.unique(c["depth"].numpy()).tolist()) <= allowed
    assert torch.equal(c["mask"][0] == 1, c["depth"][0] == 0.7)
    # box went through the affine (scale and offset)
    scale = np.hypot(*A[0, :2])
    assert float(c["box"][2]) == pytest.approx(30 * scale, rel=1e-4)
    assert float(c["box"][0]) == pytest.approx(A[0, 0] * 10 + A[0, 2], abs=1e-3)
    assert "crop_affine" not in s  # the input sample is untouched
    with pytest.raises(ValueError, match="already cropped"):
        crop_sample(c, 64)


def test_crop_without_labels_uses_box_then_centre_square():
    h, w = 100, 200
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = (np.arange(w) * 255 // (w - 1))[None]
    s = make_sample(rgb, index=0, source="t")
    c = crop_sample(s, 50)
    A = c["crop_affine"].double().numpy()
    inv = np.asarray(invert_affine(A))
    # the crop covers exactly the central 100 x 100 square (columns 50..149)
    left = inv @ np.array([-0.5, 0.0, 1.0])
    right = inv @ np.array([49.5, 0.0, 1.0])
    assert left[0] == pytest.approx(49.5) and right[0] == pytest.approx(149.5)
    boxed = make_sample(rgb, index=0, source="t", box=np.array([0, 0, 20, 10], np.float32))
    cb = crop_sample(boxed, 50, 2.0)
    inv = np.asarray(invert_affine(cb["crop_affine"].double().numpy()))
    centre = inv @ np.array([24.5, 24.5, 1.0])
    np.testing.assert_allclose(centre, [10.0, 5.0], atol=1e-4)  # box centre
    assert np.hypot(*inv[0, :2]) * 50 == pytest.approx(40.0)  # side = 2 x max(w, h)


def test_mirrored_crop_is_the_crop_flipped_and_stays_exact(rng):
    """``mirror=True``: the same crop flipped left to right; K (fx and skew negated), uv and
    crop_affine stay exact for the unchanged 3D joints; handedness swaps."""
    joints, K = _hand(rng)
    h, w = 200, 300
    y, x = np.mgrid[:h, :w]
    smooth = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 5.0)  # warpAffine samples at 1/32 px
    rgb = np.repeat(smooth[..., None], 3, axis=2).astype(np.uint8)
    mask = (rng.random((h, w)) > 0.5).astype(np.uint8)
    s = make_sample(rgb, index=0, source="t", K=K, joints3d=joints, mask=mask, handedness=0)
    plain, mirrored = crop_sample(s, 64, 1.5), crop_sample(s, 64, 1.5, mirror=True)
    diff = (mirrored["rgb"].int() - torch.flip(plain["rgb"], dims=[2]).int()).abs()
    assert int(diff.max()) <= 2  # bilinear sampling at mirrored points: rounding only
    assert torch.equal(mirrored["mask"], torch.flip(plain["mask"], dims=[2]))
    torch.testing.assert_close(mirrored["uv"][:, 0], 63 - plain["uv"][:, 0])
    torch.testing.assert_close(mirrored["uv"][:, 1], plain["uv"][:, 1])
    cam = joints @ mirrored["K"].double().numpy().T
    np.testing.assert_allclose(mirrored["uv"].numpy(), cam[:, :2] / cam[:, 2:], atol=1e-2)
    back = np.asarray(invert_affine(mirrored["crop_affine"].double().numpy()))
    full = mirrored["uv"].double().numpy() @ back[:, :2].T + back[:, 2]
    np.testing.assert_allclose(full, s["uv"].numpy(), atol=1e-3)
    assert float(mirrored["K"][0, 0]) == pytest.approx(-float(plain["K"][0, 0]))
    assert (plain["handedness"], mirrored["handedness"]) == (0, 1)
    unknown = make_sample(rgb, index=0, source="t", K=K, joints3d=joints)
    assert crop_sample(unknown, 64, mirror=True)["handedness"] == -1
