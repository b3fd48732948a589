"""Model registry: a name -> factory map with one contract.

Every factory takes keyword arguments only, whose values are plain data (bool, int, float,
str, None, and lists / tuples / dicts of those), and returns an ``nn.Module``.
:func:`build_model` records ``{"name": name, "kwargs": kwargs}`` on the model (read it with
:func:`get_arch`); a checkpoint stores that dict and rebuilds the same architecture with
``build_model(arch["name"], **arch["kwargs"])``.

Registered names (N in 18, 34, 50, 101, 152):

- ``encoder_resnetN``: :class:`ResNetEncoder` (kwargs ``width=64``, ``num_classes=0``,
  ``zero_init_residual=False``).
- ``simclr_resnetN``: :class:`ContrastiveModel`, the SimCLR and PeCLR pre-training network
  (``width=64``, ``proj_hidden=512``, ``proj_dim=128``).
- ``posenet_resnetN``: :class:`PoseNet` with the linear 2.5D regression head (``width=64``,
  ``hidden=0``, ``error_scale=0.05``, ``root_refine=False``).
- ``posenet_resnetN_heatmap``: :class:`PoseNet` with the integral-heatmap head (``width=64``,
  ``channels=256``, ``num_deconv=3``, ``beta=1.0``, ``root_refine=False``).
- ``posenet_resnetN_mask``: :class:`PoseMaskNet`, a PoseNet (``head="regression"`` or
  ``"heatmap"`` with the heatmap head's ``channels``, ``num_deconv``, ``beta``) plus a
  hand-mask head (SemiHand; ``width=64``, ``hidden=0``, ``error_scale=0.05``, ``root_refine=False``,
  ``mask_channels=64``, ``mask_deconv=3``).
- ``dual_resnetN``: :class:`DualModalityNet` (RGB + depth training network, RGB-branch
  ``forward``; ``width=64``, ``channels=256``, ``num_deconv=3``, ``beta=10.0``,
  ``proj_hidden=512``, ``proj_dim=128``).
- ``posenet_resnetN_multimodal``: :class:`PoseNet` with the dual network's shared decoder
  (pose, mask, depth), i.e. its RGB branch alone (``width``, ``channels``, ``num_deconv``,
  ``beta`` as above).
- ``crossvae_resnetN``: :class:`CrossModalVAE` (``width=64``, ``latent=64``,
  ``rgb_hidden=512``, ``point_width=64``, ``pose_hidden=128``, ``heatmap_size=32``,
  ``heatmap_channels=256``, ``grid=16``, ``fold_hidden=256``, ``beta=10.0``).
- ``depth_fcn``: :class:`DepthFCN`, the hourglass on depth crops with integral 3D regression
  (``num_points=21``, ``width=64``, ``stacks=1``, ``depth=3``, ``beta=10.0``,
  ``input_size=64``).
- ``pose_vae``: :class:`PoseVAE`, the pose prior (``num_points=41``, ``hidden=256``,
  ``latent=32``, ``sigma=0.05``, ``beta=1.0``, ``canonical_rotation=True``).
- ``disentangled_vae``: :class:`DisentangledVAE`, the dVAE of pose and image content whose
  ``forward`` is its pose estimate (``depth=18``, ``width=64``, ``pose_latent=32``,
  ``content_latent=32``, ``hidden=512``, ``layers=6``, ``image_size=64``,
  ``decoder_channels=64``).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from .crossvae import CrossModalVAE
from .disentangled_vae import DisentangledVAE
from .dual import DualModalityNet, MultiModalHead
from .fcn import DepthFCN
from .heads import (
    DEFAULT_ERROR_SCALE,
    HeatmapHead25D,
    ProjectionHead,
    RegressionHead25D,
    RootRefiner,
)
from .mask_head import MaskHead, PoseMaskNet
from .posenet import ContrastiveModel, PoseNet
from .prior import PoseVAE
from .resnet import RESNET_DEPTHS, ResNetEncoder

__all__ = ["build_model", "register_model", "available_models", "get_arch", "model_kwargs"]

Factory = Callable[..., nn.Module]
_REGISTRY: dict[str, Factory] = {}
_ARCH_ATTR = "_handpose_arch"


def register_model(name: str) -> Callable[[Factory], Factory]:
    """Decorator registering ``factory`` under ``name`` (which must be new)."""

    def deco(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def available_models() -> list[str]:
    """All registered names, sorted."""
    return sorted(_REGISTRY)


def _check_plain(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | int | float | str):
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where} has a non-string key {k!r}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise ValueError(
        f"{where} must be plain data (bool/int/float/str/None/list/dict); "
        f"got {type(value).__name__}"
    )


def model_kwargs(name: str) -> dict[str, Any]:
    """The keyword arguments of model ``name`` with their defaults."""
    factory = _lookup(name)
    return {
        p.name: p.default for p in inspect.signature(factory).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _lookup(name: str) -> Factory:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown model name {name!r}{hint} (known: {available_models()})")
    return _REGISTRY[name]


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: a registered name, e.g. ``"posenet_resnet18"``.
        **kwargs: the factory's keyword arguments (plain data).

    Returns:
        the model, with ``get_arch(model) == {"name": name, "kwargs": kwargs}``.

    Raises:
        ValueError: unknown name (with suggestions), unknown keyword, non-plain value.
    """
    factory = _lookup(name)
    known = model_kwargs(name)
    for key, value in kwargs.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"model {name!r} has no argument {key!r}{hint} (arguments: {sorted(known)})"
            )
        _check_plain(value, f"kwargs[{key!r}]")
    model = factory(**kwargs)
    setattr(model, _ARCH_ATTR, {"name": name, "kwargs": dict(kwargs)})
    return model


def get_arch(model: nn.Module) -> dict[str, Any]:
    """``{"name", "kwargs"}`` of a model made by :func:`build_model`.

    Raises:
        ValueError: the model was not built through the registry.
    """
    arch = getattr(model, _ARCH_ATTR, None)
    if arch is None:
        raise ValueError(
            f"{type(model).__name__} was not built with build_model(); pass arch= explicitly"
        )
    return {"name": arch["name"], "kwargs": dict(arch["kwargs"])}


def _encoder_factory(depth: int) -> Factory:
    def make(*, width: int = 64, num_classes: int = 0,
             zero_init_residual: bool = False) -> nn.Module:
        return ResNetEncoder(depth, width=width, num_classes=num_classes,
                             zero_init_residual=zero_init_residual)
    return make


def _simclr_factory(depth: int) -> Factory:
    def make(*, width: int = 64, proj_hidden: int = 512, proj_dim: int = 128) -> nn.Module:
        enc = ResNetEncoder(depth, width=width)
        return ContrastiveModel(enc, ProjectionHead(enc.feature_dim, proj_hidden, proj_dim))
    return make


def _posenet_factory(depth: int) -> Factory:
    def make(*, width: int = 64, hidden: int = 0, error_scale: float = DEFAULT_ERROR_SCALE,
             root_refine: bool = False) -> nn.Module:
        enc = ResNetEncoder(depth, width=width)
        head = RegressionHead25D(enc.feature_dim, hidden=hidden, error_scale=error_scale)
        return PoseNet(enc, head, RootRefiner() if root_refine else None)
    return make


def _heatmap_factory(depth: int) -> Factory:
    def make(*, width: int = 64, channels: int = 256, num_deconv: int = 3, beta: float = 1.0,
             root_refine: bool = False) -> nn.Module:
        enc = ResNetEncoder(depth, width=width)
        head = HeatmapHead25D(enc.feature_dim, channels=channels, num_deconv=num_deconv,
                              beta=beta)
        return PoseNet(enc, head, RootRefiner() if root_refine else None)
    return make


def _mask_factory(depth: int) -> Factory:
    def make(*, width: int = 64, hidden: int = 0, error_scale: float = DEFAULT_ERROR_SCALE,
             root_refine: bool = False, mask_channels: int = 64, mask_deconv: int = 3,
             head: str = "regression", channels: int = 256, num_deconv: int = 3,
             beta: float = 1.0) -> nn.Module:
        enc = ResNetEncoder(depth, width=width)
        pose_head: nn.Module
        if head == "heatmap":
            pose_head = HeatmapHead25D(enc.feature_dim, channels=channels,
                                       num_deconv=num_deconv, beta=beta)
        elif head == "regression":
            pose_head = RegressionHead25D(enc.feature_dim, hidden=hidden,
                                          error_scale=error_scale)
        else:
            raise ValueError(f"head must be 'regression' or 'heatmap'; got {head!r}")
        mask = MaskHead(enc.feature_dim, channels=mask_channels, num_deconv=mask_deconv)
        return PoseMaskNet(enc, pose_head, mask, RootRefiner() if root_refine else None)
    return make


for _d in RESNET_DEPTHS:
    register_model(f"posenet_resnet{_d}_mask")(_mask_factory(_d))
    register_model(f"encoder_resnet{_d}")(_encoder_factory(_d))
    register_model(f"simclr_resnet{_d}")(_simclr_factory(_d))
    register_model(f"posenet_resnet{_d}")(_posenet_factory(_d))
    register_model(f"posenet_resnet{_d}_heatmap")(_heatmap_factory(_d))


def _dual_factory(depth: int) -> Factory:
    def make(*, width: int = 64, channels: int = 256, num_deconv: int = 3, beta: float = 10.0,
             proj_hidden: int = 512, proj_dim: int = 128) -> nn.Module:
        return DualModalityNet(depth, width, channels, num_deconv, beta, proj_hidden, proj_dim)
    return make


def _multimodal_factory(depth: int) -> Factory:
    def make(*, width: int = 64, channels: int = 256, num_deconv: int = 3,
             beta: float = 10.0) -> nn.Module:
        enc = ResNetEncoder(depth, width=width)
        return PoseNet(enc, MultiModalHead(enc.feature_dim, channels=channels,
                                           num_deconv=num_deconv, beta=beta))
    return make


def _crossvae_factory(depth: int) -> Factory:
    def make(*, width: int = 64, latent: int = 64, rgb_hidden: int = 512, point_width: int = 64,
             pose_hidden: int = 128, heatmap_size: int = 32, heatmap_channels: int = 256,
             grid: int = 16, fold_hidden: int = 256, beta: float = 10.0) -> nn.Module:
        return CrossModalVAE(depth, width, latent, rgb_hidden, point_width, pose_hidden,
                             heatmap_size, heatmap_channels, grid, fold_hidden, beta)
    return make


for _d in RESNET_DEPTHS:
    register_model(f"dual_resnet{_d}")(_dual_factory(_d))
    register_model(f"posenet_resnet{_d}_multimodal")(_multimodal_factory(_d))
    register_model(f"crossvae_resnet{_d}")(_crossvae_factory(_d))


@register_model("depth_fcn")
def _depth_fcn(*, num_points: int = 21, width: int = 64, stacks: int = 1, depth: int = 3,
               beta: float = 10.0, input_size: int = 64) -> nn.Module:
    return DepthFCN(num_points, width=width, stacks=stacks, depth=depth, beta=beta,
                    input_size=input_size)


@register_model("pose_vae")
def _pose_vae(*, num_points: int = 41, hidden: int = 256, latent: int = 32, sigma: float = 0.05,
              beta: float = 1.0, canonical_rotation: bool = True) -> nn.Module:
    return PoseVAE(num_points, hidden=hidden, latent=latent, sigma=sigma, beta=beta,
                   canonical_rotation=canonical_rotation)


@register_model("disentangled_vae")
def _disentangled_vae(*, depth: int = 18, width: int = 64, pose_latent: int = 32,
                      content_latent: int = 32, hidden: int = 512, layers: int = 6,
                      image_size: int = 64, decoder_channels: int = 64) -> nn.Module:
    return DisentangledVAE(depth, width, pose_latent, content_latent, hidden, layers, image_size,
                           decoder_channels)
