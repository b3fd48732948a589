"""RGB-D folders in the real_rgbd format (frames.json + uint16 mm depth PNGs)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from handpose.core.data.errors import DataError
from handpose.core.data.rgbd import RGBDFolderDataset, parse_depth_unit

W, H = 32, 24


def write_rgbd(root: Path, n: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    K = [[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]]
    frames = []
    for i in range(n):
        cv2.imwrite(str(root / f"{i:06d}_rgb.jpg"), np.full((H, W, 3), 60 + i, np.uint8))
        d = np.full((H, W), 450 + i, np.uint16)
        d[0, 0] = 0  # no reading
        cv2.imwrite(str(root / f"{i:06d}_depth.png"), d)
        joints = (np.array([0.0, 0.0, 0.45]) + rng.normal(0, 0.02, (21, 3))).tolist()
        frames.append({"rgb": f"{i:06d}_rgb.jpg", "depth": f"{i:06d}_depth.png", "K": K,
                       "joints_m": joints})
    doc = {"depth_unit": "millimetres (uint16 PNG, 0 = no reading)", "frames": frames}
    (root / "frames.json").write_text(json.dumps(doc, indent=1))
    return doc


def test_reads_frames_depth_and_labels(tmp_path):
    doc = write_rgbd(tmp_path)
    ds = RGBDFolderDataset(tmp_path)
    assert len(ds) == 3
    s = ds[1]
    assert s["rgb"].shape == (3, H, W) and s["depth"].shape == (1, H, W)
    assert float(s["depth"][0, 5, 5]) == pytest.approx(0.451) and float(s["depth"][0, 0, 0]) == 0
    np.testing.assert_allclose(s["joints3d"].numpy(), doc["frames"][1]["joints_m"], atol=1e-6)
    K = np.array(doc["frames"][1]["K"])
    cam = np.array(doc["frames"][1]["joints_m"]) @ K.T
    np.testing.assert_allclose(s["uv"].numpy(), cam[:, :2] / cam[:, 2:], atol=1e-3)
    assert s["has_K"] and s["handedness"] == -1
    c = RGBDFolderDataset(tmp_path, crop_size=16)[0]
    assert c["depth"].shape == (1, 16, 16) and c["uv"].shape == (21, 2)


def test_depth_units():
    assert parse_depth_unit("millimetres (uint16 PNG, 0 = no reading)") == 0.001
    assert parse_depth_unit("mm") == 0.001 and parse_depth_unit(None) == 0.001
    assert parse_depth_unit("metres") == 1.0 and parse_depth_unit("m") == 1.0
    assert parse_depth_unit("centimeters") == 0.01 and parse_depth_unit(0.0001) == 0.0001
    with pytest.raises(DataError, match="unknown depth_unit 'furlongs'"):
        parse_depth_unit("furlongs")


def test_bad_frames_json(tmp_path):
    doc = write_rgbd(tmp_path)
    doc["frames"][1]["joints_m"] = doc["frames"][1]["joints_m"][:5]
    (tmp_path / "frames.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"frames\.json, entry 1: bad frame entry .*joints_m"):
        RGBDFolderDataset(tmp_path)
    with pytest.warns(RuntimeWarning):
        ds = RGBDFolderDataset(tmp_path, skip_bad=True)
    assert len(ds) == 2 and ds.skipped.count == 1
    (tmp_path / "frames.json").write_text(json.dumps(doc)[:200])
    with pytest.raises(DataError, match=r"frames\.json, line 1: truncated JSON"):
        RGBDFolderDataset(tmp_path)


def test_misaligned_depth_is_named(tmp_path):
    write_rgbd(tmp_path)
    cv2.imwrite(str(tmp_path / "000002_depth.png"), np.zeros((10, 10), np.uint16))
    with pytest.raises(DataError, match=r"000002_depth\.png: depth is \(10, 10\) but the image "
                       r"is \(32, 24\)"):
        RGBDFolderDataset(tmp_path)[2]


def test_real_rgbd(rgbd_dir):
    ds = RGBDFolderDataset(rgbd_dir)
    assert len(ds) == 25
    s = ds[0]
    assert s["rgb"].shape == (3, 480, 640) and s["depth"].shape == (1, 480, 640)
    # the depth at the wrist's pixel is near the wrist's Z (a hand surface, within 5 cm)
    u, v = s["uv"][0].round().long().tolist()
    patch = s["depth"][0, v - 3: v + 4, u - 3: u + 4]
    valid = patch[patch > 0]
    assert len(valid) > 0
    assert abs(float(valid.median()) - float(s["joints3d"][0, 2])) < 0.05
