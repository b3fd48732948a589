"""Cross-modal VAE with a product of Gaussian experts (dissertation ch. 5; METHODS §7).

Encoders map each modality to a diagonal Gaussian q(z | x) over a shared latent space:

- RGB: a ResNet (18 in the paper) + 2 fully connected layers -> (mu, logvar);
- point cloud: a PointNet-style encoder (shared per-point MLP, max-pool, 2 FC) -> (mu, logvar).

Shared decoders read any z: the root-relative 3D pose (4 FC layers of 128 units), the J 2D
heatmaps (a DC-GAN-style transposed-convolution stack; soft-argmax gives crop pixels) and the
hand's point cloud (a FoldingNet-style decoder: two folds of a fixed 2D grid conditioned on z).
The joint posterior of several modalities is the product of the experts' Gaussians and the
N(0, I) prior expert (:func:`product_of_experts`).

**The 3D frame.** Poses and clouds are root-relative (the wrist), divided by the reference bone
length s, in the crop's *view frame* (the viewpoint correction of the paper): z along the ray
through the crop centre, x along the crop's +u direction at the centre, y = z x x
(:func:`view_rotation`). This frame turns with the crop, so an in-plane rotation of the crop
is a rotation about z of the targets, and an off-centre crop is not a different pose.

**Inference from RGB alone** uses the posterior mean of the RGB expert. ``forward(images)``
returns the PoseNet contract: ``uv`` (soft-argmax of the decoded heatmaps, crop pixels),
``z_rel`` and ``confidence``, so the network runs in the tracker and exports to ONNX. Without
the crop's K, ``z_rel`` is the view-frame z (equal to the camera-frame z_rel for a crop centred
on the principal point, off by the small view rotation otherwise); ``forward(images, K)`` rotates
into the camera frame exactly. :meth:`CrossModalVAE.reconstruct_points` gives the hand's point
cloud from RGB alone, in metres (camera axes with K, root-relative or placed at a given root).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..skeleton import NUM_JOINTS
from .heads import soft_argmax_25d
from .posenet import _check_images
from .resnet import ResNetEncoder

__all__ = [
    "LOGVAR_RANGE",
    "product_of_experts",
    "kl_standard_normal",
    "view_rotation",
    "PointNetEncoder",
    "PoseDecoder",
    "HeatmapDecoder",
    "FoldingDecoder",
    "CrossModalVAE",
]

#: Log-variances of the experts are clamped to this range (numerical safety of exp()).
LOGVAR_RANGE = (-10.0, 10.0)


def product_of_experts(mu: Tensor, logvar: Tensor, prior: bool = True) -> tuple[Tensor, Tensor]:
    """Product of diagonal Gaussian experts (dissertation eq. 5.5).

    ``T_i = 1 / sigma_i^2``, ``mu = sum_i mu_i T_i / sum_i T_i``, ``sigma^2 = 1 / sum_i T_i``,
    element-wise; with ``prior`` the N(0, I) expert (mu 0, T 1) is one of the factors.

    Args:
        mu, logvar: (E, B, D) means and log-variances of E experts.
        prior: include the N(0, I) prior expert.
    Returns:
        (mu (B, D), logvar (B, D)) of the product.
    """
    if mu.dim() != 3 or logvar.shape != mu.shape or (mu.shape[0] < 1 and not prior):
        raise ValueError(f"mu and logvar must both be (E, B, D) with E >= 1 (or prior); got "
                         f"{tuple(mu.shape)} and {tuple(logvar.shape)}")
    precision = torch.exp(-logvar.clamp(*LOGVAR_RANGE))
    num = (mu * precision).sum(0)
    den = precision.sum(0)
    if prior:
        den = den + 1.0
    var = 1.0 / den
    return num * var, torch.log(var)


def kl_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample: (B, D) -> (B,), in nats."""
    if mu.shape != logvar.shape or mu.dim() != 2:
        raise ValueError(f"mu and logvar must both be (B, D); got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")
    return 0.5 * (torch.exp(logvar) + mu * mu - 1.0 - logvar).sum(1)


def view_rotation(K: Tensor, size: int) -> Tensor:
    """Rotation from the camera frame to the crop's view frame (module docstring).

    Args:
        K: (B, 3, 3) intrinsics of the crop (crop pixels; may include an in-plane rotation).
        size: crop side S in pixels (the centre is pixel ((S - 1) / 2, (S - 1) / 2)).
    Returns:
        (B, 3, 3) R with rows x, y, z of the view frame in camera coordinates:
        ``p_view = R @ p_cam``. Identity for a centred, unrotated K.
    """
    if K.dim() != 3 or K.shape[1:] != (3, 3):
        raise ValueError(f"K must have shape (B, 3, 3); got {tuple(K.shape)}")
    c = (size - 1) / 2.0
    pix = K.new_tensor([[c, c, 1.0], [c + 1.0, c, 1.0]])  # centre, one pixel to the right
    rays = torch.linalg.solve(K, pix.T.expand(K.shape[0], 3, 2))  # (B, 3, 2)
    z = F.normalize(rays[:, :, 0], dim=1)
    dx = rays[:, :, 1] - rays[:, :, 0]
    x = F.normalize(dx - (dx * z).sum(1, keepdim=True) * z, dim=1)
    y = torch.cross(z, x, dim=1)
    return torch.stack([x, y, z], dim=1)


def _clamp(logvar: Tensor) -> Tensor:
    return logvar.clamp(*LOGVAR_RANGE)


class PointNetEncoder(nn.Module):
    """PointNet-style cloud encoder: per-point MLP (1x1 conv + BN + ReLU), max-pool, 2 FC.

    Args:
        latent: D. width: channels of the first per-point layer (x1, x2, x4 in the three
            layers). in_dim: coordinates per point (3).

    ``forward(points (B, N, 3)) -> (mu (B, D), logvar (B, D))``; order-invariant.
    """

    def __init__(self, latent: int = 64, width: int = 64, in_dim: int = 3) -> None:
        super().__init__()
        chans = [in_dim, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv1d(a, b, 1, bias=False), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        self.mlp = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.fc = nn.Sequential(nn.Linear(4 * width, 2 * width), nn.ReLU(inplace=True),
                                nn.Linear(2 * width, 2 * latent))

    def forward(self, points: Tensor) -> tuple[Tensor, Tensor]:
        if points.dim() != 3 or points.shape[2] != self.in_dim or points.shape[1] < 1:
            raise ValueError(f"points must have shape (B, N, {self.in_dim}) with N >= 1; got "
                             f"{tuple(points.shape)}")
        feat = self.mlp(points.transpose(1, 2)).amax(dim=2)
        mu, logvar = self.fc(feat).chunk(2, dim=1)
        return mu, _clamp(logvar)


class PoseDecoder(nn.Module):
    """z -> root-relative 3D joints (B, J, 3): 4 fully connected layers of ``hidden`` units
    (the last one linear); the root joint is exactly 0."""

    def __init__(self, latent: int = 64, hidden: int = 128, num_joints: int = NUM_JOINTS
                 ) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.net = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, 3 * num_joints),
        )

    def forward(self, z: Tensor) -> Tensor:
        p = self.net(z).view(-1, self.num_joints, 3)
        return p - p[:, :1]


class HeatmapDecoder(nn.Module):
    """DC-GAN-style decoder: z -> Linear -> (C, 4, 4) -> n x (ConvT 4x4/2 + BN + ReLU) ->
    3x3 conv -> (B, J, size, size) heatmap logits.

    Args:
        latent: D. size: heatmap side, 4 * 2^n (e.g. 32 for a 128-px crop at stride 4).
        channels: channels after the linear layer (halved by each upsampling, at least 16).
        num_joints: J.
    """

    def __init__(self, latent: int = 64, size: int = 32, channels: int = 256,
                 num_joints: int = NUM_JOINTS) -> None:
        super().__init__()
        n = int(round(math.log2(size / 4))) if size >= 4 else -1
        if n < 0 or 4 * 2 ** n != size:
            raise ValueError(f"heatmap size must be 4 * 2^n pixels; got {size}")
        self.size, self.channels = size, channels
        self.fc = nn.Sequential(nn.Linear(latent, channels * 16), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        cin = channels
        for _ in range(n):
            cout = max(16, cin // 2)
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.up = nn.Sequential(*layers)
        self.final = nn.Conv2d(cin, num_joints, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        x = self.fc(z).view(-1, self.channels, 4, 4)
        return self.final(self.up(x))  # type: ignore[no-any-return]


class FoldingDecoder(nn.Module):
    """FoldingNet-style decoder: z -> (B, M, 3) points, M = grid * grid.

    A fixed square grid in [-1, 1]^2 is folded twice: ``p1 = MLP1([z, g])``,
    ``p = MLP2([z, p1])`` (each MLP: 3 layers, ReLU between), shared over the points.
    """

    def __init__(self, latent: int = 64, grid: int = 16, hidden: int = 256) -> None:
        super().__init__()
        if grid < 2:
            raise ValueError(f"grid must be >= 2 points per side; got {grid}")
        lin = torch.linspace(-1.0, 1.0, grid)
        g = torch.stack(torch.meshgrid(lin, lin, indexing="ij"), -1).view(-1, 2)
        self.register_buffer("grid", g, persistent=False)
        self.num_points = grid * grid

        def mlp(cin: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(cin, hidden, 1), nn.ReLU(inplace=True),
                                 nn.Conv1d(hidden, hidden, 1), nn.ReLU(inplace=True),
                                 nn.Conv1d(hidden, 3, 1))

        self.fold1 = mlp(latent + 2)
        self.fold2 = mlp(latent + 3)

    def forward(self, z: Tensor) -> Tensor:
        b, m = z.shape[0], self.num_points
        zz = z[:, :, None].expand(b, z.shape[1], m)
        grid: Tensor = self.grid  # type: ignore[assignment]
        g = grid.to(z).T[None].expand(b, 2, m)
        p1 = self.fold1(torch.cat([zz, g], 1))
        return self.fold2(torch.cat([zz, p1], 1)).transpose(1, 2)  # type: ignore[no-any-return]


class CrossModalVAE(nn.Module):
    """RGB and point-cloud encoders, shared pose / heatmap / point-cloud decoders.

    Args:
        depth, width: the RGB ResNet (depth 18 in the paper).
        latent: D (64 in the paper).
        rgb_hidden: width of the first of the two FC layers after the ResNet.
        point_width: first per-point width of the PointNet encoder.
        pose_hidden: units of the pose decoder's layers (128).
        heatmap_size: side of the decoded heatmaps (input size / 4 is natural).
        heatmap_channels: channels of the heatmap decoder's first map.
        grid: the folding decoder reconstructs grid^2 points.
        fold_hidden: width of the folding MLPs.
        beta: softmax sharpness of the heatmap soft-argmax.
    """

    def __init__(self, depth: int = 18, width: int = 64, latent: int = 64,
                 rgb_hidden: int = 512, point_width: int = 64, pose_hidden: int = 128,
                 heatmap_size: int = 32, heatmap_channels: int = 256, grid: int = 16,
                 fold_hidden: int = 256, beta: float = 10.0) -> None:
        super().__init__()
        if latent < 1 or rgb_hidden < 1:
            raise ValueError(f"latent and rgb_hidden must be >= 1; got {latent}, {rgb_hidden}")
        self.latent = latent
        self.beta = float(beta)
        self.encoder = ResNetEncoder(depth, width=width)
        self.rgb_head = nn.Sequential(nn.Linear(self.encoder.feature_dim, rgb_hidden),
                                      nn.ReLU(inplace=True), nn.Linear(rgb_hidden, 2 * latent))
        self.point_encoder = PointNetEncoder(latent, point_width)
        self.pose_decoder = PoseDecoder(latent, pose_hidden)
        self.heatmap_decoder = HeatmapDecoder(latent, heatmap_size, heatmap_channels)
        self.point_decoder = FoldingDecoder(latent, grid, fold_hidden)

    def encode_rgb(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, S, S) normalised images -> (mu, logvar) (B, D) of q(z | RGB)."""
        _check_images(images)
        mu, logvar = self.rgb_head(self.encoder(images)).chunk(2, dim=1)
        return mu, _clamp(logvar)

    def encode_points(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """(B, N, 3) clouds (view frame, root-relative, units of s) -> q(z | cloud)."""
        return self.point_encoder(points)  # type: ignore[no-any-return]

    def decode(self, z: Tensor, input_hw: tuple[int, int], points: bool = True
               ) -> dict[str, Tensor]:
        """Decode latents.

        Args:
            z: (B, D) latents.
            input_hw: (H, W) of the crop the heatmaps cover (for ``uv`` in its pixels).
            points: also decode the point cloud.
        Returns:
            "pose3d" (B, J, 3) view frame, root-relative, units of s; "heatmap_logits"
            (B, J, h, w); "heatmaps" (B, J, h, w) probabilities; "uv" (B, J, 2) crop pixels;
            "confidence" (B, J); with ``points`` "points" (B, M, 3) (view frame, units of s).
        """
        if z.dim() != 2 or z.shape[1] != self.latent:
            raise ValueError(f"z must have shape (B, {self.latent}); got {tuple(z.shape)}")
        logits = self.heatmap_decoder(z)
        hm = soft_argmax_25d(logits, torch.zeros_like(logits), input_hw, self.beta)
        out = {"pose3d": self.pose_decoder(z), "heatmap_logits": logits,
               "heatmaps": hm["heatmaps"], "uv": hm["uv"], "confidence": hm["confidence"]}
        if points:
            out["points"] = self.point_decoder(z)
        return out

    def forward(self, images: Tensor, K: Tensor | None = None) -> dict[str, Tensor]:
        """RGB alone -> the PoseNet contract (posterior mean of the RGB expert).

        Args:
            images: (B, 3, S, S) normalised crops.
            K: optional (B, 3, 3) crop intrinsics: rotate the pose into camera axes for z_rel.
        Returns:
            "uv" (B, 21, 2) crop pixels, "z_rel" (B, 21), "confidence" (B, 21), "pose3d"
            (B, 21, 3) view frame, units of s, "heatmaps" (B, 21, h, w).
        """
        mu, _ = self.encode_rgb(images)
        hw = (int(images.shape[-2]), int(images.shape[-1]))
        out = self.decode(mu, hw, points=False)
        pose = out["pose3d"]
        if K is not None:
            if K.shape != (images.shape[0], 3, 3):
                raise ValueError(f"K must have shape ({images.shape[0]}, 3, 3); got "
                                 f"{tuple(K.shape)}")
            pose = pose @ view_rotation(K.to(pose), hw[0])  # rows: R^T p
        out["z_rel"] = pose[..., 2]
        return out

    @torch.no_grad()
    def reconstruct_points(self, images: Tensor, scale: Tensor | float = 0.03,
                           K: Tensor | None = None, root: Tensor | None = None) -> Tensor:
        """The hand's point cloud from RGB alone, in metres.

        Args:
            images: (B, 3, S, S) normalised crops (the model's mode is the caller's).
            scale: reference bone length s in metres, a float or (B,) (default 3 cm, an
                adult hand).
            K: optional (B, 3, 3) crop intrinsics: points in camera axes; without it, in the
                crop's view frame (z along the ray through the crop centre).
            root: optional (B, 3) wrist position in metres (camera frame, needs ``K``): the
                points are placed there; otherwise they are relative to the wrist.
        Returns:
            (B, M, 3) metres.
        """
        mu, _ = self.encode_rgb(images)
        pts = self.point_decoder(mu)
        s = torch.as_tensor(scale, dtype=pts.dtype, device=pts.device).reshape(-1)
        if s.numel() not in (1, pts.shape[0]) or not bool((s > 0).all()):
            raise ValueError(f"scale must be a positive float or ({pts.shape[0]},) metres; got "
                             f"{tuple(s.shape)}")
        pts = pts * s.view(-1, 1, 1)
        if K is not None:
            pts = pts @ view_rotation(K.to(pts), int(images.shape[-1]))
        if root is not None:
            if K is None or root.shape != (pts.shape[0], 3):
                raise ValueError(f"root must be ({pts.shape[0]}, 3) metres and needs K; got "
                                 f"{tuple(root.shape)}, K {'given' if K is not None else 'None'}")
            pts = pts + root.to(pts)[:, None]
        return pts
