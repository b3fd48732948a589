"""Acceptance of ``handpose-train disentangled``: a tiny end-to-end run (loss falls, checkpoint,
grids in the run folder and TensorBoard, metrics, ``eval``), and a few-hundred-update run on
two-factor data (pose = a white skeleton, content = the background colour) where pose transfer
must carry the pose of one image and the content of the other."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from handpose.core.checkpoint import load_checkpoint
from handpose.core.data.freihand import FreiHANDDataset
from handpose.core.data.sample import collate
from handpose.core.export import OnnxPoseNet, export_checkpoint
from handpose.core.models import normalize_images
from handpose.core.skeleton import BONES
from handpose.training.cli import main
from handpose.training.recipes.disentangled import Config, reconstruction_metrics
from handpose.training.recipes.disentangled_grids import tile

# an open right hand, metres, wrist at the origin, fingers towards -y (up in the image)
_HAND = np.array(
    [[0, 0, 0], [-0.02, -0.02, 0], [-0.035, -0.04, 0], [-0.045, -0.06, 0], [-0.055, -0.075, 0],
     [-0.02, -0.08, 0], [-0.022, -0.11, 0], [-0.024, -0.13, 0], [-0.026, -0.145, 0],
     [0.0, -0.085, 0], [0.0, -0.115, 0], [0.0, -0.14, 0], [0.0, -0.16, 0],
     [0.018, -0.08, 0], [0.02, -0.107, 0], [0.022, -0.128, 0], [0.024, -0.145, 0],
     [0.034, -0.07, 0], [0.038, -0.09, 0], [0.041, -0.105, 0], [0.044, -0.118, 0]])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bones(uv: np.ndarray, size: int, width: int) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    for p, c in BONES:
        cv2.line(m, tuple(int(round(x)) for x in uv[p]), tuple(int(round(x)) for x in uv[c]),
                 1, width)
    return m.astype(bool)


#: background colours (RGB) of the two-factor data
_PALETTE = np.array([[200, 40, 40], [40, 170, 60], [40, 80, 200], [190, 170, 30], [150, 50, 170],
                     [30, 160, 170]])


def write_two_factor(root: Path, n: int, size: int = 96, seed: int = 0) -> Path:
    """FreiHAND layout, two independent factors: the pose (a white skeleton of an open hand
    turned in the image plane by U(-1, 1) rad) and the content (a background colour drawn from
    :data:`_PALETTE`)."""
    rng = np.random.default_rng(seed)
    (root / "training" / "rgb").mkdir(parents=True)
    f = size * 1.6
    K = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1]])
    xyz = []
    for i in range(n):
        c = rng.uniform(-1.0, 1.0)
        rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
        j = (_HAND - _HAND[9] / 2) @ rz.T + np.array([0.0, 0.0, 0.45])
        cam = j @ K.T
        uv = cam[:, :2] / cam[:, 2:]
        img = np.empty((size, size, 3), np.uint8)
        img[:] = _PALETTE[rng.integers(0, len(_PALETTE))]
        img[_bones(uv, size, 4)] = 255
        cv2.imwrite(str(root / "training" / "rgb" / f"{i:08d}.jpg"),
                    cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        xyz.append(j.tolist())
    (root / "training_xyz.json").write_text(json.dumps(xyz))
    (root / "training_K.json").write_text(json.dumps([K.tolist()] * n))
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("dvae")
    return (write_two_factor(base / "train", 256, seed=0),
            write_two_factor(base / "val", 32, seed=1))


def _image_tags(run: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for f in (run / "tb").iterdir():
        acc = EventAccumulator(str(f), size_guidance={"images": 0})
        acc.Reload()
        tags |= set(acc.Tags()["images"])
    return tags


def test_disentangled_end_to_end(data: tuple[Path, Path], tmp_path: Path) -> None:
    train_root, val_root = data
    run = tmp_path / "run"
    assert main(["disentangled", "--preset", "tiny", f"data.root={train_root}",
                 f"val.root={val_root}", f"out={run}", "train.steps=30",
                 "train.image_every=15"]) == 0

    logs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    loss = [m["train/loss"] for m in logs if "train/loss" in m]
    assert len(loss) == 30 and np.mean(loss[-3:]) < 0.7 * np.mean(loss[:3]), loss

    model, meta = load_checkpoint(run / "model.pt")
    assert meta.arch["name"] == "disentangled_vae" and meta.input_size == 64
    assert meta.arch["kwargs"]["pose_latent"] == 16 and meta.training["recipe"] == "disentangled"
    out = model(torch.zeros(2, 3, 64, 64))
    assert out["uv"].shape == (2, 21, 2) and out["confidence"].shape == (2, 21)
    result = json.loads((run / "result.json").read_text())
    for k in ("epe_mm", "pa_epe_mm", "epe_2d_px", "recon_mse", "synth_mse",
              "transfer_to_pose_px", "transfer_to_content_px"):
        assert np.isfinite(result["metrics"][k]), k
    assert meta.metrics["recon_mse"] == pytest.approx(result["metrics"]["recon_mse"])

    c, s, pad = 3, 64, 2  # tiny preset: grids.count = 3, walk_steps = 5
    shapes = {"pose_transfer": (c + 1, c + 2), "reconstruction": (4, 2 * c),
              "latent_walk_pose": (c + 1, 5 + 2), "latent_walk_content": (c, 5 + 2)}
    for name, (rows, cols) in shapes.items():
        img = cv2.imread(str(run / "grids" / f"{name}.png"))
        assert img.shape == (rows * (s + pad) + pad, cols * (s + pad) + pad, 3), name
    grid = cv2.imread(str(run / "grids" / "pose_transfer.png")).astype(float)
    cells = grid[s + 2 * pad:, 2 * (s + pad) + pad:]  # the decoded images only
    assert cells.std() > 5.0 and np.ptp(cells) > 60, "decoded cells are (nearly) constant"
    assert {f"grids/{k}" for k in shapes} <= _image_tags(run)

    onnx = OnnxPoseNet(export_checkpoint(run / "model.pt", tmp_path / "dvae.onnx"))
    x = torch.randn(2, 3, 64, 64)  # it exports (image -> z_pose -> pose) like any PoseNet
    with torch.no_grad():
        assert np.allclose(onnx(x)["uv"], model.eval()(x)["uv"].numpy(), atol=1e-3)

    ev = tmp_path / "eval"  # the checkpoint is evaluated like any PoseNet
    assert main(["eval", "--preset", "tiny", f"checkpoint={run}", f"data.root={val_root}",
                 f"out={ev}"]) == 0
    assert json.loads((ev / "metrics.json").read_text())["num_samples"] == 32


def test_pose_transfer_moves_the_pose_and_keeps_the_content(
        data: tuple[Path, Path], tmp_path: Path) -> None:
    train_root, val_root = data
    run = tmp_path / "run"
    size = 32
    assert main(["disentangled", "--preset", "tiny", f"data.root={train_root}", f"out={run}",
                 f"input_size={size}", "train.steps=300", "train.batch_size=16",
                 "train.schedule=constant", "loss.beta=0.3", "loss.beta_emb=0.3",
                 "train.log_every=50", "aug.color=false", "aug.max_angle_deg=0",
                 "aug.max_translation_px=0", "aug.scale_range=[1,1]",
                 "model.content_latent=8"]) == 0
    model, _ = load_checkpoint(run / "model.pt")
    ds = FreiHANDDataset(val_root, crop_size=size, load_depth=False, load_mask=False)
    batch = collate([ds[i] for i in range(32)])
    x01 = batch["rgb"].float() / 255
    x, uv = normalize_images(x01), batch["uv"]
    a, b = torch.arange(16), torch.arange(16, 32)
    with torch.no_grad():
        moved = model.transfer(x[a], x[b])  # pose of a, content of b
        same = model.reconstruct(x[b])  # control: b as it is
    masks = [(_bones(uv[a[k]].numpy(), size, 2), _bones(uv[b[k]].numpy(), size, 2))
             for k in range(16)]

    def bright_on(img: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        g = img.mean(1).numpy()
        on_a = np.array([g[k][ma & ~mb].mean() for k, (ma, mb) in enumerate(masks)])
        on_b = np.array([g[k][mb & ~ma].mean() for k, (ma, mb) in enumerate(masks)])
        return on_a, on_b

    on_a, on_b = bright_on(moved)  # the skeleton is drawn where a's bones are, not b's
    assert (on_a > on_b).mean() >= 0.75 and on_a.mean() > on_b.mean() + 0.1, (on_a, on_b)
    ctl_a, ctl_b = bright_on(same)  # the measure itself: b's reconstruction has b's pose
    assert ctl_b.mean() > ctl_a.mean() + 0.1

    bg = [~(ma | mb) for ma, mb in masks]  # the background colour is b's, not a's
    col = torch.stack([moved[k][:, torch.from_numpy(bg[k])].mean(1) for k in range(16)])
    col_a = torch.stack([x01[a[k]][:, torch.from_numpy(bg[k])].mean(1) for k in range(16)])
    col_b = torch.stack([x01[b[k]][:, torch.from_numpy(bg[k])].mean(1) for k in range(16)])
    err_b, err_a = (col - col_b).abs().mean(1), (col - col_a).abs().mean(1)
    assert (err_b < err_a).float().mean() >= 0.7 and err_b.mean() < 0.6 * err_a.mean(), (
        err_b, err_a)

    m = reconstruction_metrics(model, ds, batch_size=16)  # the pose re-estimated on them
    assert m["transfer_to_pose_px"] < 0.6 * m["transfer_to_content_px"], m


def test_config_refuses_sizes_the_decoder_cannot_make() -> None:
    with pytest.raises(ValueError, match="power of two"):
        Config(input_size=96)
    with pytest.raises(ValueError, match="grids.count"):
        Config(grids=type(Config().grids)(count=0))
    assert main(["disentangled", "--preset", "tiny", "input_size=48"]) == 2


def test_tile_places_cells_row_by_row() -> None:
    red = np.zeros((2, 3, 4, 4), np.uint8)
    red[:, 0] = 255
    out = tile([red, np.ones((1, 3, 4, 4))], pad=1)
    assert out.shape == (3, 2 * 5 + 1, 2 * 5 + 1)
    assert (out[0, 1:5, 1:5] == 255).all() and (out[1, 1:5, 6:10] == 0).all()
    assert (out[:, 6:10, 1:5] == 255).all() and (out[:, 6:10, 6:10] == 96).all()
    with pytest.raises(ValueError, match="one H, W"):
        tile([red, np.zeros((1, 3, 5, 5), np.uint8)])
