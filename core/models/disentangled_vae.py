"""Disentangled VAE (dVAE) of hand crops: a pose factor and an image-content factor.

Yang & Yao, "Disentangling Latent Hands for Image Synthesis and Pose Estimation" (CVPR 2019;
the dissertation's chapter 4). The latent ``z = [z_pose, z_content]`` is split by construction:

- ``pose_encoder``   q(z_pose | y): the crop's 2.5D pose ``y`` as a 63-vector
  (:func:`pose_to_vector`), ``layers`` fully connected layers of ``hidden`` units (chapter:
  six layers of 512), Gaussian output.
- ``content_encoder`` q(z_content | x): a ResNet on the image (chapter: ResNet-18). Content
  (background, skin tone, lighting) has no label here: the chapter's "additional z_u" variant
  (Fig. 4.2b, Alg. 4.2), z_u encoded from the image itself.
- ``image_encoder``  q(z | x): a ResNet giving the whole z (the embedding step, Eq. 4.4).
- ``image_decoder``  p(x | z): the DCGAN generator (4x4 transposed convolutions, stride 2,
  BN + ReLU, sigmoid output in [0, 1]) at ``image_size``.
- ``pose_decoder``   p(y | z_pose): mirror of the pose encoder. It reads z_pose only, so
  p(y | z_pose, z_u) = p(y | z_pose) holds by construction (the chapter trains the pose decoder
  with random z_u for that, Alg. 4.2 lines 7-12).
- ``pose_error``: Linear(z_pose -> 21) + softplus, the per-joint 2D error in crop sides, for a
  confidence as :class:`~.heads.RegressionHead25D` gives (not in the chapter; the project's
  estimator needs one).

``forward(images)`` is the chapter's pose-estimation inference (Fig. 4.3 right): the image
encoder's mean z_pose through the pose decoder, returned in the PoseNet contract ("uv",
"z_rel", "confidence", "uv_error"), so the model evaluates, exports and tracks like any PoseNet.
Images given to the encoders are normalised (:func:`~.normalization.normalize_images`); the
decoder returns [0, 1] RGB. The objective is in :mod:`.disentangled_vae_loss`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..skeleton import NUM_JOINTS
from .heads import DEFAULT_ERROR_SCALE
from .resnet import ResNetEncoder

__all__ = [
    "POSE_VECTOR_DIM",
    "Z_REL_UNIT",
    "LOGVAR_INIT",
    "Gaussian",
    "DisentangledVAE",
    "ImageDecoder",
    "pose_to_vector",
    "vector_to_pose",
    "interpolate",
]

#: Length of the pose vector y: 21 joints x (u, v, z_rel).
POSE_VECTOR_DIM = 3 * NUM_JOINTS
#: z_rel is multiplied by this in y, so one unit of y is about the same length in 2D and depth:
#: a hand spans ~6 reference bones in 3D and ~2/3 of the crop side in 2D *(choose)*.
Z_REL_UNIT = 0.1
_LOGVAR_RANGE = (-12.0, 8.0)
#: Initial log-variance of every posterior (sigma ~ 0.14): training starts close to an
#: auto-encoder instead of drowning the codes in unit noise, which the KL terms then widen
#: *(choose; measured to speed up the first few hundred updates)*.
LOGVAR_INIT = -4.0


class Gaussian(NamedTuple):
    """A diagonal Gaussian posterior: ``mu``, ``logvar`` (B, D)."""

    mu: Tensor
    logvar: Tensor

    def sample(self) -> Tensor:
        """Reparameterised draw mu + sigma * eps (B, D) (torch's global RNG)."""
        return self.mu + torch.exp(0.5 * self.logvar) * torch.randn_like(self.mu)

    def kl(self, other: Gaussian | None = None) -> Tensor:
        """KL(self || other) per sample (B,), summed over D; ``other`` None = N(0, I).

        Computed in float32 at least (the exponentials overflow in float16)."""
        dt = torch.promote_types(self.mu.dtype, torch.float32)
        mu, lv = self.mu.to(dt), self.logvar.to(dt)
        if other is None:
            return 0.5 * (mu.pow(2) + lv.exp() - 1.0 - lv).sum(-1)
        mu2, lv2 = other.mu.to(dt), other.logvar.to(dt)
        d2 = (mu - mu2).pow(2) / lv2.exp()
        return 0.5 * ((lv - lv2).exp() + d2 - 1.0 - (lv - lv2)).sum(-1)

    def part(self, start: int, stop: int) -> Gaussian:
        """The factor of dimensions [start, stop)."""
        return Gaussian(self.mu[:, start:stop], self.logvar[:, start:stop])


def _check_pose(uv: Tensor, z_rel: Tensor) -> None:
    b = uv.shape[0] if uv.dim() else 0
    if uv.shape != (b, NUM_JOINTS, 2) or z_rel.shape != (b, NUM_JOINTS):
        raise ValueError(f"uv must be (B, {NUM_JOINTS}, 2) crop pixels and z_rel (B, "
                         f"{NUM_JOINTS}); got {tuple(uv.shape)} and {tuple(z_rel.shape)}")


def pose_to_vector(uv: Tensor, z_rel: Tensor, size: float) -> Tensor:
    """2.5D pose -> the pose modality y of the dVAE.

    Args:
        uv: (B, 21, 2) pixels of a ``size`` x ``size`` crop (pixel centres at integers).
        z_rel: (B, 21) root-relative depth / reference bone length.
        size: crop side in pixels (> 0).
    Returns:
        (B, 63): per joint ((u + 0.5) / size - 0.5, (v + 0.5) / size - 0.5, Z_REL_UNIT z_rel);
        the crop edges are -0.5 and +0.5, its centre 0.
    """
    _check_pose(uv, z_rel)
    if not size > 0:
        raise ValueError(f"size must be > 0 pixels; got {size}")
    o = (uv + 0.5) / size - 0.5
    return torch.cat([o, Z_REL_UNIT * z_rel[..., None]], -1).flatten(1)


def vector_to_pose(y: Tensor, size: float) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pose_to_vector`: (B, 63) -> uv (B, 21, 2) pixels, z_rel (B, 21)."""
    if y.dim() != 2 or y.shape[1] != POSE_VECTOR_DIM:
        raise ValueError(f"y must be (B, {POSE_VECTOR_DIM}); got {tuple(y.shape)}")
    p = y.view(-1, NUM_JOINTS, 3)
    return (p[..., :2] + 0.5) * size - 0.5, p[..., 2] / Z_REL_UNIT


def interpolate(a: Tensor, b: Tensor, steps: int) -> Tensor:
    """Linear latent walk from ``a`` to ``b`` (D,) in ``steps`` >= 2 points: (steps, D)."""
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(f"a and b must be (D,) of one shape; got {tuple(a.shape)}, "
                         f"{tuple(b.shape)}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2; got {steps}")
    t = torch.linspace(0.0, 1.0, steps, device=a.device, dtype=a.dtype)[:, None]
    return (1 - t) * a + t * b


def _mlp(n_in: int, hidden: int, n_out: int, layers: int) -> nn.Sequential:
    sizes = [n_in] + [hidden] * (layers - 1) + [n_out]
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < layers - 1:
            mods.append(nn.ReLU(inplace=True))
    return nn.Sequential(*mods)


def _init_logvar(layer: nn.Linear, latent: int) -> None:
    """Zero mean and LOGVAR_INIT log-variance biases of a (.., 2 latent) Gaussian layer."""
    with torch.no_grad():
        layer.bias.zero_()
        layer.bias[latent:] = LOGVAR_INIT


def _gaussian(out: Tensor) -> Gaussian:
    mu, logvar = out.chunk(2, dim=-1)
    return Gaussian(mu, logvar.clamp(*_LOGVAR_RANGE))


class _ImageGaussianEncoder(nn.Module):
    """ResNet -> global average -> Linear -> (mu, logvar) in R^latent."""

    def __init__(self, depth: int, width: int, latent: int) -> None:
        super().__init__()
        self.backbone = ResNetEncoder(depth, width=width)
        self.head = nn.Linear(self.backbone.feature_dim, 2 * latent)
        nn.init.normal_(self.head.weight, std=1e-3)
        _init_logvar(self.head, latent)

    def forward(self, images: Tensor) -> Gaussian:
        feat = self.backbone.pool(self.backbone.forward_features(images))
        return _gaussian(self.head(feat))


class ImageDecoder(nn.Module):
    """The DCGAN generator: z (B, D) -> images (B, 3, size, size) in [0, 1].

    A 4x4 transposed convolution from 1x1 to 4x4, then ``log2(size / 4)`` stride-2 4x4
    transposed convolutions, each but the last followed by BN + ReLU; channels halve at each
    step from ``min(channels * 2^(n-1), channels * 8)`` down to ``channels``; sigmoid output.

    Args:
        latent: D. size: output side, a power of two >= 8. channels: the last hidden width
            (DCGAN's ngf, 64).
    """

    def __init__(self, latent: int, size: int = 64, channels: int = 64) -> None:
        super().__init__()
        n = int(round(math.log2(size / 4))) if size >= 8 else 0
        if size < 8 or 4 * 2**n != size:
            raise ValueError(f"size must be a power of two >= 8; got {size}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1; got {channels}")
        self.latent, self.size = latent, size
        widths = [min(channels * 2 ** (n - 1 - i), channels * 8) for i in range(n)]
        mods: list[nn.Module] = [
            nn.ConvTranspose2d(latent, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True),
        ]
        for i in range(n - 1):
            mods += [nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, bias=False),
                     nn.BatchNorm2d(widths[i + 1]), nn.ReLU(inplace=True)]
        mods.append(nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent:
            raise ValueError(f"z must be (B, {self.latent}); got {tuple(z.shape)}")
        return torch.sigmoid(self.net(z[:, :, None, None]))


class DisentangledVAE(nn.Module):
    """The dVAE (see the module docstring).

    Args:
        depth, width: ResNet of the two image encoders (18, 64 in the chapter).
        pose_latent, content_latent: dimensions of z_pose and z_content (32 and 32).
        hidden, layers: the pose encoder / decoder MLPs (512 units, 6 layers).
        image_size: side of the decoded images (a power of two; the training crop size).
        decoder_channels: DCGAN's ngf (64).
        error_scale: predicted 2D error (crop sides) at which confidence is exp(-1).
    """

    def __init__(self, depth: int = 18, width: int = 64, pose_latent: int = 32,
                 content_latent: int = 32, hidden: int = 512, layers: int = 6,
                 image_size: int = 64, decoder_channels: int = 64,
                 error_scale: float = DEFAULT_ERROR_SCALE) -> None:
        super().__init__()
        if pose_latent < 1 or content_latent < 1 or hidden < 1 or layers < 2:
            raise ValueError(f"pose_latent, content_latent, hidden must be >= 1 and layers >= 2; "
                             f"got {pose_latent}, {content_latent}, {hidden}, {layers}")
        if error_scale <= 0:
            raise ValueError(f"error_scale must be > 0; got {error_scale}")
        self.pose_latent, self.content_latent = pose_latent, content_latent
        self.latent = pose_latent + content_latent
        self.image_size, self.error_scale = image_size, float(error_scale)
        self.pose_encoder = _mlp(POSE_VECTOR_DIM, hidden, 2 * pose_latent, layers)
        _init_logvar(self.pose_encoder[-1], pose_latent)  # type: ignore[arg-type]
        self.pose_decoder = _mlp(pose_latent, hidden, POSE_VECTOR_DIM, layers)
        self.pose_error = nn.Linear(pose_latent, NUM_JOINTS)
        nn.init.normal_(self.pose_error.weight, std=1e-3)
        nn.init.constant_(self.pose_error.bias, -2.0)
        self.content_encoder = _ImageGaussianEncoder(depth, width, content_latent)
        self.image_encoder = _ImageGaussianEncoder(depth, width, self.latent)
        self.image_decoder = ImageDecoder(self.latent, image_size, decoder_channels)

    # --- checks -------------------------------------------------------------------------------
    @staticmethod
    def _check_images(images: Tensor, name: str = "images") -> None:
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"{name} must be normalised float images (B, 3, S, S); got "
                             f"{tuple(images.shape)} {images.dtype}")

    def _check_latent(self, z: Tensor, dim: int, name: str) -> None:
        if z.dim() != 2 or z.shape[1] != dim:
            raise ValueError(f"{name} must be (B, {dim}); got {tuple(z.shape)}")

    # --- encoders -----------------------------------------------------------------------------
    def encode_pose(self, uv: Tensor, z_rel: Tensor, size: float | None = None) -> Gaussian:
        """q(z_pose | y) of a 2.5D pose: uv (B, 21, 2) pixels of a ``size`` crop (default
        ``image_size``), z_rel (B, 21). Returns a Gaussian over (B, pose_latent)."""
        return self.encode_pose_vector(pose_to_vector(uv, z_rel, float(size or self.image_size)))

    def encode_pose_vector(self, y: Tensor) -> Gaussian:
        """q(z_pose | y) of pose vectors y (B, 63) (:func:`pose_to_vector`)."""
        self._check_latent(y, POSE_VECTOR_DIM, "y")
        return _gaussian(self.pose_encoder(y))

    def encode_content(self, images: Tensor) -> Gaussian:
        """q(z_content | x): normalised images (B, 3, S, S) -> (B, content_latent)."""
        self._check_images(images)
        return self.content_encoder(images)  # type: ignore[no-any-return]

    def encode_image(self, images: Tensor) -> Gaussian:
        """q(z | x): normalised images (B, 3, S, S) -> (B, pose_latent + content_latent)."""
        self._check_images(images)
        return self.image_encoder(images)  # type: ignore[no-any-return]

    def split(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z (B, latent) -> (z_pose (B, pose_latent), z_content (B, content_latent))."""
        self._check_latent(z, self.latent, "z")
        return z[:, :self.pose_latent], z[:, self.pose_latent:]

    # --- decoders -----------------------------------------------------------------------------
    def decode_pose(self, z_pose: Tensor, size: float | None = None) -> dict[str, Tensor]:
        """p(y | z_pose): (B, pose_latent) -> "uv" (B, 21, 2) pixels of a ``size`` crop
        (default ``image_size``), "z_rel" (B, 21), "uv_error" (B, 21) crop sides,
        "confidence" (B, 21) in (0, 1]."""
        self._check_latent(z_pose, self.pose_latent, "z_pose")
        uv, z_rel = vector_to_pose(self.pose_decoder(z_pose), float(size or self.image_size))
        err = F.softplus(self.pose_error(z_pose))
        return {"uv": uv, "z_rel": z_rel, "uv_error": err,
                "confidence": torch.exp(-err / self.error_scale)}

    def decode_image(self, z: Tensor) -> Tensor:
        """p(x | z): (B, latent) -> (B, 3, image_size, image_size) RGB in [0, 1]."""
        self._check_latent(z, self.latent, "z")
        return self.image_decoder(z)  # type: ignore[no-any-return]

    # --- inference ----------------------------------------------------------------------------
    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Pose estimate (PoseNet contract): normalised (B, 3, S, S) -> "uv" (B, 21, 2) pixels
        of the input, "z_rel" (B, 21), "confidence" (B, 21), "uv_error" (B, 21)."""
        z_pose = self.encode_image(images).mu[:, :self.pose_latent]
        return self.decode_pose(z_pose, float(images.shape[-1]))

    def reconstruct(self, images: Tensor) -> Tensor:
        """D_x(E_x(x)) with posterior means: normalised images -> [0, 1] (B, 3, size, size)."""
        return self.decode_image(self.encode_image(images).mu)

    def synthesize(self, uv: Tensor, z_rel: Tensor, content_images: Tensor,
                   size: float | None = None) -> Tensor:
        """An image of a given pose with the content of given images (Fig. 4.3 left).

        Args:
            uv: (B, 21, 2) pixels of a ``size`` crop (default ``image_size``); z_rel (B, 21).
            content_images: (B, 3, S, S) normalised images whose content to use.
        Returns:
            (B, 3, image_size, image_size) RGB in [0, 1] (posterior means, no sampling).
        """
        z_pose = self.encode_pose(uv, z_rel, size).mu
        z_content = self.encode_content(content_images).mu
        if z_pose.shape[0] != z_content.shape[0]:
            raise ValueError(f"uv and content_images must have one batch size; got "
                             f"{z_pose.shape[0]} and {z_content.shape[0]}")
        return self.decode_image(torch.cat([z_pose, z_content], 1))

    def transfer(self, pose_images: Tensor, content_images: Tensor) -> Tensor:
        """Pose transfer: the pose of ``pose_images`` (image encoder, z_pose) with the content
        of ``content_images`` (content encoder), both normalised (B, 3, S, S); returns
        (B, 3, image_size, image_size) in [0, 1]."""
        self._check_images(pose_images, "pose_images")
        if pose_images.shape[0] != content_images.shape[0]:
            raise ValueError(f"pose_images and content_images must have one batch size; got "
                             f"{pose_images.shape[0]} and {content_images.shape[0]}")
        z_pose = self.encode_image(pose_images).mu[:, :self.pose_latent]
        z_content = self.encode_content(content_images).mu
        return self.decode_image(torch.cat([z_pose, z_content], 1))
