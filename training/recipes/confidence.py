"""Calibrate a pose network's confidence so the tracker can tell a hand from no hand.

The 2.5D heads predict ``uv_error``, the expected 2D error of each joint as a fraction of the
crop side, and report confidence = exp(-uv_error / error_scale). The head's ``error_scale``
(``DEFAULT_ERROR_SCALE`` = 0.05 at build time) decides where the tracker's thresholds fall: a
track is kept while its mean joint confidence stays above ``min_confidence`` (0.3 in
:class:`~handpose.core.inference.HandPoseEstimator`). A network whose predicted errors on real
hands are above 0.05 x ln(1/0.3) = 0.06 of the crop would lose every track and re-run the
palm detector on every frame, while one whose errors on background are small keeps tracking
nothing.

:func:`calibrate_confidence` measures the predicted errors on crops with a hand (a labelled
set, upright as the tracker cuts them) and on crops without one made from the same images
(rolled by half a crop, so the hand is cut into the corners; uniform noise; flat grey), and
sets ``error_scale`` so that only the share ``negative_quantile`` of the no-hand crops keeps a
mean joint confidence (what the tracker thresholds) of ``min_confidence`` or more. It reports
how the hand and no-hand crops then fall either side of the threshold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from handpose.core.models import normalize_images

__all__ = ["calibrate_confidence", "mean_confidence", "predicted_errors"]


def predicted_errors(model: nn.Module, images: Tensor, normalization: dict[str, Any],
                     batch_size: int = 32) -> np.ndarray:
    """Predicted 2D error per crop and joint, as a fraction of the crop side.

    Args:
        model: a 2.5D pose network whose output has ``uv_error`` (B, 21).
        images: (N, 3, S, S) float RGB in [0, 1].
        normalization: the checkpoint's ``{"mean", "std"}``.
        batch_size: crops per forward pass.

    Returns:
        (N, J) float64.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, S, S); got {tuple(images.shape)}")
    device = next(model.parameters()).device
    out = []
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                x = normalize_images(images[i:i + batch_size].to(device), normalization)
                pred = model(x)
                if "uv_error" not in pred:
                    raise ValueError("the model predicts no uv_error: it has no confidence to "
                                     "calibrate")
                out.append(pred["uv_error"].float().cpu())
    finally:
        model.train(was)  # the caller's mode, as eval.predict does
    return torch.cat(out).double().numpy()


def mean_confidence(errors: np.ndarray, error_scale: float) -> np.ndarray:
    """(N,) mean joint confidence exp(-e / error_scale) of (N, J) predicted errors."""
    return np.exp(-errors / error_scale).mean(axis=1)


def _scale_for(errors: np.ndarray, share: float, min_confidence: float) -> float:
    """The error_scale at which a ``share`` of the crops reaches ``min_confidence`` (each
    crop's mean confidence grows with the scale: bisection in log space)."""
    lo, hi = 1e-6, 1e3
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if np.mean(mean_confidence(errors, mid) >= min_confidence) > share:
            hi = mid
        else:
            lo = mid
    return lo


def _negatives(hands: Tensor, seed: int) -> Tensor:
    """Crops without a whole hand: the crops rolled by half a side, noise, flat grey."""
    n, _, s, _ = hands.shape
    g = torch.Generator().manual_seed(seed)
    rolled = torch.roll(hands, shifts=(s // 2, s // 2), dims=(2, 3))
    noise = torch.rand((max(1, n // 3), 3, s, s), generator=g)
    grey = torch.rand((max(1, n // 6), 1, 1, 1), generator=g) * 0.6 + 0.2
    flat = grey.expand(-1, 3, s, s).clone()
    return torch.cat([rolled, noise, flat])


def calibrate_confidence(model: nn.Module, dataset: Dataset, normalization: dict[str, Any], *,
                         min_confidence: float = 0.3, negative_quantile: float = 0.05,
                         limit: int = 300, seed: int = 0) -> dict[str, Any]:
    """Set the head's ``error_scale`` from predicted errors on hand and no-hand crops.

    Args:
        model: a pose network with ``model.head.error_scale`` and ``uv_error`` in its output;
            its head is changed in place.
        dataset: labelled crops (items with ``"rgb"``: (3, S, S) uint8), upright as the
            tracker cuts them (``LabelledData(upright=True)``).
        normalization: the checkpoint's ``{"mean", "std"}``.
        min_confidence: the tracker's threshold (mean joint confidence) to calibrate to.
        negative_quantile: the share of no-hand crops allowed to keep ``min_confidence``.
        limit: at most this many hand crops (the first ones).
        seed: of the noise and grey crops.

    Returns:
        plain data: ``error_scale_before``, ``error_scale``, the median predicted errors of
        hand and no-hand crops, the hand crops' median confidence, the shares of hand /
        no-hand crops at or above ``min_confidence`` with the new scale, the crop counts.

    Raises:
        ValueError: no ``head.error_scale``, an empty dataset or a threshold out of (0, 1).
    """
    head = getattr(model, "head", None)
    if head is None or not hasattr(head, "error_scale"):
        raise ValueError(f"{type(model).__name__} has no head.error_scale to calibrate")
    if not 0 < min_confidence < 1 or not 0 <= negative_quantile < 1:
        raise ValueError("need 0 < min_confidence < 1 and 0 <= negative_quantile < 1; got "
                         f"{min_confidence}, {negative_quantile}")
    n = min(limit, len(dataset))  # type: ignore[arg-type]
    if n < 1:
        raise ValueError("no crops to calibrate the confidence on")
    hands = torch.stack([dataset[i]["rgb"] for i in range(n)]).float() / 255.0
    e_hand = predicted_errors(model, hands, normalization)
    e_none = predicted_errors(model, _negatives(hands, seed), normalization)
    before = float(head.error_scale)
    scale = _scale_for(e_none, negative_quantile, min_confidence)
    head.error_scale = scale
    c_hand, c_none = mean_confidence(e_hand, scale), mean_confidence(e_none, scale)
    return {
        "error_scale_before": round(before, 5),
        "error_scale": round(scale, 5),
        "min_confidence": min_confidence,
        "negative_quantile": negative_quantile,
        "hand_error_median": round(float(np.median(e_hand.mean(axis=1))), 5),
        "no_hand_error_median": round(float(np.median(e_none.mean(axis=1))), 5),
        "hand_confidence_median": round(float(np.median(c_hand)), 4),
        "hand_confident_share": round(float(np.mean(c_hand >= min_confidence)), 4),
        "no_hand_confident_share": round(float(np.mean(c_none >= min_confidence)), 4),
        "hand_crops": int(n),
        "no_hand_crops": int(len(e_none)),
    }
