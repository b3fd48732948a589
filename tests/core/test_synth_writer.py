"""``handpose-data synth``: FreiHAND-layout round trip, label/image consistency, determinism per
(seed, index), resume after an interruption (torn files included), multi-view extrinsics."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from handpose.core.biomech import count_violations
from handpose.core.data import FreiHANDDataset
from handpose.core.data.imageio import read_depth_png, read_gray, read_rgb
from handpose.core.data.synthetic.cli import main
from handpose.core.data.synthetic.sampler import HandSampler
from handpose.core.data.synthetic.writer import SynthConfig, make_chunk, write_synth
from handpose.core.geometry import project

CFG = SynthConfig(n=8, size=64, seed=3, chunk_size=3)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                  and p.parent.name != "chunks" and p.name != "dataset.json")


def _same_tree(a: Path, b: Path) -> None:
    """Byte-identical folders (same arguments and chunk size: same render batches)."""
    fa, fb = _files(a), _files(b)
    assert fa == fb
    match, mismatch, errors = filecmp.cmpfiles(a, b, fa, shallow=False)
    assert not mismatch and not errors, mismatch


def _same_samples(a: Path, b: Path, n: int) -> None:
    """Identical labels; images equal up to the renderer's float round-off, which depends on
    the batch a sample is rasterised in (< 1e-6 m depth, 1 grey level)."""
    for name in ("xyz", "K", "scale", "handedness", "meta"):
        ja = json.loads((a / f"training_{name}.json").read_text())
        jb = json.loads((b / f"training_{name}.json").read_text())
        assert ja[:n] == jb[:n]
    for i in range(n):
        ra, rb = (read_rgb(d / f"training/rgb/{i:08d}.jpg").astype(int) for d in (a, b))
        assert np.abs(ra - rb).max() <= 3
        da, db = (read_depth_png(d / f"training/depth/{i:08d}.png") for d in (a, b))
        assert np.abs(da - db).max() <= 0.001 + 1e-6 and (da != db).mean() < 0.01
        ma, mb = (read_gray(d / f"training/mask/{i:08d}.png") for d in (a, b))
        assert (ma != mb).mean() < 0.01


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "clean"
    res = write_synth(out, CFG, progress=False)
    assert res.chunks_made == res.chunks_total == 3 and res.samples == 8
    return out


def test_round_trip_through_the_freihand_reader(clean):
    ds = FreiHANDDataset(clean)
    assert len(ds) == 8
    manifest = json.loads((clean / "dataset.json").read_text())
    assert manifest["complete"] and manifest["counts"]["samples"] == 8
    assert manifest["args"]["size"] == 64 and manifest["format"] == "handpose-synth"
    # the labels are those the sampler/placement/renderer made (regenerated independently)
    from handpose.core.data.synthetic.renderer import HandRenderer

    with HandRenderer() as r:
        batch, doc = make_chunk(CFG, 3, 6, HandSampler(CFG.sampler_config()), r)
    vis = np.array(json.loads((clean / "training_visibility.json").read_text()))
    for k, i in enumerate(range(3, 6)):
        s = ds[i]
        np.testing.assert_allclose(s["joints3d"].numpy(), batch.joints[k].numpy(), atol=1e-6)
        np.testing.assert_allclose(s["K"].numpy(), batch.K[k].numpy(), atol=1e-4)
        np.testing.assert_array_equal(s["mask"][0].numpy().astype(bool), batch.mask[k].numpy())
        mm = np.rint(batch.depth[k].numpy() * 1000) / 1000
        np.testing.assert_allclose(s["depth"][0].numpy(), mm, atol=1e-6)
        rgb = s["rgb"].permute(1, 2, 0).numpy().astype(np.float64)
        mse = ((rgb - batch.rgb[k].numpy()) ** 2).mean()
        assert 10 * np.log10(255**2 / mse) > 30  # the JPEG is this render
        np.testing.assert_array_equal(vis[i], batch.visibility[k].numpy())
    # every sample: 2D labels are the projections, visible joints lie on the hand's mask and
    # its depth there is within a finger radius of the joint's
    for i in range(8):
        s = ds[i]
        uv = s["uv"].numpy()
        j = s["joints3d"].numpy()
        np.testing.assert_allclose(uv, project(j.astype(np.float64), s["K"].numpy()), atol=1e-3)
        px = np.rint(uv[vis[i]]).astype(int)
        near_mask = cv2.dilate(s["mask"][0].numpy(), np.ones((3, 3), np.uint8))  # 1 px slack
        assert np.all(near_mask[px[:, 1], px[:, 0]] == 1)
        d = s["depth"][0].numpy()[px[:, 1], px[:, 0]]
        on = d > 0  # at 64 px a rounded pixel may fall just off a finger's silhouette
        assert on.mean() > 0.8 and (np.abs(d - j[vis[i], 2])[on] < 0.025).mean() > 0.9
        assert s["scale"].item() == pytest.approx(np.linalg.norm(j[10] - j[9]), rel=1e-5)
    xyz = np.array(json.loads((clean / "training_xyz.json").read_text()))
    assert np.all(count_violations(xyz, "right") == 0)
    assert json.loads((clean / "training_handedness.json").read_text()) == [1] * 8
    assert not (clean / "extrinsics.json").exists()


def test_sample_i_depends_only_on_seed_and_i(clean, tmp_path):
    other = tmp_path / "other_chunks"
    write_synth(other, SynthConfig(n=8, size=64, seed=3, chunk_size=8), progress=False)
    _same_samples(clean, other, 8)
    fewer = tmp_path / "fewer"
    write_synth(fewer, SynthConfig(n=5, size=64, seed=3, chunk_size=2), progress=False)
    _same_samples(clean, fewer, 5)
    reseeded = tmp_path / "seed4"
    write_synth(reseeded, SynthConfig(n=2, size=64, seed=4), progress=False)
    assert (reseeded / "training/rgb/00000000.jpg").read_bytes() != (
        clean / "training/rgb/00000000.jpg").read_bytes()


class _Killed(Exception):
    pass


def test_resume_after_an_interruption_matches_an_uninterrupted_run(clean, tmp_path):
    out = tmp_path / "resumed"

    def stop_after_first(c: int) -> None:
        raise _Killed(c)

    with pytest.raises(_Killed):
        write_synth(out, CFG, progress=False, on_chunk=stop_after_first)
    assert (out / "chunks" / "000000.json").exists() and not (out / "training_xyz.json").exists()
    assert not json.loads((out / "dataset.json").read_text())["complete"]
    # leave what a kill in the middle of chunk 1 leaves: some images, a truncated one, temp
    # files, and a torn chunk label file (never produced by the atomic writer, but handled)
    src = clean / "training/rgb/00000003.jpg"
    (out / "training/rgb/00000003.jpg").write_bytes(src.read_bytes()[:100])
    (out / "training/rgb/.00000004.jpg.tmp").write_bytes(b"partial")
    (out / "chunks" / "000001.json").write_text('{"format": "handpose-synth", "xyz": [[')
    made = []
    res = write_synth(out, CFG, progress=False, on_chunk=made.append)
    assert sorted(made) == [1, 2] and res.chunks_made == 2
    assert not list(out.rglob(".*.tmp"))
    _same_tree(clean, out)
    assert json.loads((out / "dataset.json").read_text())["complete"]
    # a finished dataset: re-running does nothing; a missing image redoes only its chunk
    assert write_synth(out, CFG, progress=False).chunks_made == 0
    (out / "training/mask/00000007.png").unlink()
    made.clear()
    write_synth(out, CFG, progress=False, on_chunk=made.append)
    assert made == [2]
    _same_tree(clean, out)


def test_extending_and_shrinking_keep_files_consistent(clean, tmp_path):
    out = tmp_path / "grow"
    write_synth(out, SynthConfig(n=4, size=64, seed=3, chunk_size=3), progress=False)
    res = write_synth(out, CFG, progress=False)
    assert res.chunks_made == 2  # chunk 1 (was hands 3..3, now 3..5) and chunk 2
    _same_tree(clean, out)
    write_synth(out, SynthConfig(n=2, size=64, seed=3, chunk_size=3), progress=False)
    assert len(list((out / "training/rgb").glob("*.jpg"))) == 2
    assert len(FreiHANDDataset(out)) == 2


def test_other_arguments_refuse_to_mix(clean):
    with pytest.raises(ValueError, match="size"):
        write_synth(clean, SynthConfig(n=8, size=96, seed=3, chunk_size=3), progress=False)


def test_multi_view_labels_agree_through_the_extrinsics(tmp_path):
    out = tmp_path / "rig"
    write_synth(out, SynthConfig(n=3, size=64, seed=5, views=3, hands="both"), progress=False)
    ds = FreiHANDDataset(out)
    assert len(ds) == 9
    xyz = np.array(json.loads((out / "training_xyz.json").read_text()))
    ext = np.array(json.loads((out / "extrinsics.json").read_text()))
    assert ext.shape == (9, 4, 4)
    for h in range(3):
        world = [np.linalg.solve(ext[3 * h + v], np.c_[xyz[3 * h + v], np.ones(21)].T).T[:, :3]
                 for v in range(3)]
        for v in range(1, 3):
            assert np.abs(world[v] - world[0]).max() < 1e-6
        np.testing.assert_allclose(ext[3 * h], np.eye(4), atol=1e-12)
        s = ds[3 * h + 1]
        np.testing.assert_allclose(s["extrinsics"].numpy(), ext[3 * h + 1], atol=1e-6)
    meta = json.loads((out / "training_meta.json").read_text())
    assert [m["view"] for m in meta] == [0, 1, 2] * 3
    hand_codes = json.loads((out / "training_handedness.json").read_text())
    assert [1 if m["handedness"] == "right" else 0 for m in meta] == hand_codes


def test_cli_writes_a_dataset_and_reports_bad_arguments(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["synth", "--n", "2", "--out", str(out), "--size", "48", "--seed", "1",
                 "--depth-noise", "--quiet"]) == 0
    assert "2 samples" in capsys.readouterr().out
    d = read_depth_png(out / "training/depth/00000000.png")
    m = read_gray(out / "training/mask/00000000.png") > 127
    assert read_rgb(out / "training/rgb/00000000.jpg").shape == (48, 48, 3)
    assert d.shape == (48, 48) and (d[m] > 0).mean() > 0.5  # noisy depth, some holes
    assert json.loads((out / "dataset.json").read_text())["args"]["depth_noise"] is True
    assert main(["synth", "--n", "2", "--out", str(out), "--size", "64", "--quiet"]) == 2
    assert "other arguments" in capsys.readouterr().err
    assert main(["synth", "--n", "0", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    with pytest.raises(SystemExit):
        main(["synth", "--n", "2", "--out", str(out), "--fill", "0.5"])
