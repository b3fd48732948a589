"""Import of the official PeCLR ResNet weights (and torchvision-style ResNet weights).

The official repository (``dahiyaaneesh/peclr``, AIT ETH) publishes its weights in three
layouts, all ``torch.save`` dicts; each maps onto :class:`~.resnet.ResNetEncoder` here:

1. Released pre-trained encoders (``peclr_rn50_yt3dh_fh.pth``, ``peclr_rn152_yt3dh_fh.pth``):
   ``{"state_dict": <torchvision ResNet state dict>}`` (keys ``conv1.weight``,
   ``layer1.0.conv1.weight``, ..., ``fc.*``). ``fc.*`` is dropped.
2. Training checkpoints of the PeCLR/SimCLR code (PyTorch Lightning ``.ckpt``):
   ``{"state_dict": {"encoder.features.<i>.*", "encoder.final_layer.*",
   "projection_head.*"}, ...}`` where ``encoder.features`` is
   ``Sequential(conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4, avgpool)``:
   indices 0, 1, 4-7 map to ``conv1``, ``bn1``, ``layer1``-``layer4``; the final layer and
   the projection head are dropped.
3. Fine-tuned 2.5D models (``rn50_peclr_yt3d-fh_pt_fh_ft.pth``, class ``RN_25D_wMLPref``):
   ``{"state_dict": {"backend_model.<torchvision keys>", "zroot_ref.*"}}``. The encoder is
   imported; its 2.5D ``fc`` (63 + 1 outputs, pixels of a 224 px crop) and the root refiner
   are dropped (our heads predict normalised coordinates; fine-tune a new head).

A ``module.`` prefix (DataParallel) is stripped first; ``encoder.<torchvision keys>`` (our own
:class:`~.posenet.ContrastiveModel`, many SimCLR codes) is accepted too.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any

import torch
from torch import Tensor

from ..safe_load import CheckpointError, safe_torch_load
from .resnet import ResNetEncoder, resnet_depth_from_state_dict

__all__ = ["import_peclr_weights", "encoder_state_dict_from_any"]

#: ``encoder.features.<i>`` of the PeCLR training code -> torchvision module name.
_FEATURES_INDEX = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3",
                   "7": "layer4"}


def _strip(sd: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _from_lightning(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for key, value in _strip(sd, "encoder.features.").items():
        idx, _, rest = key.partition(".")
        if idx not in _FEATURES_INDEX:
            raise CheckpointError(
                f"unexpected PeCLR encoder key 'encoder.features.{key}' (index {idx} is not "
                "conv1/bn1/layer1-4): not a ResNet encoder of the PeCLR code"
            )
        out[f"{_FEATURES_INDEX[idx]}.{rest}"] = value
    return out


def encoder_state_dict_from_any(state_dict: Mapping[str, Any]) -> tuple[dict[str, Tensor], str]:
    """Map a state dict in one of the layouts above to :class:`ResNetEncoder` keys.

    Args:
        state_dict: name -> tensor.

    Returns:
        (encoder state dict without ``fc``, layout name: "torchvision", "peclr-training",
        "peclr-finetuned" or "prefixed-encoder").

    Raises:
        CheckpointError: no ResNet encoder in it (the message lists the first keys found).
    """
    sd = {k: v for k, v in state_dict.items() if isinstance(v, Tensor)}
    if sd and all(k.startswith("module.") for k in sd):
        sd = _strip(sd, "module.")
    if "conv1.weight" in sd:
        out, layout = sd, "torchvision"
    elif any(k.startswith("encoder.features.") for k in sd):
        out, layout = _from_lightning(sd), "peclr-training"
    elif "backend_model.conv1.weight" in sd:
        out, layout = _strip(sd, "backend_model."), "peclr-finetuned"
    elif "encoder.conv1.weight" in sd:
        out, layout = _strip(sd, "encoder."), "prefixed-encoder"
    else:
        first = list(state_dict)[:6]
        raise CheckpointError(
            "no ResNet encoder found: expected torchvision keys ('conv1.weight', "
            "'layer1.0.conv1.weight', ...), PeCLR training keys ('encoder.features.0.weight') "
            f"or fine-tuned PeCLR keys ('backend_model.conv1.weight'); found {first}"
        )
    return {k: v for k, v in out.items() if not k.startswith("fc.")}, layout


def _validate(sd: dict[str, Tensor], source: str) -> None:
    try:
        depth, width = resnet_depth_from_state_dict(sd)
    except ValueError as e:
        raise CheckpointError(f"{source}: {e}") from None
    with torch.device("meta"):
        ref = ResNetEncoder(depth, width=width).state_dict()
    for k in ref:  # old torchvision files predate BN's num_batches_tracked buffer
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.tensor(0, dtype=torch.long)
    missing = [k for k in ref if k not in sd]
    extra = [k for k in sd if k not in ref]
    if missing or extra:
        raise CheckpointError(
            f"{source}: does not match a ResNet-{depth} encoder: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected {extra[:5]}"
            f"{' ...' if len(extra) > 5 else ''}"
        )
    for k, v in ref.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise CheckpointError(
                f"{source}: parameter {k!r} has shape {tuple(sd[k].shape)}, a ResNet-{depth} "
                f"(width {width}) needs {tuple(v.shape)}"
            )


def import_peclr_weights(path: str | PathLike[str]) -> dict[str, Tensor]:
    """Load official PeCLR (or torchvision-style) ResNet weights for our encoder.

    Args:
        path: a ``.pth`` / ``.ckpt`` file in one of the layouts of this module's docstring.

    Returns:
        state dict (float tensors on CPU) loadable with ``strict=True`` into
        ``ResNetEncoder(depth, width)`` (no ``fc``), e.g. ``model.encoder.load_state_dict(sd)``
        of ``build_model("posenet_resnet50")``; (depth, width) are given by
        :func:`~.resnet.resnet_depth_from_state_dict`.

    Raises:
        CheckpointError: unreadable file (see :func:`safe_torch_load`), no state dict, no
            ResNet encoder in it, or keys/shapes that do not form a ResNet-18/34/50/101/152.
    """
    obj = safe_torch_load(path, what="PeCLR weights")
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        raw = obj["state_dict"]
    elif isinstance(obj, Mapping) and any(isinstance(v, Tensor) for v in obj.values()):
        raw = obj
    else:
        keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"{path}: no 'state_dict' in the file (top level: {keys}); expected the PeCLR "
            "release format {'state_dict': {...}} or a plain state dict"
        )
    sd, layout = encoder_state_dict_from_any(raw)
    _validate(sd, f"{path} ({layout} layout)")
    return {k: v.detach().to("cpu") for k, v in sd.items()}
