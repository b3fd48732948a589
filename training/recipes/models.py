"""Model sections shared by the recipes and loading pre-trained encoder weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from handpose.core.models import RESNET_DEPTHS, import_peclr_weights

from ..config import ConfigError

__all__ = ["EncoderSpec", "load_encoder_weights", "resolve_model_file"]


@dataclass(frozen=True)
class EncoderSpec:
    """ResNet encoder: depth (18, 34, 50, 101, 152) and base width (64 = torchvision;
    smaller widths make tiny models for tests)."""

    depth: int = 18
    width: int = 64

    def __post_init__(self) -> None:
        if self.depth not in RESNET_DEPTHS:
            raise ValueError(f"model.depth must be one of {RESNET_DEPTHS}, got {self.depth}")
        if self.width < 1:
            raise ValueError(f"model.width must be >= 1, got {self.width}")


def resolve_model_file(path: str, key: str) -> Path:
    """A model file, or a run folder's ``model.pt``.

    Raises:
        ConfigError: the path (or the run folder's model.pt) does not exist.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "model.pt"
    if not p.is_file():
        raise ConfigError(f"{key}: model file {p.resolve()} does not exist")
    return p


def load_encoder_weights(encoder: nn.Module, path: str, key: str = "init") -> Path:
    """Load encoder weights from a handpose checkpoint (pretrain/finetune ``model.pt`` or its
    run folder) or official PeCLR / torchvision-style ResNet weights.

    Args:
        encoder: the :class:`~handpose.core.models.ResNetEncoder` to fill.
        path: the file or run folder.
        key: the config key, for messages.
    Returns:
        the file read.
    Raises:
        ConfigError: missing file, or weights of another depth/width (shapes named);
        CheckpointError: a file that holds no ResNet encoder.
    """
    p = resolve_model_file(path, key)
    sd = import_peclr_weights(p)
    own = encoder.state_dict()
    for k, v in own.items():
        if k in sd and tuple(sd[k].shape) != tuple(v.shape):
            raise ConfigError(
                f"{key}: {p} does not fit model.depth/model.width: {k} is "
                f"{tuple(sd[k].shape)} in the file, {tuple(v.shape)} in the model"
            )
    try:
        encoder.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ConfigError(f"{key}: {p} does not fit the encoder ({e})") from None
    return p
