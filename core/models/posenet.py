"""PoseNet (encoder + 2.5D head) and the contrastive pre-training model (encoder + projection).

Both take normalised images (see :mod:`.normalization`), work with any batch size, and are
``channels_last`` friendly (``model.to(memory_format=torch.channels_last)``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..types import Pose25D
from .heads import ProjectionHead, RootRefiner
from .resnet import ResNetEncoder

__all__ = ["PoseNet", "ContrastiveModel", "POSE_OUTPUTS"]

#: The outputs every pose head produces (and the ONNX graph's output names, in this order).
POSE_OUTPUTS: tuple[str, str, str] = ("uv", "z_rel", "confidence")


def _check_images(images: Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, S, S); got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(
            f"images must be normalised floating point (see normalize_images); got {images.dtype}"
        )


class PoseNet(nn.Module):
    """Encoder + 2.5D pose head (+ optional root-depth refiner used when lifting to 3D).

    Args:
        encoder: a :class:`ResNetEncoder` (its ``forward_features`` gives the feature map).
        head: a pose head following the contract of :mod:`.heads`.
        root_refiner: optional :class:`RootRefiner`; it is not used in ``forward`` (it needs
            the camera), the lifting code calls it.
    """

    def __init__(self, encoder: ResNetEncoder, head: nn.Module,
                 root_refiner: RootRefiner | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.root_refiner = root_refiner

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Run the network.

        Args:
            images: (B, 3, S, S) normalised float images (the crop).

        Returns:
            dict with "uv" (B, 21, 2) crop pixels, "z_rel" (B, 21) root-relative depth / s,
            "confidence" (B, 21) in (0, 1], plus head-specific extras.
        """
        _check_images(images)
        fmap = self.encoder.forward_features(images)
        return self.head(fmap, (int(images.shape[-2]), int(images.shape[-1])))  # type: ignore[no-any-return]

    @torch.no_grad()
    def predict(self, images: Tensor) -> Pose25D:
        """Inference helper: ``forward`` without gradients, packed as a :class:`Pose25D`.

        The caller chooses train/eval mode (use ``model.eval()`` for inference).

        Args:
            images: (B, 3, S, S) normalised float images.

        Returns:
            Pose25D with uv (B, 21, 2) crop pixels, z_rel (B, 21), confidence (B, 21).
        """
        out = self.forward(images)
        return Pose25D(uv=out["uv"], z_rel=out["z_rel"], confidence=out["confidence"])


class ContrastiveModel(nn.Module):
    """Encoder + projection head for SimCLR / PeCLR pre-training.

    ``forward(images (B, 3, S, S)) -> (B, 128)`` L2-normalised projections;
    :meth:`features` gives the (B, feature_dim) pooled encoder features.
    After pre-training, ``posenet.encoder.load_state_dict(model.encoder.state_dict())``
    transfers the encoder (the projection is dropped, as in the paper).
    """

    def __init__(self, encoder: ResNetEncoder, projection: ProjectionHead) -> None:
        super().__init__()
        if projection.in_features != encoder.feature_dim:
            raise ValueError(
                f"projection.in_features ({projection.in_features}) must equal "
                f"encoder.feature_dim ({encoder.feature_dim})"
            )
        self.encoder = encoder
        self.projection = projection

    def features(self, images: Tensor) -> Tensor:
        _check_images(images)
        return self.encoder.pool(self.encoder.forward_features(images))

    def forward(self, images: Tensor) -> Tensor:
        return self.projection(self.features(images))  # type: ignore[no-any-return]
