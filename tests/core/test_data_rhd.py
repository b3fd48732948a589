"""RHD reader on a tiny RHD-format split folder written here."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from handpose.core.data.errors import DataError
from handpose.core.data.rhd import RHDDataset
from handpose.core.skeleton import convert_joint_order

S = 48


def _hand(rng: np.random.Generator, x: float) -> np.ndarray:
    return np.array([x, 0.0, 0.6]) + rng.normal(0, 0.02, (21, 3))  # handpose order


def write_rhd(root: Path, seed: int = 0) -> dict[str, list]:
    """3 images: 0 both hands visible, 1 right only, 2 left with 3 visible keypoints."""
    rng = np.random.default_rng(seed)
    for d in ("color", "mask", "depth"):
        (root / d).mkdir(parents=True)
    K = np.array([[80.0, 0, S / 2], [0, 80.0, S / 2], [0, 0, 1]])
    annos, hands = {}, []
    vis_counts = [(21, 21), (0, 21), (3, 0)]
    for i, (nl, nr) in enumerate(vis_counts):
        left, right = _hand(rng, -0.05), _hand(rng, 0.05)
        xyz = np.concatenate([convert_joint_order(left, "handpose", "rhd"),
                              convert_joint_order(right, "handpose", "rhd")])
        cam = xyz @ K.T
        vis = np.zeros(42)
        vis[:nl] = 1
        vis[21: 21 + nr] = 1
        annos[i] = {"xyz": xyz.astype(np.float32), "K": K.astype(np.float32),
                    "uv_vis": np.concatenate([cam[:, :2] / cam[:, 2:], vis[:, None]], 1)
                    .astype(np.float32)}
        hands.append((left, right))
        img = np.full((S, S, 3), 30 * i, np.uint8)
        cv2.imwrite(str(root / "color" / f"{i:05d}.png"), img)
        mask = np.ones((S, S), np.uint8)  # person
        mask[:, :10] = 5  # a left finger part
        mask[:, 30:] = 33  # right palm
        cv2.imwrite(str(root / "mask" / f"{i:05d}.png"), mask)
        code = np.full((S, S), int(round(0.6 / 5 * 65535)), np.int64)
        depth = np.stack([np.zeros_like(code), code % 256, code // 256], -1).astype(np.uint8)
        cv2.imwrite(str(root / "depth" / f"{i:05d}.png"), depth)  # BGR: R = high byte
    with open(root / "anno_training.pickle", "wb") as f:
        pickle.dump(annos, f, protocol=2)
    return {"hands": hands, "annos": list(annos.values())}


def test_each_visible_hand_is_a_sample(tmp_path):
    fx = write_rhd(tmp_path)
    ds = RHDDataset(tmp_path)
    assert len(ds) == 3  # image 0 left + right, image 1 right; image 2 has 3 < 6 visible
    want = [(0, 0), (0, 1), (1, 1)]
    for k, (img, side) in enumerate(want):
        s = ds[k]
        assert s["handedness"] == side and s["path"].endswith(f"{img:05d}.png")
        np.testing.assert_allclose(s["joints3d"].numpy(), fx["hands"][img][side], atol=1e-6)
        cam = fx["hands"][img][side] @ s["K"].double().numpy().T
        np.testing.assert_allclose(s["uv"].numpy(), cam[:, :2] / cam[:, 2:], atol=1e-3)
        assert float(s["depth"][0, 5, 5]) == pytest.approx(0.6, abs=1e-4)
        cols = slice(0, 10) if side == 0 else slice(30, S)
        assert s["mask"][0, :, cols].all() and int(s["mask"].sum()) == S * (10 if side == 0
                                                                              else S - 30)
    assert ds[2]["visible"].all()
    assert RHDDataset(tmp_path, min_visible=3).__len__() == 4


def test_dominant_and_one_side(tmp_path):
    write_rhd(tmp_path)
    dom = RHDDataset(tmp_path, hands="dominant", min_visible=1)
    assert [(s["path"][-9:-4], s["handedness"]) for s in dom] == [
        ("00000", 1), ("00001", 1), ("00002", 0)]  # tie -> right
    left = RHDDataset(tmp_path, hands="left", min_visible=3)
    s = left[1]
    assert s["handedness"] == 0 and int(s["visible"].sum()) == 3
    assert len(RHDDataset(tmp_path, hands="right", crop_size=32)) == 2
    with pytest.raises(ValueError, match="hands must be"):
        RHDDataset(tmp_path, hands="both")


def test_split_argument_and_crop(tmp_path):
    write_rhd(tmp_path / "training")
    c = RHDDataset(tmp_path, "training", crop_size=32)[0]
    assert c["rgb"].shape == (3, 32, 32) and c["mask"].shape == (1, 32, 32)


def test_bad_pickles(tmp_path):
    write_rhd(tmp_path)
    p = tmp_path / "anno_training.pickle"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"anno_training\.pickle: cannot read"):
        RHDDataset(tmp_path)
    p.write_bytes(pickle.dumps({0: os.getcwd}))  # a callable: must not be loaded
    with pytest.raises(DataError, match="refusing to load"):
        RHDDataset(tmp_path)
    with pytest.raises(DataError, match="no anno_"):
        RHDDataset(tmp_path / "color")


def test_bad_entry_and_missing_image(tmp_path):
    fx = write_rhd(tmp_path)
    annos = dict(enumerate(fx["annos"]))
    annos[1] = {**annos[1], "xyz": annos[1]["xyz"][:40]}
    with open(tmp_path / "anno_training.pickle", "wb") as f:
        pickle.dump(annos, f)
    with pytest.raises(DataError, match=r"bad annotation of sample 1 .*xyz"):
        RHDDataset(tmp_path)
    with pytest.warns(RuntimeWarning):
        ds = RHDDataset(tmp_path, skip_bad=True)
    assert len(ds) == 2 and ds.skipped.count == 1
    ds.skip_bad = False
    (tmp_path / "color" / "00000.png").unlink()
    with pytest.raises(DataError, match=r"00000\.png: file not found"):
        ds[0]
