"""Import of official PeCLR weights: the three published layouts, and clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from handpose.core.models import (
    ResNetEncoder,
    build_model,
    import_peclr_weights,
    resnet_depth_from_state_dict,
)
from handpose.core.safe_load import CheckpointError

FEATURES = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6",
            "layer4": "7"}


def _torchvision_sd(depth: int = 18, width: int = 8) -> dict[str, torch.Tensor]:
    torch.manual_seed(depth)
    enc = ResNetEncoder(depth, width=width, num_classes=1000)
    for p in enc.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return {k: v.clone() for k, v in enc.state_dict().items()}


def _check(sd: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], depth: int) -> None:
    assert resnet_depth_from_state_dict(sd) == (depth, 8)
    enc = ResNetEncoder(depth, width=8)
    enc.load_state_dict(sd, strict=True)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_release_format_torchvision_keys(tmp_path: Path) -> None:
    ref = _torchvision_sd(50)
    path = tmp_path / "peclr_rn50_yt3dh_fh.pth"
    torch.save({"state_dict": ref}, path)
    sd = import_peclr_weights(path)
    assert not any(k.startswith("fc.") for k in sd)
    _check(sd, ref, 50)
    model = build_model("posenet_resnet50", width=8)
    model.encoder.load_state_dict(sd, strict=True)


def test_lightning_training_checkpoint_layout(tmp_path: Path) -> None:
    ref = _torchvision_sd(18)
    sd = {}
    for k, v in ref.items():
        top, _, rest = k.partition(".")
        if top == "fc":
            continue
        sd[f"encoder.features.{FEATURES[top]}.{rest}"] = v
    sd["encoder.final_layer.0.weight"] = torch.zeros(64, 64)
    sd["projection_head.0.weight"] = torch.zeros(512, 64)
    sd["projection_head.1.running_mean"] = torch.zeros(512)
    sd["projection_head.3.weight"] = torch.zeros(128, 512)
    path = tmp_path / "epoch=99.ckpt"
    torch.save({"epoch": 99, "global_step": 1000, "state_dict": sd}, path)
    _check(import_peclr_weights(path), ref, 18)


def test_finetuned_rn25d_layout_with_dataparallel_prefix(tmp_path: Path) -> None:
    ref = _torchvision_sd(18)
    sd = {f"module.backend_model.{k}": v for k, v in ref.items() if not k.startswith("fc.")}
    sd["module.backend_model.fc.weight"] = torch.zeros(64, 64)
    sd["module.backend_model.fc.bias"] = torch.zeros(64)
    sd["module.zroot_ref.zroot_ref.0.weight"] = torch.zeros(128, 64)
    path = tmp_path / "rn18_peclr_ft.pth"
    torch.save({"state_dict": sd}, path)
    _check(import_peclr_weights(path), ref, 18)


def test_old_files_without_num_batches_tracked(tmp_path: Path) -> None:
    ref = _torchvision_sd(18)
    path = tmp_path / "old.pth"
    torch.save({k: v for k, v in ref.items() if "num_batches" not in k}, path)
    sd = import_peclr_weights(path)
    ResNetEncoder(18, width=8).load_state_dict(sd, strict=True)


def test_failures_name_the_problem(tmp_path: Path) -> None:
    p = tmp_path / "x.pth"
    torch.save({"state_dict": {"mlp.0.weight": torch.zeros(2, 2)}}, p)
    with pytest.raises(CheckpointError, match="no ResNet encoder found.*mlp.0.weight"):
        import_peclr_weights(p)
    torch.save({"epoch": 3, "notes": "x"}, p)
    with pytest.raises(CheckpointError, match="no 'state_dict'"):
        import_peclr_weights(p)
    ref = _torchvision_sd(18)
    ref["layer2.0.conv2.weight"] = torch.zeros(16, 16, 5, 5)
    torch.save({"state_dict": ref}, p)
    msg = r"'layer2.0.conv2.weight' has shape \(16, 16, 5, 5\)"
    with pytest.raises(CheckpointError, match=msg):
        import_peclr_weights(p)
    ref = _torchvision_sd(18)
    del ref["layer3.1.bn2.weight"]
    torch.save({"state_dict": ref}, p)
    with pytest.raises(CheckpointError, match="missing.*layer3.1.bn2.weight"):
        import_peclr_weights(p)
    with pytest.raises(CheckpointError, match="not found"):
        import_peclr_weights(tmp_path / "nope.pth")
