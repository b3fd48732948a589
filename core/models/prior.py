"""Pose prior: a variational auto-encoder over hand poses (Wan et al. 2019, METHODS §6).

The VAE models the 41 sphere centres (``num_points=41``, input 123 = 41 x 3, the paper's
choice) or the 21 joints (``num_points=21``, input 63) of one hand. Trained beforehand on
sampled feasible poses (``handpose-train prior``) and then frozen, its negative evidence lower
bound (:meth:`PoseVAE.prior_loss`) is the L_vae term of the self-supervised fitting loss.

Architecture (METHODS §6): encoder ``D -> hidden -> hidden -> (mu, logvar)`` in R^latent
(defaults 256 and 32) with ReLU, decoder ``latent -> hidden -> hidden -> D`` (mirror).

Normalisation (:func:`canonical_pose`), applied inside the model so callers pass metres in any
frame:

1. **Joints.** For sphere centres the 21 joints are recovered by least squares,
   ``J = pinv(W) C`` with ``W`` the (41, 21) ``sphere_weights`` of the hand model (rank 21,
   exact for centres placed by :func:`~handpose.core.spheres.spheres_from_joints`).
2. **Root.** The wrist ``J_0`` is the origin.
3. **Rotation** (``canonical_rotation=True``). The palm frame of the hand model's rest pose:
   ``y`` = normalise(middle MCP - wrist), ``z`` = normalise((index MCP - pinky MCP) x y)
   (volar for a right hand), ``x = y x z`` (towards the thumb). Points are expressed in it, so
   the prior sees articulation only, never the viewpoint. Left hands must be mirrored
   (x negated) before, as everywhere in the project.
4. **Scale.** Divided by the pose's mean metacarpal length ``mean_f |J_f - J_0|`` over the
   four finger MCPs f = 5, 9, 13, 17 (about 8 cm for an adult hand): invariant to hand size and
   to finger articulation (a fist and an open hand of one person get the same scale).

All steps are differentiable, so the prior's gradient reaches the pose.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn

from ..handmodel import load_hand_model
from ..skeleton import NUM_JOINTS

__all__ = ["PoseVAE", "canonical_pose", "joints_from_spheres", "prior_loss"]

_FINGER_MCPS = (5, 9, 13, 17)
_EPS = 1e-12  # square metres (or unit^2 for directions): keeps sqrt differentiable at 0


@lru_cache(maxsize=1)
def _sphere_pinv() -> np.ndarray:
    """(21, 41) float64 pseudo-inverse of the shipped model's sphere weights."""
    return np.linalg.pinv(load_hand_model().sphere_weights.astype(np.float64))


def joints_from_spheres(centres: torch.Tensor) -> torch.Tensor:
    """Least-squares joints of 41 sphere centres: ``J = pinv(W) C`` (exact on the model).

    Args:
        centres: (..., 41, 3) metres.
    Returns:
        (..., 21, 3) metres, same frame, differentiable.
    """
    if not isinstance(centres, torch.Tensor) or centres.ndim < 2 or \
            tuple(centres.shape[-2:]) != (41, 3):
        raise ValueError(f"centres must be a tensor (..., 41, 3) metres; got "
                         f"{tuple(getattr(centres, 'shape', ()))}")
    pinv = torch.as_tensor(_sphere_pinv(), dtype=centres.dtype, device=centres.device)
    return pinv @ centres


def _check_points(points: object) -> torch.Tensor:
    if not isinstance(points, torch.Tensor) or not points.is_floating_point():
        raise ValueError(f"points must be a floating tensor (B, 21 or 41, 3) metres; got "
                         f"{type(points).__name__}")
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[1] not in (NUM_JOINTS, 41):
        raise ValueError(f"points must have shape (B, 21, 3) joints or (B, 41, 3) sphere "
                         f"centres, metres; got {tuple(points.shape)}")
    return points


def canonical_pose(points: torch.Tensor, canonical_rotation: bool = True) -> torch.Tensor:
    """Root-relative, scale-normalised (and optionally rotation-normalised) pose.

    See the module docstring for the exact normalisation.

    Args:
        points: (B, 21, 3) joints or (B, 41, 3) sphere centres, metres, any rigid frame.
        canonical_rotation: express the points in the hand's palm frame.
    Returns:
        (B, N, 3) unitless (metacarpal lengths), N as the input.
    Raises:
        ValueError: a wrong shape.
    """
    p = _check_points(points)
    joints = p if p.shape[1] == NUM_JOINTS else joints_from_spheres(p)
    wrist = joints[:, :1]
    mcps = joints[:, list(_FINGER_MCPS)] - wrist
    scale = torch.sqrt((mcps * mcps).sum(-1) + _EPS).mean(-1)  # (B,)
    rel = p - wrist
    if canonical_rotation:
        y = mcps[:, 1]
        y = y / torch.sqrt((y * y).sum(-1, keepdim=True) + _EPS)
        across = mcps[:, 0] - mcps[:, 3]
        z = torch.linalg.cross(across, y)
        z = z / torch.sqrt((z * z).sum(-1, keepdim=True) + _EPS)
        x = torch.linalg.cross(y, z)
        frame = torch.stack([x, y, z], -1)  # (B, 3, 3), columns x, y, z
        rel = rel @ frame
    return rel / scale[:, None, None]


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class PoseVAE(nn.Module):
    """VAE over normalised hand poses (see the module docstring).

    Args:
        num_points: 41 (sphere centres, input 123) or 21 (joints, input 63).
        hidden: width of the two hidden layers (256 in METHODS §6).
        latent: latent dimension (32).
        sigma: standard deviation of the Gaussian decoder in normalised units (metacarpal
            lengths; 0.05 is about 4 mm for an adult hand) *(choose)*.
        beta: weight of the KL term in the ELBO (1 = the standard ELBO).
        canonical_rotation: normalise the rotation (palm frame) before encoding.
    """

    def __init__(self, num_points: int = 41, hidden: int = 256, latent: int = 32,
                 sigma: float = 0.05, beta: float = 1.0, canonical_rotation: bool = True) -> None:
        super().__init__()
        if num_points not in (NUM_JOINTS, 41):
            raise ValueError(f"num_points must be 21 (joints) or 41 (spheres); got {num_points}")
        if hidden < 1 or latent < 1:
            raise ValueError(f"hidden and latent must be >= 1; got {hidden}, {latent}")
        if not sigma > 0 or not beta >= 0:
            raise ValueError(f"need sigma > 0 and beta >= 0; got sigma={sigma}, beta={beta}")
        self.num_points = num_points
        self.latent = latent
        self.sigma = float(sigma)
        self.beta = float(beta)
        self.canonical_rotation = canonical_rotation
        dim = 3 * num_points
        self.encoder = _mlp([dim, hidden, hidden, 2 * latent])
        self.decoder = _mlp([latent, hidden, hidden, dim])

    def normalize(self, points: torch.Tensor) -> torch.Tensor:
        """(B, 21|41, 3) metres -> (B, 3 * num_points) normalised (joints are turned into
        sphere centres with the shipped model when the prior is over spheres)."""
        p = _check_points(points)
        if self.num_points == 41 and p.shape[1] == NUM_JOINTS:
            w = torch.tensor(load_hand_model().sphere_weights, dtype=p.dtype,
                                device=p.device)
            p = w @ p
        if self.num_points == NUM_JOINTS and p.shape[1] == 41:
            p = joints_from_spheres(p)
        return canonical_pose(p, self.canonical_rotation).flatten(1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (B, D) -> mu, logvar (B, latent); logvar clamped to [-12, 8]."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent) -> normalised (B, D) pose."""
        return self.decoder(z)

    def forward(self, points: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encode, sample (training mode; the mean in eval mode), decode.

        Args:
            points: (B, 21|41, 3) metres.
        Returns:
            ``x`` (B, D) normalised input, ``recon`` (B, D), ``mu`` / ``logvar`` (B, latent),
            ``nll`` (B,) reconstruction term ``|x - recon|^2 / (2 sigma^2)`` (nats up to a
            constant), ``kl`` (B,) nats, ``loss`` (B,) = ``nll + beta kl`` (negative ELBO).
        """
        x = self.normalize(points)
        mu, logvar = self.encode(x)
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        recon = self.decode(z)
        nll = ((recon - x) ** 2).sum(-1) / (2.0 * self.sigma**2)
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(-1)
        return {"x": x, "recon": recon, "mu": mu, "logvar": logvar, "nll": nll, "kl": kl,
                "loss": nll + self.beta * kl}

    def prior_loss(self, points: torch.Tensor) -> torch.Tensor:
        """The frozen L_vae term: the negative ELBO per pose, deterministic (z = mu).

        Gradients flow to ``points`` (the weights should be frozen with
        ``requires_grad_(False)``; this method does not change the module's mode).

        Args:
            points: (B, 41, 3) sphere centres or (B, 21, 3) joints, metres, any rigid frame.
        Returns:
            (B,) nats (up to the decoder's constant).
        """
        x = self.normalize(points)
        mu, logvar = self.encode(x)
        recon = self.decode(mu)
        nll = ((recon - x) ** 2).sum(-1) / (2.0 * self.sigma**2)
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(-1)
        return nll + self.beta * kl


def prior_loss(vae: PoseVAE, points: torch.Tensor) -> torch.Tensor:
    """Functional form of :meth:`PoseVAE.prior_loss`: (B, 21|41, 3) metres -> (B,) nats."""
    if not isinstance(vae, PoseVAE):
        raise ValueError(f"vae must be a PoseVAE; got {type(vae).__name__}")
    return vae.prior_loss(points)
