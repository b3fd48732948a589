"""``handpose-train dual``: pre-training -> fine-tuning (images, an RGB-D session), RGB-only
checkpoint through ONNX Runtime, and the recipe's parts (augmentation, pseudo-labels)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from rgbd_data import write_freihand_rgbd
from training_data import write_image_folder

from handpose.core.augment import transform_points
from handpose.core.checkpoint import load_checkpoint
from handpose.core.data.sample import collate
from handpose.core.data.session_writer import SessionWriter
from handpose.core.export import OnnxPoseNet, export_onnx
from handpose.core.geometry.lifting import to_25d
from handpose.core.losses.consistency import correct_pose_25d
from handpose.core.models import POSE_OUTPUTS
from handpose.core.types import Frame
from handpose.training.cli import main
from handpose.training.config import ConfigError, apply_overrides
from handpose.training.config_files import resolve_config
from handpose.training.distributed import DistInfo
from handpose.training.recipes import dual
from handpose.training.recipes.data import LabelledData
from handpose.training.recipes.dual_losses import DualLossSpec, pseudo_labels
from handpose.training.recipes.multimodal_data import (
    compose_affines,
    multimodal_dataset,
    perturb_depth,
    weak_matrices,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rgbd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_freihand_rgbd(tmp_path_factory.mktemp("rgbd") / "fh", n=16, size=96)


def _losses(run: Path, key: str) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r[f"train/{key}"] for r in rows if f"train/{key}" in r]


def _session(root: Path, fh: Path, n: int = 8) -> Path:
    """An RGB-D recording (full frames with depth, no labels) from the synthetic set."""
    ds = multimodal_dataset(LabelledData(root=str(fh)), 96, 0)
    with SessionWriter(root, K=ds[0]["K"].numpy(), source="test") as w:
        for i in range(n):
            s = ds[i]
            w.append_frame(Frame(rgb=s["rgb"].permute(1, 2, 0).numpy().copy(),
                                 K=s["K"].numpy(), depth=s["depth"][0].numpy(), index=i))
    return root


def test_pretrain_finetune_and_the_rgb_branch_through_onnx(rgbd: Path, tmp_path: Path) -> None:
    pre, ft, ftd = tmp_path / "pre", tmp_path / "ft", tmp_path / "ftd"
    assert main(["dual", "--preset", "tiny", f"data.root={rgbd}", f"out={pre}",
                 "train.steps=14"]) == 0
    sup = _losses(pre, "sup_rgb")
    assert np.mean(sup[-4:]) < 0.85 * np.mean(sup[:4]), sup  # the supervised loss falls
    assert all(math.isfinite(v) for v in _losses(pre, "contrast"))
    rgb, meta = load_checkpoint(pre / "model.pt")
    full, meta_full = load_checkpoint(pre / "dual.pt")
    assert meta.arch["name"] == "posenet_resnet18_multimodal"
    assert meta_full.arch["name"] == "dual_resnet18" and meta.training["recipe"] == "dual/pretrain"
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        ref = rgb(x)
        torch.testing.assert_close(full(x)["uv"], ref["uv"])  # the same RGB branch
    sess = OnnxPoseNet(export_onnx(rgb, tmp_path / "m.onnx", meta.input_size))
    got = sess(x.numpy())
    for k in POSE_OUTPUTS:
        np.testing.assert_allclose(got[k], ref[k].numpy(), atol=1e-4, rtol=1e-4)

    imgs = write_image_folder(tmp_path / "imgs", n=8)
    assert main(["dual", "--preset", "tiny", "--stage", "finetune", f"init={pre}",
                 f"data.root={rgbd}", f"unlabelled.root={imgs}", f"val.root={rgbd}",
                 f"out={ft}", "train.steps=2"]) == 0
    model, meta = load_checkpoint(ft / "model.pt")
    assert meta.training["recipe"] == "dual/finetune" and "epe_mm" in meta.metrics
    losses = json.loads((ft / "result.json").read_text())["losses"]
    assert {"pseudo", "distill", "confident", "sup"} <= set(losses)
    # the fine-tuned weights moved away from the pre-trained ones
    a, b = rgb.state_dict(), model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())

    # an RGB-D recording of the user: measured depth drives the DM branch and supervises depth
    session = _session(tmp_path / "session", rgbd)
    assert main(["dual", "--preset", "tiny", "--stage", "finetune", f"init={pre / 'dual.pt'}",
                 f"unlabelled.root={session}", "unlabelled.format=session", f"out={ftd}",
                 "train.steps=2", "train.batch_size=4"]) == 0
    assert all(math.isfinite(v) for v in _losses(ftd, "depth_rgbd"))
    assert not _losses(ftd, "sup")  # no synthetic set given: no supervised term


def test_finetune_needs_a_matching_pretrained_dual_network(rgbd: Path, tmp_path: Path) -> None:
    imgs = write_image_folder(tmp_path / "imgs", n=4)
    cfg = resolve_config(dual.Config, "dual", "tiny", [f"unlabelled.root={imgs}",
                                                       "stage=finetune"])
    with pytest.raises(ConfigError, match="init is not set"):
        dual.check(cfg)
    pre = tmp_path / "pre"
    assert main(["dual", "--preset", "tiny", f"data.root={rgbd}", f"out={pre}",
                 "train.steps=1"]) == 0
    wide = apply_overrides(cfg, [f"init={pre}", "model.width=16"])
    dual.check(wide)  # the file exists ...
    with pytest.raises(ConfigError, match=r"model\.\* asks for dual_resnet18"):
        dual.DualRecipe(wide).build_model()  # ... but holds another network


def _recipe(**over: str) -> dual.DualRecipe:
    cfg = resolve_config(dual.Config, "dual", "tiny", [f"{k}={v}" for k, v in over.items()])
    r = dual.DualRecipe(cfg)
    torch.manual_seed(0)
    r.raw_model = r.model = r.build_model()
    r.device, r.dist = torch.device("cpu"), DistInfo()
    return r


def test_one_warp_moves_image_depth_mask_and_targets_together(rgbd: Path) -> None:
    r = _recipe(**{"aug.geometric.max_angle_deg": "60"})
    batch = collate([multimodal_dataset(LabelledData(root=str(rgbd)), 64, 0)[i]
                     for i in range(8)])
    seen: dict[str, torch.Tensor] = {}
    real = r.net.encode_depth

    def spy(d: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        seen["depth"] = d.detach()
        return real(d)

    r.net.encode_depth = spy  # type: ignore[method-assign]
    torch.manual_seed(3)
    out = r.supervised(batch, contrastive=True)
    assert {"sup_rgb", "sup_depth", "sup_fusion", "contrast"} <= set(out)
    uv = r._last["uv_gt"]
    d = seen["depth"][:4, 0]  # first view: clean depth, warped like the image
    px = uv.round().long().clamp(0, 63)
    on_hand = d[torch.arange(4)[:, None], px[..., 1], px[..., 0]] < 1.0
    assert float(on_hand.float().mean()) > 0.9  # joints lie on the warped hand's depth
    assert float((seen["depth"][8:] != seen["depth"][:8]).float().mean()) > 0.01  # T_DM


def test_weak_view_to_strong_view_mapping_and_weak_angles() -> None:
    torch.manual_seed(0)
    w = weak_matrices(64, 64, 0.03, 2.0, 0.5)
    angles = torch.atan2(w[:, 1, 0], w[:, 0, 0]).abs()
    quarter = (angles - torch.round(angles / (math.pi / 2)) * (math.pi / 2)).abs() < 1e-5
    small = angles <= math.radians(2.0) + 1e-6
    assert bool((quarter | small).all()) and 10 < int((angles > 1).sum()) < 54
    s = weak_matrices(64, 64, 0.1, 30.0, 0.0)
    p = torch.rand(64, 21, 2) * 64
    to_strong = compose_affines(s, w, invert_first=True)
    torch.testing.assert_close(transform_points(transform_points(p, w), to_strong),
                               transform_points(p, s), atol=1e-3, rtol=0)
    d = perturb_depth(torch.zeros(16, 1, 32, 32), erase_prob=1.0, noise_frac=0.1)
    assert float((d == 1).float().mean()) > 0.05 and float((d == -1).float().mean()) > 0.03


def test_pseudo_labels_average_branches_and_corrections(rgbd: Path) -> None:
    ds = multimodal_dataset(LabelledData(root=str(rgbd)), 64, 0)
    batch = collate([ds[i] for i in range(4)])
    uv, z, _ = to_25d(batch["joints3d"], batch["K"])
    spec = DualLossSpec()
    same = {"uv": uv, "z_rel": z}
    lab = pseudo_labels(same, same, batch["K"], "right", 64.0, spec)
    # two agreeing branches: r = (p + P(p)) / 2; a near-feasible hand gives confident labels
    c = correct_pose_25d(uv, z, batch["K"], "right")
    torch.testing.assert_close(lab.uv, (uv + c.uv) / 2)
    torch.testing.assert_close(lab.z_rel, (z + c.z_rel) / 2)
    assert bool(lab.use.all()) and float(lab.confidence.max()) < spec.epsilon
    noisy = {"uv": uv + torch.randn_like(uv) * 6.0, "z_rel": z + 0.5}
    bad = pseudo_labels(same, noisy, batch["K"], "right", 64.0, spec)
    cn = correct_pose_25d(noisy["uv"], noisy["z_rel"], batch["K"], "right")
    torch.testing.assert_close(bad.z_rel, (z + noisy["z_rel"] + c.z_rel + cn.z_rel) / 4)
    assert not bool(bad.use.any()) and bool((bad.confidence > lab.confidence).all())


def test_depth_free_data_is_refused_with_the_reason(tmp_path: Path) -> None:
    from training_data import write_freihand

    fh = write_freihand(tmp_path / "plain", n=4, size=64)
    with pytest.raises(ConfigError, match="has no depth maps"):
        multimodal_dataset(LabelledData(root=str(fh)), 64, 0)


def test_rgb_only_baseline_trains_the_rgb_branch_alone(rgbd: Path, tmp_path: Path) -> None:
    run = tmp_path / "base"
    assert main(["dual", "--preset", "tiny", f"data.root={rgbd}", f"out={run}", "rgb_only=true",
                 "train.steps=2"]) == 0
    losses = json.loads((run / "result.json").read_text())["losses"]
    assert set(losses) == {"sup_rgb", "sup", "loss"}
    full, _ = load_checkpoint(run / "dual.pt")
    # the depth branch never ran: its BN statistics are still the initial ones
    assert float(full.depth_encoder.bn1.running_var.sub(1).abs().max()) == 0.0
    assert float(full.encoder.bn1.running_var.sub(1).abs().max()) > 0.0
    with pytest.raises(ValueError, match="pre-training setting"):
        dual.Config(stage="finetune", rgb_only=True)
