"""ResNet-18/34/50/101/152 encoders with torchvision-compatible parameter names.

torchvision is not a dependency of handpose, so the ResNets are defined here. Module and
parameter names follow ``torchvision.models.resnet`` exactly (``conv1``, ``bn1``,
``layer1.0.conv1``, ..., ``layer2.0.downsample.0`` / ``.1``, ``fc``), and the bottleneck puts
its stride on the 3x3 convolution ("ResNet v1.5") as torchvision does, so a torchvision
state dict loads with ``load_state_dict(strict=True)`` into ``ResNetEncoder(depth,
num_classes=1000)``, and into ``ResNetEncoder(depth)`` once its ``fc.*`` entries are dropped
(see :func:`strip_classifier`).

``width`` scales every channel count (64 = the standard network); smaller widths make fast
test models. Weights start as torchvision's do (Kaiming-normal fan-out convolutions, BN
weight 1 / bias 0), optionally with the last BN of each residual branch zeroed.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = [
    "RESNET_DEPTHS",
    "BasicBlock",
    "Bottleneck",
    "ResNetEncoder",
    "strip_classifier",
    "resnet_depth_from_state_dict",
]

#: depth -> (block type name, blocks per stage).
RESNET_DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand (x4), with a shortcut."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """A ResNet image encoder.

    Args:
        depth: 18, 34, 50, 101 or 152.
        width: channels of the stem (64 for the standard networks); stages have
            width * (1, 2, 4, 8) planes (times 4 at the output of a bottleneck).
        num_classes: 0 (default) for an encoder without classifier; > 0 adds torchvision's
            ``fc`` layer (``num_classes=1000`` matches torchvision's state dicts exactly).
        zero_init_residual: zero the last BN weight of each residual branch.

    Attributes:
        feature_dim: channels of the final feature map (512 * width/64 for 18/34,
            2048 * width/64 for 50/101/152).
        stride: 32, the total downsampling of :meth:`forward_features`.
    """

    stride = 32

    def __init__(self, depth: int = 18, width: int = 64, num_classes: int = 0,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"depth must be one of {sorted(RESNET_DEPTHS)}; got {depth!r}")
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int; got {width!r}")
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be an int >= 0; got {num_classes!r}")
        kind, blocks = RESNET_DEPTHS[depth]
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock if kind == "basic" else Bottleneck
        self.depth = depth
        self.width = width
        self._cin = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, blocks[0], 1)
        self.layer2 = self._make_layer(block, width * 2, blocks[1], 2)
        self.layer3 = self._make_layer(block, width * 4, blocks[2], 2)
        self.layer4 = self._make_layer(block, width * 8, blocks[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.feature_dim = width * 8 * block.expansion
        self.fc: nn.Linear | None = (
            nn.Linear(self.feature_dim, num_classes) if num_classes > 0 else None
        )
        self._init_weights(zero_init_residual)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int,
                    n: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._cin != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self._cin, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers: list[nn.Module] = [block(self._cin, planes, stride, downsample)]
        self._cin = planes * block.expansion
        layers += [block(self._cin, planes) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock | Bottleneck):
                    nn.init.zeros_(m.last_bn().weight)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) normalised images -> (B, feature_dim, ceil(H/32), ceil(W/32))."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def pool(self, fmap: Tensor) -> Tensor:
        """(B, C, h, w) feature map -> (B, C) global average."""
        return torch.flatten(self.avgpool(fmap), 1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, feature_dim) pooled features, or (B, num_classes) logits."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W); got {tuple(x.shape)}")
        feat = self.pool(self.forward_features(x))
        return feat if self.fc is None else self.fc(feat)


def strip_classifier(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop torchvision's ``fc.weight`` / ``fc.bias`` so the rest loads into an encoder."""
    return {k: v for k, v in state_dict.items() if not k.startswith("fc.")}


def resnet_depth_from_state_dict(state_dict: Mapping[str, Tensor]) -> tuple[int, int]:
    """Infer (depth, width) of a torchvision-style ResNet state dict.

    Args:
        state_dict: keys ``conv1.weight``, ``layer{1..4}.{i}.*`` (no prefix).

    Returns:
        (depth, width), e.g. (50, 64).

    Raises:
        ValueError: the keys do not describe one of the five ResNets.
    """
    if "conv1.weight" not in state_dict:
        raise ValueError("state_dict has no 'conv1.weight': not a torchvision-style ResNet")
    width = int(state_dict["conv1.weight"].shape[0])
    kind = "bottleneck" if "layer1.0.conv3.weight" in state_dict else "basic"
    counts = []
    for s in range(1, 5):
        idx = {int(k.split(".")[1]) for k in state_dict if k.startswith(f"layer{s}.")}
        counts.append(len(idx))
    for depth, (k, blocks) in RESNET_DEPTHS.items():
        if k == kind and tuple(counts) == blocks:
            return depth, width
    raise ValueError(f"{kind} ResNet with blocks per stage {tuple(counts)} is not one of "
                     f"{ {d: b for d, (_, b) in RESNET_DEPTHS.items()} }")
