"""``handpose-train fit-depth``: tiny end-to-end runs of both stages (synthetic init, then
self-supervised multi-view fitting with the frozen prior), real RGB-D folders, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from handpose.core.checkpoint import load_checkpoint
from handpose.core.data.depth_noise import DepthNoise
from handpose.core.models.fcn import DepthFCN
from handpose.training.cli import main
from handpose.training.recipes.depth_data import DepthData, DepthFolderViews
from handpose.training.recipes.depth_synth import DepthSynthesizer, SynthSpec
from handpose.training.recipes.fit_energy import EnergyWeights, fitting_energy


def _losses(run: Path, key: str = "train/loss") -> list[float]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [x[key] for x in lines if key in x]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one torch thread is faster and spares the shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, one_thread) -> dict[str, Path]:
    """A tiny prior, a tiny synthetic initialisation and a tiny multi-view fit."""
    root = tmp_path_factory.mktemp("fit")
    out = {"prior": root / "prior", "init": root / "init", "fit": root / "fit"}
    assert main(["prior", "--preset", "tiny", f"out={out['prior']}"]) == 0
    assert main(["fit-depth", "--preset", "tiny", f"out={out['init']}", "train.steps=6",
                 "synthetic.length=2"]) == 0
    assert main(["fit-depth", "--preset", "tiny", "stage=fit", f"out={out['fit']}",
                 f"init={out['init']}", f"prior={out['prior']}", "data.source=synthetic",
                 "train.steps=8"]) == 0
    return out


def test_synthetic_stage_learns_and_saves(runs):
    losses = _losses(runs["init"])
    assert len(losses) == 6 and losses[-1] < losses[0]
    model, meta = load_checkpoint(runs["init"] / "model.pt")
    assert isinstance(model, DepthFCN)
    assert meta.training["stage"] == "synthetic"
    assert meta.training["crop"]["cube_side_m"] == pytest.approx(0.3)
    result = json.loads((runs["init"] / "result.json").read_text())
    assert result["metrics"]["epe_mm"] > 0


def test_fit_stage_energy_falls_and_reports_correction(runs):
    losses = _losses(runs["fit"])
    assert len(losses) == 8 and losses[-1] < losses[0]
    # both data terms and the multi-view term were active
    for key in ("train/m2d", "train/d2m", "train/multiview", "train/vae"):
        assert all(v > 0 for v in _losses(runs["fit"], key))
    before = _losses(runs["fit"], "train/infeasible_before")
    after = _losses(runs["fit"], "train/infeasible_after")
    assert len(before) == 8 and all(a == 0.0 for a in after)
    model, meta = load_checkpoint(runs["fit"] / "model.pt")
    assert isinstance(model, DepthFCN) and meta.training["stage"] == "fit"
    metrics = json.loads((runs["fit"] / "result.json").read_text())["metrics"]
    assert metrics["infeasible_after"] == 0.0
    assert set(metrics) >= {"epe_mm", "epe_corrected_mm", "pa_epe_mm", "infeasible_before"}


def test_energy_is_lowest_at_the_truth():
    """The fitting energy of ground-truth points is below that of perturbed points."""
    synth = DepthSynthesizer(SynthSpec(views=2, px_per_cell=1.0, forearm=False),
                             DepthNoise(), 0.3, 32)
    batch = synth(torch.arange(2))
    from handpose.core.data.depth_crop import to_cube

    gt = torch.stack([to_cube(batch["joints"][:, v], batch["centre"][:, v],
                              batch["side"][:, v]) for v in range(2)], 1)
    w = EnergyWeights(vae=0.0, max_points=128)
    g = torch.Generator().manual_seed(0)
    e_gt = fitting_energy(gt, batch, w, generator=g)
    noisy = gt + 0.015 / 0.15 * torch.randn(gt.shape, generator=g)
    e_noisy = fitting_energy(noisy, batch, w, generator=g)
    assert float(e_gt["loss"]) < float(e_noisy["loss"])
    assert float(e_gt["multiview"]) < 1e-10  # the views agree exactly at the truth
    torch.testing.assert_close(e_gt["joints"], batch["joints"], atol=1e-5, rtol=0)


def test_fit_on_real_rgbd_frames(runs, rgbd_dir, tmp_path):
    out = tmp_path / "real"
    code = main(["fit-depth", "--preset", "tiny", "stage=fit", f"out={out}",
                 f"init={runs['init']}", f"prior={runs['prior']}", "data.source=folder",
                 f"data.root={rgbd_dir}", "data.limit=2", "data.centre=depth",
                 "val.source=folder", f"val.root={rgbd_dir}", "val.limit=2",
                 "val.centre=labels", "train.steps=2"])
    assert code == 0
    assert len(_losses(out, "train/epe_mm")) == 2  # labels are read for the metrics
    metrics = json.loads((out / "result.json").read_text())["metrics"]
    assert 0 < metrics["epe_mm"] < 1000


def _rgbd_folder(root: Path, depth: np.ndarray, first: np.ndarray | None = None) -> Path:
    root.mkdir()
    frames = []
    for i in range(2):
        cv2.imwrite(str(root / f"{i}_rgb.jpg"), np.zeros((24, 32, 3), np.uint8))
        d = first if (i == 0 and first is not None) else depth
        cv2.imwrite(str(root / f"{i}_depth.png"), d.astype(np.uint16))
        frames.append({"rgb": f"{i}_rgb.jpg", "depth": f"{i}_depth.png",
                       "K": [[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1]]})
    (root / "frames.json").write_text(json.dumps({"frames": frames}))
    return root


def test_depth_without_readings_stops_cleanly(runs, tmp_path, capsys):
    root = _rgbd_folder(tmp_path / "empty", np.zeros((24, 32)))
    code = main(["fit-depth", "--preset", "tiny", "stage=fit", f"out={tmp_path / 'x'}",
                 f"init={runs['init']}", f"prior={runs['prior']}", "data.source=folder",
                 f"data.root={root}"])
    assert code == 2
    assert "no usable depth frame" in capsys.readouterr().err


def test_frames_without_readings_are_skipped_with_a_warning(tmp_path, caplog):
    plane = np.full((24, 32), 500.0)  # millimetres
    root = _rgbd_folder(tmp_path / "half", np.zeros((24, 32)), first=plane)
    with caplog.at_level("WARNING"):
        ds = DepthFolderViews(DepthData(source="folder", root=str(root)), 0.3, 32)
    assert len(ds) == 1 and ds.skipped == 1
    assert "skipped 1 of 2" in caplog.text
    item = ds[0]
    assert item["input"].shape == (1, 1, 32, 32) and not bool(item["has_joints"])
    assert bool(item["hand"].any())


def test_wrist_cut_ignores_the_forearm():
    """With the forearm in view, the data terms at the truth barely change when the cells
    beyond the wrist are left out, and they match the forearm-free rendering."""
    def energy(forearm: bool, cut: float) -> float:
        synth = DepthSynthesizer(SynthSpec(px_per_cell=1.0, forearm=forearm, seed=3),
                                 DepthNoise(), 0.3, 32)
        batch = synth(torch.arange(4))
        from handpose.core.data.depth_crop import to_cube

        gt = to_cube(batch["joints"][:, 0], batch["centre"][:, 0], batch["side"][:, 0])
        w = EnergyWeights(vae=0.0, bone=0.0, collision=0.0, wrist_cut=cut, max_points=2000)
        return float(fitting_energy(gt[:, None], batch, w)["loss"])

    with_arm_cut, with_arm_raw, no_arm = energy(True, 0.01), energy(True, -1.0), \
        energy(False, 0.01)
    assert with_arm_cut < 0.6 * with_arm_raw
    assert abs(with_arm_cut - no_arm) < 0.3 * no_arm


def test_missing_init_or_prior_is_a_config_error(tmp_path, capsys):
    code = main(["fit-depth", "--preset", "tiny", "stage=fit", "data.source=synthetic",
                 f"out={tmp_path / 'y'}"])
    assert code == 2 and "init" in capsys.readouterr().err


def test_heatmap_cross_entropy_is_smallest_at_the_target():
    from handpose.training.recipes.fit_depth import heatmap_cross_entropy

    xy = torch.tensor([[[0.1, -0.3]]])
    h = w = 16
    gy = (torch.arange(h) + 0.5) * (2 / h) - 1
    gx = (torch.arange(w) + 0.5) * (2 / w) - 1
    s = 2.0 / w
    t = torch.exp(-0.5 * ((gy[:, None] - xy[0, 0, 1]) ** 2 + (gx[None] - xy[0, 0, 0]) ** 2)
                  / s**2)
    t = (t / t.sum())[None, None]
    entropy = float(-(t * t.log()).sum())
    assert float(heatmap_cross_entropy(t, xy)) == pytest.approx(entropy, rel=1e-5)
    shifted = torch.roll(t, 3, dims=-1)
    flat = torch.full_like(t, 1.0 / (h * w))
    assert float(heatmap_cross_entropy(shifted, xy)) > entropy
    assert float(heatmap_cross_entropy(flat, xy)) == pytest.approx(np.log(h * w), rel=1e-5)
