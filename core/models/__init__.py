"""Networks: ResNet encoders, 2.5D pose heads, PoseNet, contrastive model, registry, weights."""

from .heads import (
    DEFAULT_ERROR_SCALE,
    HeatmapHead25D,
    ProjectionHead,
    RegressionHead25D,
    RootRefiner,
    soft_argmax_25d,
)
from .normalization import IMAGENET_NORMALIZATION, check_normalization, normalize_images
from .posenet import POSE_OUTPUTS, ContrastiveModel, PoseNet
from .pretrained import encoder_state_dict_from_any, import_peclr_weights
from .registry import available_models, build_model, get_arch, model_kwargs, register_model
from .resnet import (
    RESNET_DEPTHS,
    ResNetEncoder,
    resnet_depth_from_state_dict,
    strip_classifier,
)

__all__ = [
    "DEFAULT_ERROR_SCALE",
    "HeatmapHead25D",
    "ProjectionHead",
    "RegressionHead25D",
    "RootRefiner",
    "soft_argmax_25d",
    "IMAGENET_NORMALIZATION",
    "check_normalization",
    "normalize_images",
    "POSE_OUTPUTS",
    "ContrastiveModel",
    "PoseNet",
    "encoder_state_dict_from_any",
    "import_peclr_weights",
    "available_models",
    "build_model",
    "get_arch",
    "model_kwargs",
    "register_model",
    "RESNET_DEPTHS",
    "ResNetEncoder",
    "resnet_depth_from_state_dict",
    "strip_classifier",
]
