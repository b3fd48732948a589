"""A hand-mask head and PoseNet with it (SemiHand's multi-task output, METHODS §4).

SemiHand predicts a hand mask next to the 2.5D pose from the same network; the mask feeds
the supervised mask loss on synthetic data, the mask part of the view consistency and the
cross-modal consistency with the 55-circle hand (:mod:`handpose.core.losses.fitting`).

:class:`MaskHead`: the encoder's last feature map (stride 32) -> ``num_deconv`` x
(4x4 transposed convolution, stride 2, + BN + ReLU) -> 1x1 convolution -> logits. With the
default 3 upsamplings the mask has stride 4: 32 x 32 on a 128-px crop. Mask pixel ``(i, j)``
covers crop pixels ``[j S/w, (j+1) S/w)`` (shifted by -0.5), i.e. its centre is at crop pixel
``((j + 0.5) S / w - 0.5, (i + 0.5) S / h - 0.5)``, the convention of the heatmap head.

:class:`PoseMaskNet` is a :class:`~.posenet.PoseNet` whose ``forward`` adds ``"mask_logits"``
(B, h, w) and ``"mask"`` = sigmoid(logits) (B, h, w) in (0, 1) to the pose outputs; anything
that uses a PoseNet (evaluation, ONNX export of the pose outputs, the tracker) uses it as is.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .heads import RootRefiner
from .posenet import PoseNet, _check_images
from .resnet import ResNetEncoder

__all__ = ["MaskHead", "PoseMaskNet"]


class MaskHead(nn.Module):
    """Feature map (B, C, h, w) -> mask logits (B, h * 2^num_deconv, w * 2^num_deconv).

    Args:
        in_channels: encoder feature channels.
        channels: channels of the transposed convolutions *(choose: 64)*.
        num_deconv: x2 upsamplings (>= 0; 3 gives stride 4 on a stride-32 encoder).
        prior: initial foreground probability of every pixel (the logit bias), in (0, 1).
    """

    def __init__(self, in_channels: int, channels: int = 64, num_deconv: int = 3,
                 prior: float = 0.3) -> None:
        super().__init__()
        if in_channels < 1 or channels < 1 or num_deconv < 0:
            raise ValueError(f"in_channels and channels must be >= 1 and num_deconv >= 0; got "
                             f"{in_channels}, {channels}, {num_deconv}")
        if not 0.0 < prior < 1.0:
            raise ValueError(f"prior must be in (0, 1); got {prior}")
        self.in_channels = in_channels
        self.num_deconv = num_deconv
        layers: list[nn.Module] = []
        cin = in_channels
        for _ in range(num_deconv):
            layers += [
                nn.ConvTranspose2d(cin, channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
            cin = channels
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(cin, 1, kernel_size=1, bias=True)
        nn.init.normal_(self.final.weight, std=1e-3)
        bias = self.final.bias
        assert bias is not None
        nn.init.constant_(bias, math.log(prior / (1.0 - prior)))  # logit(prior)

    def forward(self, fmap: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, h 2^n, w 2^n) logits."""
        if fmap.dim() != 4 or fmap.shape[1] != self.in_channels:
            raise ValueError(f"fmap must have shape (B, {self.in_channels}, h, w); got "
                             f"{tuple(fmap.shape)}")
        return self.final(self.deconv(fmap))[:, 0]  # type: ignore[no-any-return]


class PoseMaskNet(PoseNet):
    """PoseNet + :class:`MaskHead` on the same feature map.

    Args:
        encoder, head, root_refiner: as :class:`~.posenet.PoseNet`.
        mask_head: the mask head (its ``in_channels`` = the encoder's feature channels).
    """

    def __init__(self, encoder: ResNetEncoder, head: nn.Module, mask_head: MaskHead,
                 root_refiner: RootRefiner | None = None) -> None:
        super().__init__(encoder, head, root_refiner)
        if mask_head.in_channels != encoder.feature_dim:
            raise ValueError(f"mask_head.in_channels ({mask_head.in_channels}) must equal "
                             f"encoder.feature_dim ({encoder.feature_dim})")
        self.mask_head = mask_head

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Pose outputs of :meth:`PoseNet.forward` plus ``"mask_logits"`` and ``"mask"``
        (B, h, w), h = S / 32 * 2^num_deconv."""
        _check_images(images)
        fmap = self.encoder.forward_features(images)
        out: dict[str, Tensor] = self.head(fmap, (int(images.shape[-2]), int(images.shape[-1])))
        logits = self.mask_head(fmap)
        out["mask_logits"] = logits
        out["mask"] = torch.sigmoid(logits)
        return out
