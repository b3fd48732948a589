"""Unlabelled image folders and index CSVs (the real_hands format)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from handpose.core.data.errors import DataError
from handpose.core.data.folder import ImageFolderDataset, read_index_csv
from handpose.core.data.sample import collate
from handpose.core.geometry.crop import invert_affine

HEADER = ["path", "source", "width", "height", "framing", "n_boxes", "box_x", "box_y", "box_w",
          "box_h", "boxes", "gesture", "hand_side", "view", "subject", "orig_path", "notes"]


def _img(path: Path, w: int, h: int, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), value, np.uint8)
    cv2.imwrite(str(path), img)


def _row(path: str, source: str, w: int, h: int, framing: str, box: tuple = ("", "", "", ""),
         side: str = "") -> list[str]:
    return [path, source, str(w), str(h), framing, "1" if box[0] != "" else "0", *map(str, box),
            "", "", side, "", "", "", ""]


def write_tree(root: Path) -> Path:
    _img(root / "crops" / "a.jpg", 40, 30)
    _img(root / "crops" / "sub" / "b.png", 20, 20)
    _img(root / "scenes" / "c.jpg", 64, 48, 50)
    _img(root / ".hidden" / "x.jpg", 8, 8)
    (root / "scenes" / "notes.txt").write_text("not an image")
    rows = [HEADER, _row("crops/a.jpg", "crops", 40, 30, "crop", side="left"),
            _row("crops/sub/b.png", "crops", 20, 20, "crop", side="right"),
            _row("scenes/c.jpg", "scenes", 64, 48, "scene", (10, 8, 20, 16))]
    csv_path = root / "index.csv"
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return csv_path


def test_folder_scan_is_recursive_sorted_and_skips_hidden(tmp_path):
    write_tree(tmp_path)
    ds = ImageFolderDataset(tmp_path)
    assert [Path(s["path"]).relative_to(tmp_path).as_posix() for s in ds] == [
        "crops/a.jpg", "crops/sub/b.png", "scenes/c.jpg"]
    s = ds[2]
    assert s["rgb"].shape == (3, 48, 64) and not s["has_K"] and "box" not in s
    assert s["source"] == "scenes" and "uv" not in s and "joints3d" not in s
    assert len(ImageFolderDataset(tmp_path, sources=["crops"])) == 2
    crops = ImageFolderDataset(tmp_path, crop_size=16)
    batch = collate([crops[i] for i in range(3)])
    assert batch["rgb"].shape == (3, 3, 16, 16)


def test_csv_boxes_framing_and_handedness(tmp_path):
    csv_path = write_tree(tmp_path)
    ds = ImageFolderDataset(tmp_path, csv_path)
    assert len(ds) == 3
    assert [s["handedness"] for s in ds] == [0, 1, -1]
    scene = ds[2]
    assert scene["box"].tolist() == [9.5, 7.5, 20, 16]  # pixel edges -> pixel centres
    assert ds[0]["box"].tolist() == [-0.5, -0.5, 40, 30]  # a crop image: the whole image
    only_scene = ImageFolderDataset(tmp_path, csv_path, framing="scene", crop_size=32)
    c = only_scene[0]
    inv = np.asarray(invert_affine(c["crop_affine"].double().numpy()))
    np.testing.assert_allclose(inv @ [15.5, 15.5, 1.0], [19.5, 15.5], atol=1e-4)  # box centre
    side = np.hypot(*inv[0, :2]) * 32
    assert side == pytest.approx(20 * only_scene.crop_margin)
    crop_img = ImageFolderDataset(tmp_path, csv_path, framing="crop", crop_size=32)[0]
    inv = np.asarray(invert_affine(crop_img["crop_affine"].double().numpy()))
    assert np.hypot(*inv[0, :2]) * 32 == pytest.approx(40.0)  # whole image, margin 1
    assert torch.all(crop_img["rgb"][:, 16, :] > 0)  # the image spans the crop's width
    with pytest.raises(ValueError, match="framing filtering needs index_csv"):
        ImageFolderDataset(tmp_path, framing="scene")


def _bad_csv(tmp_path: Path, bad_row: list[str]) -> Path:
    write_tree(tmp_path)
    p = tmp_path / "bad.csv"
    rows = [HEADER, _row("crops/a.jpg", "crops", 40, 30, "crop"), bad_row,
            _row("scenes/c.jpg", "scenes", 64, 48, "scene", (10, 8, 20, 16))]
    with open(p, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return p


def test_csv_wrong_column_count(tmp_path):
    p = _bad_csv(tmp_path, ["crops/sub/b.png", "crops", "20"])
    with pytest.raises(DataError, match=r"bad\.csv, line 3: expected 17 columns .* got 3"):
        ImageFolderDataset(tmp_path, p)


def test_csv_non_numeric_box_and_skip(tmp_path):
    p = _bad_csv(tmp_path, _row("crops/sub/b.png", "crops", 20, 20, "scene", (1, "abc", 3, 4)))
    with pytest.raises(DataError, match=r"bad\.csv, line 3: box_x, box_y, box_w, box_h must "
                       "be numbers"):
        ImageFolderDataset(tmp_path, p)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolderDataset(tmp_path, p, skip_bad=True)
    assert len(caught) == 1 and "line 3" in str(caught[0].message)
    assert ds.skipped.count == 1
    # nothing else lost: the good rows around the bad one are all there
    assert [Path(e.path).name for e in ds.entries] == ["a.jpg", "c.jpg"]


def test_csv_other_bad_values(tmp_path):
    write_tree(tmp_path)
    cases = [
        (_row("x.jpg", "s", 4, 4, "scene", (1, 2, 0, 4)), "w, h > 0"),
        (_row("x.jpg", "s", 4, 4, "wide"), "framing must be"),
        (_row("x.jpg", "s", 4, 4, "crop", side="both"), "hand_side must be"),
        (_row("x.jpg", "s", "four", 4, "crop"), "width/height must be integers"),
    ]
    for row, msg in cases:
        p = tmp_path / "one.csv"
        with open(p, "w", newline="") as f:
            csv.writer(f).writerows([HEADER, row])
        with pytest.raises(DataError, match=f"one.csv, line 2: .*{msg}"):
            read_index_csv(p, tmp_path)
    p.write_text("file,source\na.jpg,x\n")
    with pytest.raises(DataError, match="line 1: no 'path' column"):
        read_index_csv(p, tmp_path)


def test_size_mismatch_and_corrupt_image(tmp_path):
    write_tree(tmp_path)
    p = tmp_path / "sz.csv"
    with open(p, "w", newline="") as f:
        csv.writer(f).writerows([HEADER, _row("crops/a.jpg", "crops", 41, 30, "crop"),
                                 _row("scenes/c.jpg", "scenes", 64, 48, "scene")])
    ds = ImageFolderDataset(tmp_path, p)
    with pytest.raises(DataError, match=r"sz\.csv, line 2: .*a\.jpg is 40x30 but the CSV says "
                       "41x30"):
        ds[0]
    (tmp_path / "scenes" / "c.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(DataError, match=r"c\.jpg: image cannot be decoded"):
        ds[1]


def test_real_hands_index(real_hands_dir):
    ds = ImageFolderDataset(real_hands_dir, real_hands_dir / "index.csv",
                            sources=["subhi_handsdataset"], framing="scene", crop_size=64)
    assert len(ds) > 1000
    for i in (0, len(ds) // 2, len(ds) - 1):
        s = ds[i]
        assert s["rgb"].shape == (3, 64, 64) and s["source"] == "subhi_handsdataset"
        assert s["box"][2] > 0 and s["box"][2] <= 64  # the box fits in the crop (margin > 1)
    digits = ImageFolderDataset(real_hands_dir, real_hands_dir / "index.csv",
                                sources=["sign_digits"], crop_size=32)
    s = digits[0]
    assert s["rgb"].shape == (3, 32, 32) and s["rgb"].float().std() > 1  # real content
