"""``handpose-train crossvae``: the three variants end to end, exact targets, heatmaps, beta."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from rgbd_data import write_freihand_rgbd

from handpose.core.augment import transform_points
from handpose.core.checkpoint import load_checkpoint
from handpose.core.data.sample import collate
from handpose.core.export import OnnxPoseNet, export_onnx
from handpose.core.models import POSE_OUTPUTS
from handpose.core.models.crossvae import view_rotation
from handpose.core.models.heads import soft_argmax_25d
from handpose.training.cli import main
from handpose.training.config_files import resolve_config
from handpose.training.distributed import DistInfo
from handpose.training.recipes import crossvae
from handpose.training.recipes.crossvae_eval import evaluate_crossvae, root_relative_epe_mm
from handpose.training.recipes.data import LabelledData
from handpose.training.recipes.multimodal_data import multimodal_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rgbd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_freihand_rgbd(tmp_path_factory.mktemp("rgbd") / "fh", n=16, size=96)


def _rows(run: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_product_of_experts_run_learns_and_exports(rgbd: Path, tmp_path: Path) -> None:
    run = tmp_path / "poe"
    assert main(["crossvae", "--preset", "tiny", f"data.root={rgbd}", f"val.root={rgbd}",
                 f"out={run}", "train.steps=12"]) == 0
    rows = [r for r in _rows(run) if "train/loss" in r]
    for key, factor in (("loss", 0.9), ("joint/cloud", 1.0), ("rgb/pose", 1.0)):
        v = [r[f"train/{key}"] for r in rows]
        assert np.mean(v[-3:]) < factor * np.mean(v[:3]), (key, v)
    assert rows[0]["train/beta"] == pytest.approx(1e-5) and rows[-1]["train/beta"] == \
        pytest.approx(1e-3)
    model, meta = load_checkpoint(run / "model.pt")
    assert meta.arch["name"] == "crossvae_resnet18" and meta.training["recipe"] == "crossvae/poe"
    assert {"epe_mm", "epe_rr_mm", "chamfer_mm"} <= set(meta.metrics)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
    got = OnnxPoseNet(export_onnx(model, tmp_path / "m.onnx", 64))(x.numpy())
    for k in POSE_OUTPUTS:
        np.testing.assert_allclose(got[k], ref[k].numpy(), atol=1e-4, rtol=1e-4)
    assert model.reconstruct_points(x).shape == (2, 64, 3)


@pytest.mark.parametrize("variant", ["r2p", "r2cp"])
def test_rgb_only_variants_run(rgbd: Path, tmp_path: Path, variant: str) -> None:
    run = tmp_path / variant
    assert main(["crossvae", "--preset", "tiny", "--variant", variant, f"data.root={rgbd}",
                 f"out={run}", "train.steps=2"]) == 0
    keys = {k for r in _rows(run) for k in r}
    assert "train/rgb/pose" in keys and "train/joint/elbo" not in keys
    assert ("train/rgb/cloud" in keys) == (variant == "r2cp")


def _recipe() -> crossvae.CrossVAERecipe:
    r = crossvae.CrossVAERecipe(resolve_config(crossvae.Config, "crossvae", "tiny", [
        "aug.max_angle_deg=90"]))
    torch.manual_seed(0)
    r.raw_model = r.model = r.build_model()
    r.device, r.dist = torch.device("cpu"), DistInfo()
    return r


def test_targets_follow_the_augmentation_exactly(rgbd: Path) -> None:
    r = _recipe()
    batch = collate([multimodal_dataset(LabelledData(root=str(rgbd)), 64, 0)[i]
                     for i in range(6)])
    torch.manual_seed(1)
    t = r.targets(batch)
    s = batch["scale"].float()
    # view frame -> camera frame recovers the joints
    R = view_rotation(t["K"], 64)
    back = t["pose"] @ R * s[:, None, None] + batch["joints3d"][:, :1]
    torch.testing.assert_close(back, batch["joints3d"], atol=1e-5, rtol=0)
    # the 2D targets are the original keypoints moved by the same warp as the image
    m = (t["K"] @ torch.linalg.inv(batch["K"]))[:, :2]  # K2 = [A; 0 0 1] K
    torch.testing.assert_close(t["uv"], transform_points(batch["uv"], m), atol=1e-3, rtol=0)
    assert (t["uv"] - batch["uv"]).abs().max() > 1.0
    # cloud points lie on the hand: back in the camera they project onto mask pixels
    assert bool(t["valid"].all())
    cam = t["points_in"] @ R * s[:, None, None] + batch["joints3d"][:, :1]
    proj = cam @ batch["K"].transpose(1, 2)
    px = (proj[..., :2] / proj[..., 2:]).round().long().clamp(0, 63)
    on = batch["mask"][torch.arange(6)[:, None], 0, px[..., 1], px[..., 0]]
    assert bool((on == 1).all())
    assert not torch.equal(t["points_in"], t["points_target"])  # two independent draws


def test_gaussian_heatmaps_peak_at_the_joints_and_beta_anneals() -> None:
    uv = torch.tensor([[[10.0, 20.0], [40.5, 3.0]]])
    g = crossvae.gaussian_heatmaps(uv, 16, 64, sigma=1.0)
    torch.testing.assert_close(g.sum(dim=(2, 3)), torch.ones(1, 2))
    back = soft_argmax_25d(torch.log(g), torch.zeros_like(g), (64, 64))["uv"]
    torch.testing.assert_close(back[0, 0], uv[0, 0], atol=0.05, rtol=0)  # interior joint
    r = _recipe()
    n = r.cfg.train.steps
    assert r.beta(0) == pytest.approx(1e-5) and r.beta(n - 1) == pytest.approx(1e-3)
    assert r.beta(10 * n) == pytest.approx(1e-3)
    assert math.log(r.beta(1)) > math.log(1e-5)


def test_evaluation_protocols(rgbd: Path) -> None:
    r = _recipe()
    ds = multimodal_dataset(LabelledData(root=str(rgbd)), 64, 0)
    m = evaluate_crossvae(r.net, ds, batch_size=8, num_points=32)
    assert {"epe_mm", "pa_epe_mm", "epe_rr_mm", "chamfer_mm", "epe_2d_px"} <= set(m)
    assert all(math.isfinite(v) for v in m.values())
    gt = np.random.default_rng(0).normal(size=(5, 21, 3))
    assert root_relative_epe_mm(gt + np.array([1.0, 2.0, 3.0]), gt) == pytest.approx(0.0)
