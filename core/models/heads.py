"""Network heads: 2.5D pose (regression or integral heatmaps), root refinement, projection.

Pose heads share one contract so :class:`~.posenet.PoseNet` can use either::

    head(fmap: (B, C, h, w), input_hw: (H, W)) -> {
        "uv":         (B, J, 2) pixels in the input image (x right, y down; pixel centres at
                      integers as in OpenCV and handpose.core.geometry, so the image spans
                      [-0.5, W - 0.5] and its centre is ((W - 1) / 2, (H - 1) / 2)),
        "z_rel":      (B, J) root-relative depth / reference bone length,
        "confidence": (B, J) in (0, 1],
        ... head-specific extras ("uv_error" or "heatmaps")
    }
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..skeleton import NUM_JOINTS

__all__ = [
    "RegressionHead25D",
    "HeatmapHead25D",
    "RootRefiner",
    "ProjectionHead",
    "soft_argmax_25d",
    "DEFAULT_ERROR_SCALE",
]

#: Predicted 2D error (fraction of the crop side) at which confidence is exp(-1) ~ 0.37:
#: 5 % of a 128 px crop is 6.4 px. *(choose)* — a head kwarg.
DEFAULT_ERROR_SCALE = 0.05


def _check_fmap(fmap: Tensor, channels: int) -> None:
    if fmap.dim() != 4 or fmap.shape[1] != channels:
        raise ValueError(
            f"fmap must have shape (B, {channels}, h, w); got {tuple(fmap.shape)}"
        )


class RegressionHead25D(nn.Module):
    """Global pooled feature -> J x (u, v, z_rel) and a per-joint confidence.

    The linear layer predicts coordinates normalised by the input size and centred on the
    image centre (u = (0.5 + o_u) * W - 0.5, so o_u = -0.5 / +0.5 are the left / right image
    edges), so a zero-initialised output is the crop centre and
    the same weights work at any input size. A second output, ``uv_error`` = softplus(.),
    is trained (see :func:`handpose.core.losses.pose.confidence_loss`) to predict the
    detached per-joint 2D error as a fraction of the crop side; confidence =
    exp(-uv_error / error_scale), in (0, 1].

    Args:
        in_channels: feature channels of the encoder.
        num_joints: J (21).
        hidden: 0 for a linear head (PeCLR fine-tuning); > 0 for a 2-layer MLP
            (Linear, BN, ReLU, Linear) as in frozen-encoder evaluation.
        error_scale: see :data:`DEFAULT_ERROR_SCALE`.
    """

    def __init__(self, in_channels: int, num_joints: int = NUM_JOINTS, hidden: int = 0,
                 error_scale: float = DEFAULT_ERROR_SCALE) -> None:
        super().__init__()
        if error_scale <= 0:
            raise ValueError(f"error_scale must be > 0; got {error_scale}")
        self.in_channels = in_channels
        self.num_joints = num_joints
        self.error_scale = float(error_scale)
        self.trunk: nn.Module = nn.Identity()
        feat = in_channels
        if hidden > 0:
            self.trunk = nn.Sequential(
                nn.Linear(in_channels, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)
            )
            feat = hidden
        self.pose = nn.Linear(feat, num_joints * 3)
        self.error = nn.Linear(feat, num_joints)
        nn.init.normal_(self.pose.weight, std=1e-3)
        nn.init.zeros_(self.pose.bias)
        nn.init.normal_(self.error.weight, std=1e-3)
        nn.init.constant_(self.error.bias, -2.0)  # softplus(-2) ~ 0.13 of the crop at start

    def forward(self, fmap: Tensor, input_hw: tuple[int, int]) -> dict[str, Tensor]:
        _check_fmap(fmap, self.in_channels)
        feat = self.trunk(fmap.mean(dim=(2, 3)))
        out = self.pose(feat).view(-1, self.num_joints, 3)
        size = fmap.new_tensor([float(input_hw[1]), float(input_hw[0])])
        uv = (out[..., :2] + 0.5) * size - 0.5
        uv_error = F.softplus(self.error(feat))
        return {
            "uv": uv,
            "z_rel": out[..., 2],
            "uv_error": uv_error,
            "confidence": torch.exp(-uv_error / self.error_scale),
        }


class HeatmapHead25D(nn.Module):
    """Integral-regression head: deconvolutions -> J heatmaps + J depth maps, soft-argmax.

    Each deconvolution (4x4, stride 2) + BN + ReLU doubles the resolution; a 1x1 convolution
    gives 2J maps. The heatmap logits, times ``beta``, go through a spatial softmax P;
    uv = sum P * pixel centre (in input pixels), z_rel = sum P * depth map. Confidence is the
    probability mass in the 3x3 neighbourhood of the peak, in (0, 1].

    Args:
        in_channels: feature channels of the encoder.
        num_joints: J (21).
        channels: channels of the deconvolutions (256 as in SimpleBaseline).
        num_deconv: number of x2 upsamplings (3: stride 32 -> 4, 32x32 maps at 128 px).
        beta: softmax sharpness applied to the logits *(choose)*.
    """

    def __init__(self, in_channels: int, num_joints: int = NUM_JOINTS, channels: int = 256,
                 num_deconv: int = 3, beta: float = 1.0) -> None:
        super().__init__()
        if num_deconv < 0:
            raise ValueError(f"num_deconv must be >= 0; got {num_deconv}")
        self.in_channels = in_channels
        self.num_joints = num_joints
        self.beta = float(beta)
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
        self.final = nn.Conv2d(cin, 2 * num_joints, kernel_size=1)
        nn.init.normal_(self.final.weight, std=1e-3)
        if self.final.bias is not None:
            nn.init.zeros_(self.final.bias)

    def forward(self, fmap: Tensor, input_hw: tuple[int, int]) -> dict[str, Tensor]:
        _check_fmap(fmap, self.in_channels)
        maps = self.final(self.deconv(fmap))
        j = self.num_joints
        return soft_argmax_25d(maps[:, :j], maps[:, j:], input_hw, self.beta)


def soft_argmax_25d(logits: Tensor, depth: Tensor, input_hw: tuple[int, int],
                    beta: float = 1.0) -> dict[str, Tensor]:
    """Integral regression of 2.5D joints from heatmap logits and depth maps.

    Args:
        logits: (B, J, h, w) heatmap logits.
        depth: (B, J, h, w) per-joint z_rel maps.
        input_hw: (H, W) of the network input; the image spans [-0.5, W - 0.5] x
            [-0.5, H - 0.5], heatmap pixel (i, j) covers its part [j W/w, (j+1) W/w) x
            [i H/h, (i+1) H/h) shifted by -0.5, so its centre is ((j + 0.5) W/w - 0.5,
            (i + 0.5) H/h - 0.5) in input pixels.
        beta: softmax sharpness.

    Returns:
        dict "uv" (B, J, 2) input pixels, "z_rel" (B, J), "confidence" (B, J) = probability
        mass of the 3x3 neighbourhood of the peak in (0, 1], "heatmaps" (B, J, h, w)
        probabilities.
    """
    if logits.dim() != 4 or depth.shape != logits.shape:
        raise ValueError(
            f"logits and depth must both have shape (B, J, h, w); got {tuple(logits.shape)} "
            f"and {tuple(depth.shape)}"
        )
    b, j, h, w = logits.shape
    prob = torch.softmax(beta * logits.reshape(b, j, h * w), dim=-1).view(b, j, h, w)
    xs = (torch.arange(w, device=logits.device, dtype=logits.dtype) + 0.5) * (input_hw[1] / w)
    ys = (torch.arange(h, device=logits.device, dtype=logits.dtype) + 0.5) * (input_hw[0] / h)
    xs, ys = xs - 0.5, ys - 0.5
    u = (prob.sum(dim=2) * xs).sum(dim=-1)
    v = (prob.sum(dim=3) * ys).sum(dim=-1)
    z = (prob * depth).sum(dim=(2, 3))
    mass = F.avg_pool2d(prob, 3, stride=1, padding=1, count_include_pad=True) * 9.0
    conf = mass.flatten(2).amax(dim=-1).clamp(min=1e-6, max=1.0)
    return {"uv": torch.stack([u, v], dim=-1), "z_rel": z, "confidence": conf, "heatmaps": prob}


class RootRefiner(nn.Module):
    """Root-depth refinement MLP of Spurr et al. 2020 (METHODS §1).

    Input [21 z_rel, 42 K^-1-normalised xy, Z] (64 values) -> Linear 128, BN, LeakyReLU,
    Linear 128, BN, LeakyReLU, Linear 1; returns Z + correction. Z (the root depth in units
    of the reference bone, i.e. metres / s) is detached and clamped to [z_min, z_max] first.
    """

    def __init__(self, num_joints: int = NUM_JOINTS, hidden: int = 128,
                 z_min: float = 4.0, z_max: float = 50.0) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.z_min, self.z_max = float(z_min), float(z_max)
        n_in = 3 * num_joints + 1
        self.mlp = nn.Sequential(
            nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, z_rel: Tensor, xy: Tensor, z_root: Tensor) -> Tensor:
        """Refine the root depth.

        Args:
            z_rel: (B, J) root-relative depths / s.
            xy: (B, J, 2) K^-1-normalised image coordinates (x/z, y/z).
            z_root: (B,) root depth / s from the closed-form solve.

        Returns:
            (B,) refined root depth / s.
        """
        j = self.num_joints
        b = z_rel.shape[0]
        if z_rel.shape != (b, j) or xy.shape != (b, j, 2) or z_root.shape != (b,):
            raise ValueError(
                f"expected z_rel (B, {j}), xy (B, {j}, 2), z_root (B,); got "
                f"{tuple(z_rel.shape)}, {tuple(xy.shape)}, {tuple(z_root.shape)}"
            )
        z0 = z_root.detach().clamp(self.z_min, self.z_max)
        x = torch.cat([z_rel, xy.reshape(b, 2 * j), z0[:, None]], dim=1)
        return z0 + self.mlp(x)[:, 0]


class ProjectionHead(nn.Module):
    """SimCLR/PeCLR projection g: Linear(feat, 512) + BN + ReLU + Linear(512, 128, no bias).

    ``forward`` returns the L2-normalised (B, out_dim) projection.
    """

    def __init__(self, in_features: int, hidden: int = 512, out_dim: int = 128) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_dim = out_dim
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out_dim, bias=False),
        )

    def forward(self, feat: Tensor) -> Tensor:
        if feat.dim() != 2 or feat.shape[1] != self.in_features:
            raise ValueError(
                f"feat must have shape (B, {self.in_features}); got {tuple(feat.shape)}"
            )
        return F.normalize(self.net(feat), dim=1)
