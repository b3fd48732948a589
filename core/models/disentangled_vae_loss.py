"""The objective of the disentangled VAE (:class:`~.disentangled_vae.DisentangledVAE`).

The chapter's two evidence lower bounds, trained jointly (Eq. 4.5), in the variant with an
image-encoded content factor z_u (Eq. 4.6, Alg. 4.2) and y the 2.5D pose vector:

- disentangling step (decoders and the pose / content encoders learn)::

      L_dis = lambda_x |D_x([z_p, z_u]) - x|^2 + lambda_y |D_y(z_p) - y|^2
              + beta (KL(q(z_p | y) || N(0, I)) + KL(q(z_u | x) || N(0, I)))
      z_p ~ q(z_p | y),  z_u ~ q(z_u | x)

- embedding step (the image encoder learns; decoders fixed, Eq. 4.4)::

      L_emb = lambda'_x |D_x(z) - x|^2 + lambda'_y |D_y(z_p) - y|^2 + beta' KL(q(z | x) || N(0, I))
              + lambda_align KL(q(z | x) || sg q_dis(z | y, x)),   z ~ q(z | x)

"Decoders fixed" is a stop-gradient: the embedding terms reach the image encoder through z but
never update D_x, D_y (their parameters are read detached). The alignment term is Eq. 4.3
taken literally, KL(q(z | x) || p(z | x, y)), with the disentangling step's posterior
q_dis = q(z_p | y) q(z_u | x) (detached) standing in for p(z | x, y) *(choose; 0 = the
chapter's ELBO only)*.

Reconstruction terms are Gaussian log-likelihoods up to constants: squared errors summed over
the elements of one sample (pixels of [0, 1] RGB; the 63 values of y), averaged over the batch;
KL terms are summed over latent dimensions. With these sums the chapter's lambda_y = 0.01 only
rescales the pose decoder's own gradient (which Adam undoes); larger pose weights make the
image encoder's pose more accurate. A confidence term trains ``pose_error`` on the detached
2D error of the embedded pose (:func:`~handpose.core.losses.pose.confidence_l1`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..losses.pose import confidence_l1
from .disentangled_vae import DisentangledVAE, Gaussian, pose_to_vector
from .normalization import IMAGENET_NORMALIZATION, normalize_images

__all__ = ["DVAELossWeights", "dvae_loss", "frozen_call"]


@dataclass(frozen=True)
class DVAELossWeights:
    """Weights of :func:`dvae_loss` (chapter: lambda_x 1, lambda_y 0.01, beta 100 for image
    synthesis, beta''' 0.01 for pose estimation; the defaults here are *(choose)*).

    Attributes:
        image, pose, beta: lambda_x, lambda_y, beta of the disentangling step.
        image_emb, pose_emb, beta_emb: lambda'_x, lambda'_y, beta' of the embedding step.
        align: weight of KL(q(z | x) || sg q_dis(z | y, x)).
        confidence: weight of the confidence term (L1, crop sides).
    """

    image: float = 1.0
    pose: float = 1000.0
    beta: float = 1.0
    image_emb: float = 1.0
    pose_emb: float = 1000.0
    beta_emb: float = 1.0
    align: float = 1.0
    confidence: float = 1.0

    def __post_init__(self) -> None:
        for k, v in vars(self).items():
            if not v >= 0:
                raise ValueError(f"loss weight {k} must be >= 0; got {v}")


def frozen_call(module: nn.Module, *args: Any) -> Any:
    """``module(*args)`` with its parameters detached: gradients reach the inputs only."""
    params = {k: p.detach() for k, p in module.named_parameters()}
    return functional_call(module, params, args)


def _sse(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample sum of squared errors, batch mean, in float32 (safe under fp16 autocast)."""
    return (pred.float() - target.float()).pow(2).flatten(1).sum(1).mean()


def dvae_loss(model: DisentangledVAE, images: Tensor, uv: Tensor, z_rel: Tensor,
              weights: DVAELossWeights = DVAELossWeights(),
              normalization: Mapping[str, Any] = IMAGENET_NORMALIZATION) -> dict[str, Tensor]:
    """Joint dVAE objective of one batch (see the module docstring).

    Args:
        model: the dVAE (the caller sets train/eval mode).
        images: (B, 3, S, S) RGB in [0, 1], S = ``model.image_size`` (the reconstruction
            target; normalised with ``normalization`` for the encoders).
        uv: (B, 21, 2) pixels of those images; z_rel: (B, 21) root-relative depth / s.
        weights: the term weights.
    Returns:
        0-d tensors: "total" (to minimise) and the unweighted terms "dis_image", "dis_pose",
        "dis_kl", "emb_image", "emb_pose", "emb_kl", "align", "confidence", plus "uv_px"
        (mean 2D error of the embedded pose, pixels; monitoring only).
    Raises:
        ValueError: images not (B, 3, S, S) floats at the model's size, labels of other shapes.
    """
    s = model.image_size
    b = images.shape[0] if images.dim() == 4 else -1
    if images.shape != (b, 3, s, s) or not images.is_floating_point():
        raise ValueError(f"images must be (B, 3, {s}, {s}) floats in [0, 1]; got "
                         f"{tuple(images.shape)} {images.dtype}")
    y = pose_to_vector(uv, z_rel, float(s))
    if y.shape[0] != b:
        raise ValueError(f"uv/z_rel have batch {y.shape[0]}, images {b}")
    xn = normalize_images(images, normalization)
    p = model.pose_latent

    # disentangling step
    q_pose = model.encode_pose_vector(y)
    q_content = model.encode_content(xn)
    z_pose, z_content = q_pose.sample(), q_content.sample()
    dis_image = _sse(model.decode_image(torch.cat([z_pose, z_content], 1)), images)
    dis_pose = _sse(model.pose_decoder(z_pose), y)
    dis_kl = (q_pose.kl() + q_content.kl()).mean()

    # embedding step: decoders fixed
    q = model.encode_image(xn)
    z = q.sample()
    emb_image = _sse(frozen_call(model.image_decoder, z), images)
    y_emb = frozen_call(model.pose_decoder, z[:, :p])
    emb_pose = _sse(y_emb, y)
    emb_kl = q.kl().mean()
    target = Gaussian(torch.cat([q_pose.mu, q_content.mu], 1).detach(),
                      torch.cat([q_pose.logvar, q_content.logvar], 1).detach())
    align = q.kl(target).mean()

    # confidence of the embedded pose (the estimate forward() gives)
    est = model.decode_pose(q.mu[:, :p].detach())
    uv_est = est["uv"].detach()
    conf = confidence_l1(est["uv_error"], uv_est, uv, float(s))
    uv_px = torch.linalg.vector_norm(uv_est - uv, dim=-1).mean()

    w = weights
    total = (w.image * dis_image + w.pose * dis_pose + w.beta * dis_kl
             + w.image_emb * emb_image + w.pose_emb * emb_pose + w.beta_emb * emb_kl
             + w.align * align + w.confidence * conf)
    return {"total": total, "dis_image": dis_image, "dis_pose": dis_pose, "dis_kl": dis_kl,
            "emb_image": emb_image, "emb_pose": emb_pose, "emb_kl": emb_kl, "align": align,
            "confidence": conf, "uv_px": uv_px}
