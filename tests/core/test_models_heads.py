"""Pose heads, root refiner, projection head, PoseNet and the model registry."""

from __future__ import annotations

import math

import pytest
import torch

from handpose.core.models import (
    IMAGENET_NORMALIZATION,
    ContrastiveModel,
    HeatmapHead25D,
    PoseNet,
    ProjectionHead,
    RegressionHead25D,
    RootRefiner,
    available_models,
    build_model,
    get_arch,
    model_kwargs,
    normalize_images,
    soft_argmax_25d,
)
from handpose.core.types import Pose25D


def test_regression_head_scales_normalised_output_by_input_size() -> None:
    head = RegressionHead25D(8)
    torch.nn.init.zeros_(head.pose.weight)
    torch.nn.init.zeros_(head.pose.bias)
    fmap = torch.randn(2, 8, 3, 2)
    out = head(fmap, (64, 96))  # H=64, W=96: zero output = the image centre
    assert torch.allclose(out["uv"], torch.tensor([47.5, 31.5]).expand(2, 21, 2))
    with torch.no_grad():
        head.pose.bias.view(21, 3)[:, 0] = -0.5  # u = -0.5 (left edge of the image)
        head.pose.bias.view(21, 3)[:, 1] = 0.25  # v = 0.75 H - 0.5
        head.pose.bias.view(21, 3)[:, 2] = 0.3
    out = head(fmap, (64, 96))
    assert torch.allclose(out["uv"][..., 0], torch.full((2, 21), -0.5), atol=1e-6)
    assert torch.allclose(out["uv"][..., 1], torch.full((2, 21), 47.5))
    assert torch.allclose(out["z_rel"], torch.full((2, 21), 0.3))
    # confidence = exp(-predicted error / scale), in (0, 1]
    conf, err = out["confidence"], out["uv_error"]
    assert torch.all(err >= 0) and torch.all(conf > 0) and torch.all(conf <= 1)
    assert torch.allclose(conf, torch.exp(-err / head.error_scale))


def test_regression_head_mlp_variant_and_bad_fmap() -> None:
    head = RegressionHead25D(8, hidden=16).eval()
    assert head(torch.randn(4, 8, 2, 2), (32, 32))["uv"].shape == (4, 21, 2)
    with pytest.raises(ValueError, match=r"\(B, 8, h, w\)"):
        head(torch.randn(4, 7, 2, 2), (32, 32))


def test_soft_argmax_of_a_peak_and_of_a_flat_map() -> None:
    b, j, h, w = 2, 21, 8, 4
    logits = torch.zeros(b, j, h, w)
    depth = torch.randn(b, j, h, w)
    logits[:, :, 5, 1] = 60.0  # all mass at heatmap pixel (row 5, col 1)
    out = soft_argmax_25d(logits, depth, (64, 32))  # 8 input px per heatmap px
    assert torch.allclose(out["uv"], torch.tensor([1.5 * 8 - 0.5, 5.5 * 8 - 0.5]).expand(b, j, 2))
    assert torch.allclose(out["z_rel"], depth[:, :, 5, 1], atol=1e-5)
    assert torch.allclose(out["confidence"], torch.ones(b, j), atol=1e-5)
    flat = soft_argmax_25d(torch.zeros(b, j, h, w), depth, (64, 32))
    assert torch.allclose(flat["uv"], torch.tensor([15.5, 31.5]).expand(b, j, 2))
    assert torch.allclose(flat["z_rel"], depth.mean(dim=(2, 3)), atol=1e-6)
    assert torch.allclose(flat["confidence"], torch.full((b, j), 9.0 / (h * w)))
    assert torch.allclose(flat["heatmaps"].sum(dim=(2, 3)), torch.ones(b, j))


def test_heatmap_head_resolution() -> None:
    head = HeatmapHead25D(16, channels=8, num_deconv=2).eval()
    out = head(torch.randn(2, 16, 2, 2), (64, 64))
    assert out["heatmaps"].shape == (2, 21, 8, 8)
    assert out["uv"].shape == (2, 21, 2) and out["confidence"].shape == (2, 21)


def test_root_refiner_detaches_and_clamps_z() -> None:
    ref = RootRefiner().eval()
    torch.nn.init.zeros_(ref.mlp[-1].weight)
    torch.nn.init.zeros_(ref.mlp[-1].bias)
    z_root = torch.tensor([2.0, 10.0, 80.0], requires_grad=True)
    z_rel = torch.randn(3, 21, requires_grad=True)
    out = ref(z_rel, torch.randn(3, 21, 2), z_root)
    assert torch.allclose(out, torch.tensor([4.0, 10.0, 50.0]))
    torch.nn.init.normal_(ref.mlp[-1].weight)
    out = ref(z_rel, torch.randn(3, 21, 2), z_root)
    out.sum().backward()
    assert z_root.grad is None  # Z is detached before the MLP and the residual
    assert z_rel.grad is not None and z_rel.grad.abs().sum() > 0
    assert ref.mlp[0].in_features == 64
    with pytest.raises(ValueError, match="z_root"):
        ref(z_rel, torch.randn(3, 21, 2), torch.ones(3, 1))


def test_projection_head_layout() -> None:
    proj = ProjectionHead(32)
    assert [type(m).__name__ for m in proj.net] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert proj.net[0].out_features == 512 and proj.net[3].out_features == 128
    assert proj.net[3].bias is None
    z = proj(torch.randn(5, 32))
    assert z.shape == (5, 128) and torch.allclose(z.norm(dim=1), torch.ones(5))


def test_posenet_forward_and_predict() -> None:
    torch.manual_seed(0)
    model = build_model("posenet_resnet18", width=8).eval()
    assert isinstance(model, PoseNet)
    x = torch.randn(3, 3, 64, 64)
    out = model(x)
    assert set(out) >= {"uv", "z_rel", "confidence"}
    pose = model.predict(x)
    assert isinstance(pose, Pose25D) and not pose.uv.requires_grad
    assert torch.allclose(pose.uv, out["uv"]) and torch.allclose(pose.z_rel, out["z_rel"])
    # batch elements are independent in eval mode
    assert torch.allclose(model(x[1:2])["uv"], out["uv"][1:2], atol=1e-4)
    cl = model.to(memory_format=torch.channels_last)
    assert torch.allclose(cl(x.contiguous(memory_format=torch.channels_last))["uv"],
                          out["uv"], atol=1e-4)
    with pytest.raises(ValueError, match="normalised floating point"):
        model(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_normalize_images() -> None:
    img = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = normalize_images(img)
    mean, std = IMAGENET_NORMALIZATION["mean"], IMAGENET_NORMALIZATION["std"]
    for c in range(3):
        assert math.isclose(out[0, c, 0, 0].item(), (1 - mean[c]) / std[c], rel_tol=1e-6)
    assert torch.allclose(normalize_images(img.float() / 255), out)
    with pytest.raises(ValueError, match="'std'"):
        normalize_images(img, {"mean": (0, 0, 0), "std": (1, 0, 1)})


def test_registry_round_trip_every_name() -> None:
    names = available_models()
    for d in (18, 34, 50, 101, 152):
        for pat in ("encoder_resnet{}", "simclr_resnet{}", "posenet_resnet{}",
                    "posenet_resnet{}_heatmap"):
            assert pat.format(d) in names
    with torch.device("meta"):
        for name in names:
            kwargs = {"width": 4} if "width" in model_kwargs(name) else {}
            model = build_model(name, **kwargs)
            arch = get_arch(model)
            assert arch == {"name": name, "kwargs": kwargs}
            again = build_model(arch["name"], **arch["kwargs"])
            a = {k: tuple(v.shape) for k, v in model.state_dict().items()}
            assert a == {k: tuple(v.shape) for k, v in again.state_dict().items()}
    simclr = build_model("simclr_resnet18", width=4)
    assert isinstance(simclr, ContrastiveModel)
    # the pre-trained encoder transfers into a PoseNet as is
    pose = build_model("posenet_resnet18", width=4)
    pose.encoder.load_state_dict(simclr.encoder.state_dict(), strict=True)
    assert build_model("posenet_resnet18", width=4, root_refine=True).root_refiner is not None
    assert model_kwargs("posenet_resnet50_heatmap")["num_deconv"] == 3


def test_registry_errors_are_actionable() -> None:
    with pytest.raises(ValueError, match="did you mean 'posenet_resnet18'"):
        build_model("posenet_resnet81")
    with pytest.raises(ValueError, match="did you mean 'width'"):
        build_model("posenet_resnet18", widht=8)
    with pytest.raises(ValueError, match="plain data"):
        build_model("posenet_resnet18", width=torch.tensor(8))
    with pytest.raises(ValueError, match="build_model"):
        get_arch(torch.nn.Linear(2, 2))
