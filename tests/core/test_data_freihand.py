"""FreiHAND-layout reader: versions, labels, synthetic extensions, bad input, real_eval_hgc."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from handpose.core.data.errors import DataError
from handpose.core.data.freihand import FreiHANDDataset
from handpose.core.data.sample import collate

W, H = 40, 30


def _colour(i: int, v: int) -> int:
    return 20 + 40 * v + 7 * i  # distinct grey level per (sample, version)


def write_freihand(root: Path, n: int = 5, versions: int = 1, extras: bool = False,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny FreiHAND folder: n labels, versions x n images of W x H."""
    rng = np.random.default_rng(seed)
    (root / "training" / "rgb").mkdir(parents=True)
    xyz = np.array([0.0, 0.0, 0.5]) + rng.normal(0, 0.02, (n, 21, 3))
    K = np.tile(np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]]), (n, 1, 1))
    scale = np.linalg.norm(xyz[:, 9] - xyz[:, 10], axis=1)
    for name, arr in (("xyz", xyz), ("K", K), ("scale", scale)):
        (root / f"training_{name}.json").write_text(json.dumps(arr.tolist()))
    for v in range(versions):
        for i in range(n):
            img = np.full((H, W, 3), _colour(i, v), np.uint8)
            cv2.imwrite(str(root / "training" / "rgb" / f"{i + v * n:08d}.jpg"), img)
    out = {"xyz": xyz, "K": K, "scale": scale}
    if extras:
        (root / "training" / "depth").mkdir()
        (root / "training" / "mask").mkdir()
        for i in range(n):
            d = np.full((H, W), 400 + i, np.uint16)
            cv2.imwrite(str(root / "training" / "depth" / f"{i:08d}.png"), d)
            m = np.zeros((H, W), np.uint8)
            m[:, : 10 + i] = 255
            cv2.imwrite(str(root / "training" / "mask" / f"{i:08d}.png"), m)
        ext = np.tile(np.eye(4)[:3], (n, 1, 1))
        ext[:, 0, 3] = np.arange(n)
        (root / "extrinsics.json").write_text(json.dumps(ext.tolist()))
        out["ext"] = ext
    return out


def test_reads_labels_and_images(tmp_path):
    lab = write_freihand(tmp_path, n=4)
    ds = FreiHANDDataset(tmp_path)
    assert len(ds) == 4 and ds.available == ("gs",)
    s = ds[2]
    assert s["rgb"].shape == (3, H, W)
    assert abs(int(s["rgb"][0, 5, 5]) - _colour(2, 0)) <= 2
    np.testing.assert_allclose(s["joints3d"].numpy(), lab["xyz"][2], atol=1e-6)
    cam = lab["xyz"][2] @ lab["K"][2].T
    np.testing.assert_allclose(s["uv"].numpy(), cam[:, :2] / cam[:, 2:], atol=1e-3)
    assert float(s["scale"]) == pytest.approx(lab["scale"][2], rel=1e-6)
    assert s["has_K"] and s["handedness"] == 1 and s["source"] == "freihand"
    assert "depth" not in s and "mask" not in s


def test_versions_index_images_i_plus_v_times_n(tmp_path):
    write_freihand(tmp_path, n=3, versions=4)
    ds = FreiHANDDataset(tmp_path, versions=("gs", "auto"))
    assert ds.available == ("gs", "hom", "sample", "auto") and len(ds) == 6
    for j, (i, v) in enumerate([(0, 0), (1, 0), (2, 0), (0, 3), (1, 3), (2, 3)]):
        s = ds[j]
        assert abs(int(s["rgb"][0, 3, 3]) - _colour(i, v)) <= 2, j
        assert s["path"].endswith(f"{i + v * 3:08d}.jpg")
    assert torch.equal(ds[0]["joints3d"], ds[3]["joints3d"])  # same labels in every version


def test_unavailable_version_is_a_clear_error(tmp_path):
    write_freihand(tmp_path, n=3, versions=1)
    with pytest.raises(ValueError, match=r"versions \['hom'\] not in .*holds \('gs',\)"):
        FreiHANDDataset(tmp_path, versions=("gs", "hom"))
    with pytest.raises(ValueError, match="subset of"):
        FreiHANDDataset(tmp_path, versions=("green",))


def test_synthetic_extensions_depth_mask_extrinsics(tmp_path):
    lab = write_freihand(tmp_path, n=3, extras=True)
    s = FreiHANDDataset(tmp_path)[1]
    assert s["depth"].shape == (1, H, W) and float(s["depth"][0, 0, 0]) == pytest.approx(0.401)
    assert s["mask"].dtype == torch.uint8 and int(s["mask"].sum()) == H * 11
    np.testing.assert_allclose(s["extrinsics"].numpy()[:3], lab["ext"][1], atol=1e-6)
    assert s["extrinsics"][3].tolist() == [0, 0, 0, 1]
    c = FreiHANDDataset(tmp_path, crop_size=32)[1]
    assert c["depth"].shape == (1, 32, 32) and c["mask"].shape == (1, 32, 32)


def test_missing_and_truncated_json(tmp_path):
    write_freihand(tmp_path, n=3)
    (tmp_path / "training_K.json").unlink()
    with pytest.raises(DataError, match=r"training_K\.json: file not found"):
        FreiHANDDataset(tmp_path)
    xyz = (tmp_path / "training_xyz.json").read_text()
    (tmp_path / "training_K.json").write_text("[\n" + xyz[1: len(xyz) // 2])
    with pytest.raises(DataError, match=r"training_K\.json, line 2: truncated JSON"):
        FreiHANDDataset(tmp_path)


def test_lengths_disagree(tmp_path):
    lab = write_freihand(tmp_path, n=5)
    (tmp_path / "training_K.json").write_text(json.dumps(lab["K"][:3].tolist()))
    with pytest.raises(DataError, match=r"training_K\.json: has 3 entries but "
                       r"training_xyz\.json has 5"):
        FreiHANDDataset(tmp_path)
    with pytest.warns(RuntimeWarning, match="skipping bad samples"):
        ds = FreiHANDDataset(tmp_path, skip_bad=True)
    assert len(ds) == 3 and ds.skipped.count == 2
    np.testing.assert_allclose(ds[2]["joints3d"].numpy(), lab["xyz"][2], atol=1e-6)


def test_bad_entry_names_it_and_is_skippable(tmp_path):
    lab = write_freihand(tmp_path, n=4)
    xyz = lab["xyz"].tolist()
    xyz[1] = xyz[1][:20]  # 20 joints
    (tmp_path / "training_xyz.json").write_text(json.dumps(xyz))
    with pytest.raises(DataError, match=r"training_xyz\.json, entry 1: expected a numeric "
                       r"\(21, 3\) entry; got shape \(20, 3\)"):
        FreiHANDDataset(tmp_path)
    with pytest.warns(RuntimeWarning):
        ds = FreiHANDDataset(tmp_path, skip_bad=True)
    assert len(ds) == 3 and ds.skipped.count == 1
    assert [s["path"][-12:-4] for s in ds] == ["00000000", "00000002", "00000003"]


def test_corrupt_image_raises_or_is_skipped_with_one_warning(tmp_path):
    write_freihand(tmp_path, n=5)
    bad = tmp_path / "training" / "rgb" / "00000002.jpg"
    bad.write_bytes(bad.read_bytes()[:100])
    (tmp_path / "training" / "rgb" / "00000003.jpg").unlink()
    ds = FreiHANDDataset(tmp_path)
    with pytest.raises(DataError, match=r"00000002\.jpg: image cannot be decoded"):
        ds[2]
    ds = FreiHANDDataset(tmp_path, skip_bad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = [s["path"][-12:-4] for s in ds]
    assert len([w for w in caught if "skipping bad samples" in str(w.message)]) == 1
    assert ds.skipped.count == 2 and ds.skipped.indices == {2, 3}
    # nothing good is lost: every good image is served; the bad ones are replaced by the next
    assert paths == ["00000000", "00000001", "00000004", "00000004", "00000004"]


def test_real_eval_hgc(hgc_dir):
    ds = FreiHANDDataset(hgc_dir)
    assert len(ds) == 400 and ds.available == ("gs",)
    assert ds.uv.shape == (400, 21, 2)  # all labels projected at construction
    assert (ds.uv >= 0).all() and (ds.uv < 256).all()  # every keypoint inside its 256^2 image
    for i in range(0, 400, 50):
        s = ds[i]
        _, h, w = s["rgb"].shape
        uv = s["uv"]
        assert (uv[:, 0] >= 0).all() and (uv[:, 0] < w).all(), i
        assert (uv[:, 1] >= 0).all() and (uv[:, 1] < h).all(), i
        assert 0.005 < float(s["scale"]) < 0.06
    crops = FreiHANDDataset(hgc_dir, crop_size=64)
    batch = next(iter(DataLoader(crops, batch_size=4, collate_fn=collate)))
    assert batch["rgb"].shape == (4, 3, 64, 64) and batch["uv"].shape == (4, 21, 2)
    assert (batch["uv"] > 0).all() and (batch["uv"] < 64).all()


def test_all_bad_images_fail_loudly_even_with_skip_bad(tmp_path):
    write_freihand(tmp_path, n=3)
    for p in (tmp_path / "training" / "rgb").iterdir():
        p.write_bytes(b"broken")
    ds = FreiHANDDataset(tmp_path, skip_bad=True)
    with pytest.warns(RuntimeWarning), pytest.raises(DataError, match="3 consecutive bad "
                                                     "samples from index 1"):
        ds[1]
    with pytest.raises(DataError, match="known to be bad"):
        ds[0]


def test_per_sample_handedness_file(tmp_path):
    write_freihand(tmp_path, n=4)
    (tmp_path / "training_handedness.json").write_text(json.dumps([0, 1, 1, 0]))
    ds = FreiHANDDataset(tmp_path, handedness=1)
    assert [ds[i]["handedness"] for i in range(4)] == [0, 1, 1, 0]
    (tmp_path / "training_handedness.json").write_text(json.dumps([0, 2, 1, 0]))
    with pytest.raises(DataError, match="training_handedness.json"):
        FreiHANDDataset(tmp_path)


def test_upright_crops_point_the_hand_up(tmp_path):
    write_freihand(tmp_path, n=4)
    ds = FreiHANDDataset(tmp_path, crop_size=64)
    ds.crop_upright = True
    for i in range(4):
        s = ds[i]
        d = (s["uv"][9] - s["uv"][0]).double()
        # the middle MCP lies straight above the wrist in the crop
        assert abs(float(d[0])) < 1e-3 * float(d.norm()) + 1e-4 and float(d[1]) < 0
        # the crop's K still projects the 3D joints onto the crop's 2D joints
        p = s["joints3d"].double() @ s["K"].double().T
        assert torch.allclose(p[:, :2] / p[:, 2:], s["uv"].double(), atol=1e-3)


def test_crop_mirror_left_shows_left_hands_as_right_hands(tmp_path):
    write_freihand(tmp_path, n=4)
    (tmp_path / "training_handedness.json").write_text(json.dumps([0, 1, 1, 0]))
    ds = FreiHANDDataset(tmp_path, crop_size=64)
    ds.crop_upright = True
    plain = [ds[i] for i in range(4)]
    ds.crop_mirror_left = True
    for i, was_left in enumerate([True, False, False, True]):
        s = ds[i]
        assert s["handedness"] == 1
        expected = torch.flip(plain[i]["rgb"], dims=[2]) if was_left else plain[i]["rgb"]
        diff = (s["rgb"].int() - expected.int()).abs().float()
        assert float(diff.mean()) < 0.2  # warpAffine samples at 1/32 px: rounding only
        p = s["joints3d"].double() @ s["K"].double().T  # still exact, upright and mirrored
        assert torch.allclose(p[:, :2] / p[:, 2:], s["uv"].double(), atol=1e-3)
