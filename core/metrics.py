"""Evaluation metrics of 3D and 2D hand pose, following the FreiHAND protocol (METHODS 8).

* 3D errors are in the units of the input (metres in handpose), 2D errors in pixels.
* EPE: the mean over joints and samples of the per-joint Euclidean error. FreiHAND's script
  averages per joint first, then over joints; with every joint visible (our data) the two
  are identical.
* PA-EPE: the same after a per-sample similarity Procrustes alignment of the prediction to the
  ground truth (:func:`handpose.core.geometry.align.procrustes`, reflection-free).
* PCK(t): the fraction of joint errors ``<= t`` (FreiHAND uses ``<=``).
* AUC: PCK evaluated at ``np.linspace(lo, hi, steps)`` (default 0..0.05 m, 100 thresholds,
  as FreiHAND), integrated with the trapezoid rule and divided by ``hi - lo``: in [0, 1].
* 2D PCK@0.2: a joint is correct when its 2D error is ``<=`` 0.2 x the larger side of the
  ground-truth keypoints' bounding box of its sample.

Inputs are numpy arrays or torch tensors of shape (..., N, D) (all leading dims are samples);
scalars come back as Python floats, per-joint vectors as float64 numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .geometry.align import procrustes

__all__ = [
    "AUC_RANGE_M",
    "AUC_STEPS",
    "joint_errors",
    "epe",
    "pa_epe",
    "pck",
    "pck_curve",
    "auc_pck",
    "epe_2d",
    "pck_2d",
    "summarize",
]

#: Threshold range of the 3D AUC in metres (0-50 mm) and its number of thresholds (FreiHAND).
AUC_RANGE_M = (0.0, 0.05)
AUC_STEPS = 100


def _np(name: str, x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array or tensor; got "
                         f"{type(x).__name__}") from None
    return a


def _pair(pred: Any, gt: Any, dim: int | None) -> tuple[np.ndarray, np.ndarray]:
    p, g = _np("pred", pred), _np("gt", gt)
    want = "(..., N, D)" if dim is None else f"(..., N, {dim})"
    for name, a in (("pred", p), ("gt", g)):
        if a.ndim < 2 or (dim is not None and a.shape[-1] != dim):
            raise ValueError(f"{name} must have shape {want}; got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite; got NaN/inf values")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt must have the same shape; got {p.shape} and {g.shape}")
    return p, g


def joint_errors(pred: Any, gt: Any) -> np.ndarray:
    """Per-joint Euclidean errors (..., N) of points (..., N, D), in the input's units."""
    p, g = _pair(pred, gt, None)
    return np.linalg.norm(p - g, axis=-1)


def _mean(err: np.ndarray, per_joint: bool) -> Any:
    if per_joint:
        return err.reshape(-1, err.shape[-1]).mean(0)
    return float(err.mean())


def epe(pred: Any, gt: Any, per_joint: bool = False) -> Any:
    """Mean end-point error of 3D joints.

    Args:
        pred, gt: (..., N, 3), metres (any unit: the result has the same).
        per_joint: return the (N,) per-joint means over samples instead of one float.
    """
    p, g = _pair(pred, gt, 3)
    return _mean(np.linalg.norm(p - g, axis=-1), per_joint)


def _pa_errors(pred: Any, gt: Any) -> np.ndarray:
    p, g = _pair(pred, gt, 3)
    aligned = procrustes(p, g, scale=True)[0]
    return np.linalg.norm(aligned - g, axis=-1)


def pa_epe(pred: Any, gt: Any, per_joint: bool = False) -> Any:
    """EPE after a similarity Procrustes alignment of each predicted sample to its ground truth.

    Args:
        pred, gt: (..., N, 3) metres; per_joint as in :func:`epe`.
    """
    return _mean(_pa_errors(pred, gt), per_joint)


def pck(errors: Any, threshold: Any) -> Any:
    """Fraction of errors ``<= threshold``.

    Args:
        errors: (...) joint errors (any shape), same unit as ``threshold``.
        threshold: a float, or an array (T,) of thresholds.

    Returns:
        A float for a scalar threshold, else a (T,) float64 array.
    """
    e = _np("errors", errors).reshape(-1)
    if e.size == 0:
        raise ValueError("errors must not be empty")
    if np.any(np.isnan(e)):
        raise ValueError("errors must not contain NaN")
    t = _np("threshold", threshold)
    if t.ndim == 0:
        return float(np.mean(e <= t))
    return (e[None, :] <= t.reshape(-1)[:, None]).mean(1)


def pck_curve(errors: Any, lo: float = AUC_RANGE_M[0], hi: float = AUC_RANGE_M[1],
              steps: int = AUC_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, pck) at ``np.linspace(lo, hi, steps)`` (the curve :func:`auc_pck`
    integrates)."""
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ValueError(f"need finite lo < hi; got lo={lo}, hi={hi}")
    if not isinstance(steps, int | np.integer) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2; got {steps!r}")
    t = np.linspace(lo, hi, steps)
    return t, pck(errors, t)


def auc_pck(errors: Any, lo: float = AUC_RANGE_M[0], hi: float = AUC_RANGE_M[1],
            steps: int = AUC_STEPS) -> float:
    """Area under the PCK curve, normalised to [0, 1].

    PCK at ``np.linspace(lo, hi, steps)``, trapezoid rule, divided by ``hi - lo`` (FreiHAND).

    Args:
        errors: joint errors in metres (any shape), e.g. :func:`joint_errors`.
        lo, hi: threshold range in metres (default 0 to 0.05 m).
        steps: number of thresholds (default 100).
    """
    t, curve = pck_curve(errors, lo, hi, steps)
    return float(np.sum((curve[1:] + curve[:-1]) * np.diff(t)) / 2.0 / (hi - lo))


def epe_2d(pred_uv: Any, gt_uv: Any, per_joint: bool = False) -> Any:
    """Mean 2D keypoint error in pixels of (..., N, 2) keypoints (per_joint as :func:`epe`)."""
    p, g = _pair(pred_uv, gt_uv, 2)
    return _mean(np.linalg.norm(p - g, axis=-1), per_joint)


def pck_2d(pred_uv: Any, gt_uv: Any, threshold: float = 0.2, reference: Any = "bbox") -> float:
    """2D PCK: fraction of joints whose pixel error is ``<= threshold * reference``.

    Args:
        pred_uv, gt_uv: (..., N, 2) pixels.
        threshold: fraction of the reference length (default 0.2).
        reference: "bbox" (default): per sample, the larger side of the ground-truth keypoints'
            bounding box; or a length in pixels, scalar or (...,) per sample.
    """
    p, g = _pair(pred_uv, gt_uv, 2)
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0; got {threshold}")
    if isinstance(reference, str):
        if reference != "bbox":
            raise ValueError(f"reference must be 'bbox' or a length in pixels; got {reference!r}")
        ref = (g.max(-2) - g.min(-2)).max(-1)
    else:
        ref = _np("reference", reference)
        try:
            ref = np.broadcast_to(ref, g.shape[:-2])
        except ValueError:
            raise ValueError(f"reference must be a scalar or have shape {g.shape[:-2]}; got "
                             f"{ref.shape}") from None
    if np.any(~(ref > 0)):
        raise ValueError("reference lengths must be > 0 pixels (a degenerate ground-truth box?)")
    err = np.linalg.norm(p - g, axis=-1)
    return float(np.mean(err <= threshold * ref[..., None]))


def summarize(pred3d: Any, gt3d: Any, pred_uv: Any = None, gt_uv: Any = None) -> dict[str, float]:
    """The metrics of an evaluation run, as plain floats.

    Args:
        pred3d, gt3d: (..., 21, 3) metres.
        pred_uv, gt_uv: optional (..., 21, 2) pixels (both or neither).

    Returns:
        ``epe_mm``, ``pa_epe_mm``, ``auc`` and ``pa_auc`` (0-50 mm, in [0, 1]), and with 2D
        input ``epe_2d_px`` and ``pck_2d@0.2`` (of the ground-truth keypoint box).
    """
    p, g = _pair(pred3d, gt3d, 3)
    err = np.linalg.norm(p - g, axis=-1)
    pa = _pa_errors(p, g)
    out = {
        "epe_mm": float(err.mean() * 1000.0),
        "pa_epe_mm": float(pa.mean() * 1000.0),
        "auc": auc_pck(err),
        "pa_auc": auc_pck(pa),
    }
    if (pred_uv is None) != (gt_uv is None):
        raise ValueError("pred_uv and gt_uv must be given together")
    if pred_uv is not None:
        out["epe_2d_px"] = epe_2d(pred_uv, gt_uv)
        out["pck_2d@0.2"] = pck_2d(pred_uv, gt_uv, 0.2)
    return out
