"""ResNet encoders: torchvision-exact parameter names/shapes and forward semantics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from handpose.core.models import ResNetEncoder, resnet_depth_from_state_dict, strip_classifier

BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
          152: (3, 8, 36, 3)}


def torchvision_keys(depth: int, width: int = 64, classes: int = 1000) -> list[tuple[str, tuple]]:
    """The ordered (name, shape) list of torchvision.models.resnet{depth}().state_dict(),
    written from torchvision's architecture (pytorch/vision torchvision/models/resnet.py)."""
    bottleneck = depth >= 50
    exp = 4 if bottleneck else 1
    keys: list[tuple[str, tuple]] = []

    def bn(name: str, c: int) -> None:
        keys.extend([(f"{name}.weight", (c,)), (f"{name}.bias", (c,)),
                     (f"{name}.running_mean", (c,)), (f"{name}.running_var", (c,)),
                     (f"{name}.num_batches_tracked", ())])

    keys.append(("conv1.weight", (width, 3, 7, 7)))
    bn("bn1", width)
    cin = width
    for s, n in enumerate(BLOCKS[depth], start=1):
        planes = width * 2 ** (s - 1)
        for i in range(n):
            p = f"layer{s}.{i}"
            if bottleneck:
                keys.append((f"{p}.conv1.weight", (planes, cin, 1, 1)))
                bn(f"{p}.bn1", planes)
                keys.append((f"{p}.conv2.weight", (planes, planes, 3, 3)))
                bn(f"{p}.bn2", planes)
                keys.append((f"{p}.conv3.weight", (planes * 4, planes, 1, 1)))
                bn(f"{p}.bn3", planes * 4)
            else:
                keys.append((f"{p}.conv1.weight", (planes, cin, 3, 3)))
                bn(f"{p}.bn1", planes)
                keys.append((f"{p}.conv2.weight", (planes, planes, 3, 3)))
                bn(f"{p}.bn2", planes)
            if i == 0 and (s > 1 or cin != planes * exp):
                keys.append((f"{p}.downsample.0.weight", (planes * exp, cin, 1, 1)))
                bn(f"{p}.downsample.1", planes * exp)
            cin = planes * exp
    keys += [("fc.weight", (classes, cin)), ("fc.bias", (classes,))]
    return keys


@pytest.mark.parametrize("depth", [18, 50])
def test_state_dict_matches_torchvision_exactly(depth: int) -> None:
    with torch.device("meta"):
        enc = ResNetEncoder(depth, num_classes=1000)
    ours = [(k, tuple(v.shape)) for k, v in enc.state_dict().items()]
    assert ours == torchvision_keys(depth)
    n_params = sum(p.numel() for p in enc.parameters())
    # torchvision's published parameter counts
    assert n_params == {18: 11_689_512, 50: 25_557_032}[depth]
    assert len(ours) == {18: 122, 50: 320}[depth]


@pytest.mark.parametrize("depth", [34, 101, 152])
def test_other_depths_have_torchvision_names(depth: int) -> None:
    with torch.device("meta"):
        enc = ResNetEncoder(depth, num_classes=1000)
    assert [k for k in enc.state_dict()] == [k for k, _ in torchvision_keys(depth)]


def _random_state_dict(depth: int, width: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    sd = {}
    for k, shape in torchvision_keys(depth, width, classes=10):
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(3)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=gen) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=gen) * 0.1
    return sd


def _reference_forward(sd: dict[str, torch.Tensor], depth: int, x: torch.Tensor) -> torch.Tensor:
    """Functional ResNet (torchvision semantics: v1.5 stride on the 3x3 conv), eval-mode BN."""

    def bn(t: torch.Tensor, n: str) -> torch.Tensor:
        return F.batch_norm(t, sd[f"{n}.running_mean"], sd[f"{n}.running_var"],
                            sd[f"{n}.weight"], sd[f"{n}.bias"], False, 0.0, 1e-5)

    x = F.relu(bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), "bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for s, n in enumerate(BLOCKS[depth], start=1):
        for i in range(n):
            p = f"layer{s}.{i}"
            stride = 2 if (i == 0 and s > 1) else 1
            idt = x
            if f"{p}.downsample.0.weight" in sd:
                idt = bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride),
                         f"{p}.downsample.1")
            if depth >= 50:
                y = F.relu(bn(F.conv2d(x, sd[f"{p}.conv1.weight"]), f"{p}.bn1"))
                y = F.relu(bn(F.conv2d(y, sd[f"{p}.conv2.weight"], stride=stride, padding=1),
                              f"{p}.bn2"))
                y = bn(F.conv2d(y, sd[f"{p}.conv3.weight"]), f"{p}.bn3")
            else:
                y = F.relu(bn(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=stride, padding=1),
                              f"{p}.bn1"))
                y = bn(F.conv2d(y, sd[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
            x = F.relu(y + idt)
    return F.linear(x.mean(dim=(2, 3)), sd["fc.weight"], sd["fc.bias"])


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_weights_load_strict_and_compute_the_same(depth: int) -> None:
    gen = torch.Generator().manual_seed(depth)
    sd = _random_state_dict(depth, 8, gen)
    enc = ResNetEncoder(depth, width=8, num_classes=10).eval()
    enc.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 64, 64, generator=gen)
    with torch.no_grad():
        assert torch.allclose(enc(x), _reference_forward(sd, depth, x), atol=1e-4, rtol=1e-4)
    # the same weights without the classifier load into a feature encoder
    feat = ResNetEncoder(depth, width=8).eval()
    feat.load_state_dict(strip_classifier(sd), strict=True)
    with torch.no_grad():
        pooled = feat(x)
        assert torch.allclose(F.linear(pooled, sd["fc.weight"], sd["fc.bias"]), enc(x),
                              atol=1e-5)


def test_feature_shapes_and_channels_last() -> None:
    enc = ResNetEncoder(18, width=8).eval()
    x = torch.randn(3, 3, 64, 64)
    fmap = enc.forward_features(x)
    assert fmap.shape == (3, enc.feature_dim, 2, 2) and enc.feature_dim == 64
    assert ResNetEncoder(50, width=4).feature_dim == 4 * 8 * 4
    cl = ResNetEncoder(18, width=8).eval()
    cl.load_state_dict(enc.state_dict())
    cl = cl.to(memory_format=torch.channels_last)
    with torch.no_grad():
        y = cl(x.contiguous(memory_format=torch.channels_last))
        assert torch.allclose(y, enc(x), atol=1e-5)


def test_init_matches_torchvision_conventions() -> None:
    enc = ResNetEncoder(18, width=8, zero_init_residual=True)
    assert torch.all(enc.layer1[0].bn2.weight == 0)
    assert torch.all(enc.bn1.weight == 1) and torch.all(enc.bn1.bias == 0)
    w = enc.layer3[0].conv1.weight  # kaiming fan_out: std = sqrt(2 / (cout * k * k))
    expected = (2.0 / (w.shape[0] * 9)) ** 0.5
    assert abs(w.std().item() - expected) / expected < 0.1


def test_depth_inference_and_bad_input() -> None:
    with torch.device("meta"):
        for depth in (18, 34, 50, 152):
            sd = ResNetEncoder(depth, width=16).state_dict()
            assert resnet_depth_from_state_dict(sd) == (depth, 16)
        sd = ResNetEncoder(18, width=16).state_dict()
    del sd["layer4.1.conv1.weight"], sd["layer4.1.conv2.weight"]
    sd = {k: v for k, v in sd.items() if not k.startswith("layer4.1.")}
    with pytest.raises(ValueError, match=r"\(2, 2, 2, 1\)"):
        resnet_depth_from_state_dict(sd)
    with pytest.raises(ValueError, match="depth must be one of"):
        ResNetEncoder(20)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        ResNetEncoder(18, width=4)(torch.zeros(1, 1, 32, 32))
