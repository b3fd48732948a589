"""Dual-modality network: RGB and depth encoders sharing one multi-modal decoder (METHODS §5).

Yang et al. (dissertation ch. 7): three branches project to one latent space and share a
decoder (3 x [4x4 transposed convolution, stride 2, + BN + ReLU] and a 1x1 convolution) that
outputs a 2.5D pose (integral heatmaps), a hand mask and a depth map:

- **RGB branch**: the RGB ResNet encoder on the image. It is the only branch used at
  inference: ``forward(images)`` runs it and returns the PoseNet output contract
  (``uv``, ``z_rel``, ``confidence``; :data:`~.posenet.POSE_OUTPUTS`), so the network exports
  to ONNX and runs in the tracker like any PoseNet.
- **DM branch**: the depth encoder on a depth map. After conv1 (its conv + BN + ReLU) and
  after each of the four ResNet stages its feature map f is re-weighted by the attention of
  :func:`depth_attention` (``Att(f) * f``, "self-attended").
- **Fusion branch**: the RGB encoder's convolution weights (shared tensors) with its own BN
  layers; at the same five places its feature map is multiplied by the DM branch's attention,
  ``Att(f_D) * f_RGB``. With ``detach_attention`` (the paper's stop-gradient) no gradient
  flows from the fusion branch into the depth encoder through the attention.

**Depth maps** (input of the DM branch and the decoder's depth output) use one normalised
form, :func:`normalize_depth`: ``(Z - Z_ref) / (depth_range * s)`` clipped to [-1, 1], where
Z_ref is a reference depth of the hand (the median reading near the crop centre) and s the
reference bone length; pixels without a reading, and everything beyond the range, read 1
(far). The decoder's maps have stride 4 (``S/4`` on an ``S``-pixel crop); mask pixel
``(i, j)`` covers crop pixels as in :mod:`.mask_head`.

:class:`DualModalityNet` keeps the RGB branch under the same module names as a
:class:`~.posenet.PoseNet` (``encoder``, ``head``), so :func:`rgb_branch` is a PoseNet sharing
its modules; the ``posenet_resnetN_multimodal`` checkpoint of a training run holds exactly
those weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..skeleton import NUM_JOINTS
from .heads import ProjectionHead, soft_argmax_25d
from .posenet import PoseNet, _check_images
from .resnet import ResNetEncoder

__all__ = [
    "DEFAULT_DEPTH_RANGE",
    "depth_attention",
    "normalize_depth",
    "reference_depth",
    "MultiModalHead",
    "DualModalityNet",
    "rgb_branch",
    "upsample_depth",
]

#: Half-width of the normalised depth window in reference bones *(choose)*: 5 s ~ 15 cm
#: in front of and behind the hand's reference depth covers a hand in any orientation.
DEFAULT_DEPTH_RANGE = 5.0
_ATT_EPS = 1e-12


def depth_attention(f: Tensor) -> Tensor:
    """Spatial attention of a feature map (dissertation eq. 7.2).

    ``w_ij = <mean(f), f_ij> / sum_ij <mean(f), f_ij> * (h w)``, with ``mean(f)`` the
    spatially averaged feature vector, so the weights average to 1 over the map.

    Args:
        f: (B, C, h, w) non-negative features (post-ReLU, as everywhere in the ResNet).
    Returns:
        (B, 1, h, w) weights; a map of all-zero features gets weights 0.
    """
    if f.dim() != 4:
        raise ValueError(f"f must have shape (B, C, h, w); got {tuple(f.shape)}")
    mean = f.mean(dim=(2, 3), keepdim=True)
    dot = (f * mean).sum(dim=1, keepdim=True)
    total = dot.sum(dim=(2, 3), keepdim=True)
    return dot * (f.shape[2] * f.shape[3]) / total.clamp_min(_ATT_EPS)


def reference_depth(depth: Tensor, window: float = 0.5) -> Tensor:
    """Reference depth of the hand in each crop: the median valid reading near its centre.

    Args:
        depth: (B, 1, S, S) or (B, S, S) metres, 0 (or non-finite) = no reading.
        window: side of the central window, as a fraction of the crop side (0, 1]; when the
            window has no reading the whole crop is used.
    Returns:
        (B,) metres; NaN for a crop without any reading.
    """
    d = depth[:, 0] if depth.dim() == 4 else depth
    if d.dim() != 3 or not 0 < window <= 1:
        raise ValueError(f"depth must be (B, 1, S, S) or (B, S, S) and window in (0, 1]; got "
                         f"{tuple(depth.shape)}, {window}")
    h, w = d.shape[-2:]
    valid = torch.isfinite(d) & (d > 0)
    vals = torch.where(valid, d, torch.full_like(d, float("nan")))
    r0, c0 = int(round(h * (1 - window) / 2)), int(round(w * (1 - window) / 2))
    centre = vals[:, r0:h - r0, c0:w - c0].flatten(1).nanmedian(dim=1).values
    whole = vals.flatten(1).nanmedian(dim=1).values
    return torch.where(torch.isnan(centre), whole, centre)


def normalize_depth(depth: Tensor, ref_z: Tensor, scale: Tensor,
                    depth_range: float = DEFAULT_DEPTH_RANGE) -> Tensor:
    """Metric depth crops -> the network's normalised depth maps (module docstring).

    Args:
        depth: (B, 1, S, S) metres, 0 (or non-finite) = no reading.
        ref_z: (B,) metres, the reference depth (e.g. :func:`reference_depth` or the root
            joint's Z); NaN = no reference (the whole map reads 1).
        scale: (B,) metres, reference bone length s.
        depth_range: half-width of the window in reference bones (> 0).
    Returns:
        (B, 1, S, S) in [-1, 1], 1 = far / no reading.
    """
    b = depth.shape[0]
    if depth.dim() != 4 or depth.shape[1] != 1:
        raise ValueError(f"depth must have shape (B, 1, S, S); got {tuple(depth.shape)}")
    if ref_z.shape != (b,) or scale.shape != (b,):
        raise ValueError(f"ref_z and scale must have shape ({b},); got {tuple(ref_z.shape)} "
                         f"and {tuple(scale.shape)}")
    if not depth_range > 0:
        raise ValueError(f"depth_range must be > 0 reference bones; got {depth_range}")
    valid = torch.isfinite(depth) & (depth > 0) & torch.isfinite(ref_z).view(b, 1, 1, 1)
    q = (depth - ref_z.view(b, 1, 1, 1)) / (depth_range * scale.view(b, 1, 1, 1))
    q = torch.nan_to_num(q, nan=1.0, posinf=1.0, neginf=-1.0).clamp(-1.0, 1.0)
    return torch.where(valid, q, torch.ones_like(q))


class MultiModalHead(nn.Module):
    """The shared decoder: feature map -> 2.5D pose, hand mask and depth map.

    ``num_deconv`` x (4x4 transposed convolution, stride 2, + BN + ReLU), then a 1x1
    convolution to 2J + 2 maps: J heatmap logits and J z_rel maps (integral regression,
    :func:`~.heads.soft_argmax_25d`), the mask logit and the normalised depth.

    Args:
        in_channels: encoder feature channels.
        num_joints: J (21).
        channels: channels of the transposed convolutions (256 as in the paper's backbone).
        num_deconv: x2 upsamplings (3: stride 32 -> 4).
        beta: softmax sharpness of the heatmaps *(choose: 10, as the depth FCN; 1 learned
            several times slower in the tiny runs)*.
        mask_prior: initial foreground probability (the mask logit's bias), in (0, 1).

    ``forward(fmap, input_hw)`` returns the pose-head contract of :mod:`.heads` ("uv",
    "z_rel", "confidence", "heatmaps") plus "mask_logits", "mask" (B, h, w) and "depth"
    (B, h, w) normalised depth (not clipped; clip to [-1, 1] before using it as an input).
    """

    def __init__(self, in_channels: int, num_joints: int = NUM_JOINTS, channels: int = 256,
                 num_deconv: int = 3, beta: float = 10.0, mask_prior: float = 0.3) -> None:
        super().__init__()
        if in_channels < 1 or channels < 1 or num_deconv < 0:
            raise ValueError(f"in_channels, channels must be >= 1 and num_deconv >= 0; got "
                             f"{in_channels}, {channels}, {num_deconv}")
        if not 0.0 < mask_prior < 1.0:
            raise ValueError(f"mask_prior must be in (0, 1); got {mask_prior}")
        self.in_channels = in_channels
        self.num_joints = num_joints
        self.beta = float(beta)
        layers: list[nn.Module] = []
        cin = in_channels
        for _ in range(num_deconv):
            layers += [nn.ConvTranspose2d(cin, channels, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            cin = channels
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(cin, 2 * num_joints + 2, kernel_size=1)
        nn.init.normal_(self.final.weight, std=1e-3)
        bias = self.final.bias
        assert bias is not None
        with torch.no_grad():
            bias.zero_()
            bias[2 * num_joints] = math.log(mask_prior / (1.0 - mask_prior))
            bias[2 * num_joints + 1] = 1.0  # "far" everywhere at the start

    def forward(self, fmap: Tensor, input_hw: tuple[int, int]) -> dict[str, Tensor]:
        if fmap.dim() != 4 or fmap.shape[1] != self.in_channels:
            raise ValueError(f"fmap must have shape (B, {self.in_channels}, h, w); got "
                             f"{tuple(fmap.shape)}")
        maps = self.final(self.deconv(fmap))
        j = self.num_joints
        out = soft_argmax_25d(maps[:, :j], maps[:, j:2 * j], input_hw, self.beta)
        out["mask_logits"] = maps[:, 2 * j]
        out["mask"] = torch.sigmoid(out["mask_logits"])
        out["depth"] = maps[:, 2 * j + 1]
        return out


def _stem(enc: ResNetEncoder, x: Tensor) -> Tensor:
    return enc.relu(enc.bn1(enc.conv1(x)))  # type: ignore[no-any-return]


def _stages(enc: ResNetEncoder) -> tuple[nn.Module, ...]:
    return (enc.layer1, enc.layer2, enc.layer3, enc.layer4)


class DualModalityNet(nn.Module):
    """RGB, DM and fusion branches with a shared :class:`MultiModalHead` (module docstring).

    Args:
        depth: ResNet depth of both encoders (18, 34, 50, 101, 152; the paper used 101).
        width: ResNet base width (64 = standard).
        channels, num_deconv, beta: of the :class:`MultiModalHead`.
        proj_hidden, proj_dim: the two-layer projections (Linear + BN + ReLU + Linear) to the
            L2-normalised contrastive features: ``projection`` for the RGB and fusion
            branches (one space, so z_RGB and z_F can be a positive pair), ``depth_projection``
            for the DM branch.

    Attributes:
        encoder: RGB encoder (torchvision names). head: the shared decoder.
        depth_encoder: the DM encoder; its conv1 takes one channel (the normalised depth).
        fusion_encoder: a ResNetEncoder whose convolution weights ARE the RGB encoder's
            (shared Parameters; BN layers its own).
    """

    def __init__(self, depth: int = 18, width: int = 64, channels: int = 256,
                 num_deconv: int = 3, beta: float = 10.0, proj_hidden: int = 512,
                 proj_dim: int = 128) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(depth, width=width)
        self.head = MultiModalHead(self.encoder.feature_dim, channels=channels,
                                   num_deconv=num_deconv, beta=beta)
        self.depth_encoder = ResNetEncoder(depth, width=width)
        self.depth_encoder.conv1 = nn.Conv2d(1, width, kernel_size=7, stride=2, padding=3,
                                             bias=False)
        nn.init.kaiming_normal_(self.depth_encoder.conv1.weight, mode="fan_out",
                                nonlinearity="relu")
        self.fusion_encoder = ResNetEncoder(depth, width=width)
        for name, m in self.fusion_encoder.named_modules():
            if isinstance(m, nn.Conv2d):
                src = self.encoder.get_submodule(name)
                assert isinstance(src, nn.Conv2d)
                m.weight = src.weight
        feat = self.encoder.feature_dim
        self.projection = ProjectionHead(feat, proj_hidden, proj_dim)
        self.depth_projection = ProjectionHead(feat, proj_hidden, proj_dim)

    # --- the RGB branch (inference) ------------------------------------------------------------

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """The RGB branch: (B, 3, S, S) normalised images -> the PoseNet contract.

        Returns:
            "uv" (B, 21, 2) crop pixels, "z_rel" (B, 21), "confidence" (B, 21), "heatmaps",
            "mask_logits", "mask", "depth" (B, S/4, S/4) (see :class:`MultiModalHead`).
        """
        _check_images(images)
        return self.head(self.encoder.forward_features(images), _hw(images))  # type: ignore[no-any-return]

    # --- the three encoders ------------------------------------------------------------------

    def encode_rgb(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) normalised images -> (B, C, S/32, S/32) RGB features."""
        _check_images(images)
        return self.encoder.forward_features(images)

    def encode_depth(self, depth: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The self-attended DM branch.

        Args:
            depth: (B, 1, S, S) normalised depth (:func:`normalize_depth`).
        Returns:
            (B, C, S/32, S/32) features and the five attention maps (B, 1, h, w) (after
            conv1, layer1, ..., layer4), for :meth:`encode_fusion`.
        """
        if depth.dim() != 4 or depth.shape[1] != 1 or not depth.is_floating_point():
            raise ValueError(f"depth must be a float tensor (B, 1, S, S) (normalize_depth); got "
                             f"{tuple(depth.shape)} {depth.dtype}")
        enc = self.depth_encoder
        f = _stem(enc, depth)
        att = [depth_attention(f)]
        f = enc.maxpool(att[0] * f)
        for stage in _stages(enc):
            f = stage(f)
            att.append(depth_attention(f))
            f = att[-1] * f
        return f, att

    def encode_fusion(self, images: Tensor, attention: list[Tensor],
                      detach_attention: bool = True) -> Tensor:
        """The fusion branch: RGB convolutions, own BN, re-weighted by the DM attention.

        Args:
            images: (B, 3, S, S) normalised images.
            attention: the five maps of :meth:`encode_depth` for the same samples.
            detach_attention: stop the gradient into the attention (the paper's SG).
        Returns:
            (B, C, S/32, S/32) fused features.
        """
        _check_images(images)
        if len(attention) != 5:
            raise ValueError(f"attention must hold the 5 maps of encode_depth; got "
                             f"{len(attention)}")
        att = [a.detach() for a in attention] if detach_attention else attention
        enc = self.fusion_encoder
        f = enc.maxpool(att[0] * _stem(enc, images))
        for stage, a in zip(_stages(enc), att[1:], strict=True):
            f = a * stage(f)
        return f

    def decode(self, fmap: Tensor, input_hw: tuple[int, int]) -> dict[str, Tensor]:
        """The shared decoder on any branch's features (see :class:`MultiModalHead`)."""
        return self.head(fmap, input_hw)  # type: ignore[no-any-return]

    def project(self, fmap: Tensor, modality: str = "rgb") -> Tensor:
        """Pooled features -> (B, proj_dim) L2-normalised contrastive features.

        Args:
            fmap: (B, C, h, w) features of a branch.
            modality: "rgb" (RGB and fusion branches) or "depth".
        """
        if modality not in ("rgb", "depth"):
            raise ValueError(f"modality must be 'rgb' or 'depth'; got {modality!r}")
        proj = self.projection if modality == "rgb" else self.depth_projection
        return proj(self.encoder.pool(fmap))  # type: ignore[no-any-return]


def _hw(images: Tensor) -> tuple[int, int]:
    return int(images.shape[-2]), int(images.shape[-1])


def rgb_branch(model: DualModalityNet) -> PoseNet:
    """The RGB branch as a :class:`~.posenet.PoseNet` sharing ``model``'s modules.

    Its state dict holds the ``encoder.*`` and ``head.*`` entries of ``model``: it is the
    ``posenet_resnetN_multimodal`` network of the registry (save it with that arch).
    """
    if not isinstance(model, DualModalityNet):
        raise ValueError(f"model must be a DualModalityNet; got {type(model).__name__}")
    return PoseNet(model.encoder, model.head)


def upsample_depth(depth: Tensor, size: int) -> Tensor:
    """(B, h, w) decoder depth -> (B, 1, size, size) network input, clipped to [-1, 1]."""
    return F.interpolate(depth[:, None], size=(size, size), mode="bilinear",
                         align_corners=False).clamp(-1.0, 1.0)

