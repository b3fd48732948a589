"""Per-user hand size: bone lengths from a few frames, or from a measured hand length.

The metric size of a hand cannot be seen in one RGB image (a larger hand farther away looks
the same), so the pipeline lifts with a reference bone length from one of:

* :func:`calibrate_hand_size` on a few frames of a flat, open hand facing the camera. With
  depth (RGB-D) the scale is measured (root depth from the depth map, see
  :mod:`.depth_lift`); with RGB alone the user's measured hand length must be given and only
  the proportions come from the images.
* :func:`hand_scale_from_length` for RGB-only users who measure their hand: the default
  hand's proportions scaled to that length.

Both return (20,) bone lengths in metres (BONES order) for
``HandPoseEstimator(hand_scale=...)``; their ratios to the reference bone are kept inside the
hand model's feasible ranges so :func:`~handpose.core.biomech.correct_pose` accepts them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..handmodel import HandModel, load_hand_model
from ..skeleton import BONES, NUM_BONES, REFERENCE_BONE
from ..types import Frame

if TYPE_CHECKING:
    from .estimator import HandPoseEstimator

__all__ = ["HAND_LENGTH_BONES", "template_hand_length", "hand_scale_from_length",
           "calibrate_hand_size", "resolve_hand_scale"]

#: Bones summed for the hand length: wrist -> middle MCP -> PIP -> DIP -> tip (the length a
#: user measures from the wrist crease to the tip of the straight middle finger).
HAND_LENGTH_BONES: tuple[int, ...] = (8, 9, 10, 11)
_REF = REFERENCE_BONE[1] - 1
_HAND_LENGTH_RANGE = (0.10, 0.30)  # metres: a small child's to a very large adult hand


def template_hand_length(model: HandModel | None = None) -> float:
    """Hand length (metres) of the default hand: the sum of :data:`HAND_LENGTH_BONES`."""
    m = model or load_hand_model()
    return float(m.bone_lengths[list(HAND_LENGTH_BONES)].sum())


def _feasible(lengths: np.ndarray, model: HandModel) -> np.ndarray:
    """Clamp bone / reference ratios into the model's ranges (slightly inside)."""
    ref = lengths[_REF]
    lo, hi = model.bone_length_range[:, 0], model.bone_length_range[:, 1]
    pad = 0.01 * (hi - lo)
    ratio = np.clip(lengths / ref, lo + pad, hi - pad)
    ratio[_REF] = 1.0
    return ratio * ref


def hand_scale_from_length(hand_length_m: float, model: HandModel | None = None) -> np.ndarray:
    """Bone lengths of the default hand scaled to a measured hand length.

    Args:
        hand_length_m: metres from the wrist crease to the tip of the straight middle finger,
            in [0.10, 0.30].
        model: hand model (default: the shipped one).

    Returns:
        (20,) bone lengths in metres, BONES order.
    """
    lo, hi = _HAND_LENGTH_RANGE
    if not isinstance(hand_length_m, int | float) or not lo <= float(hand_length_m) <= hi:
        raise ValueError(f"hand_length_m must be a hand length in metres within [{lo}, {hi}] "
                         f"(wrist crease to middle fingertip, e.g. 0.18); got {hand_length_m!r}")
    m = model or load_hand_model()
    return np.asarray(m.bone_lengths * (float(hand_length_m) / template_hand_length(m)))


def calibrate_hand_size(frames: Iterable[Frame], estimator: HandPoseEstimator | None = None,
                        hand_length_m: float | None = None, min_frames: int = 3,
                        model: HandModel | None = None) -> np.ndarray:
    """Per-user bone lengths from a few frames of a flat, open hand.

    Each frame is tracked (one hand, no correction, no smoothing, so the user's own
    proportions survive); each bone's length is the median over the frames where a hand was
    found. With depth in the frames the lengths are metric (scale from depth); without, the
    proportions are scaled so the hand length equals ``hand_length_m``.

    Args:
        frames: :class:`~handpose.core.types.Frame` s (with ``depth`` for RGB-D calibration).
        estimator: the pipeline to use (its network and detector are shared; default: a
            ``HandPoseEstimator()`` with the default checkpoint).
        hand_length_m: measured hand length in metres (required without depth, optional with
            depth: then it overrides the measured scale).
        min_frames: at least this many frames must show a hand.
        model: hand model (feasible bone ratios; default: the shipped one).

    Returns:
        (20,) bone lengths in metres, BONES order.

    Raises:
        ValueError: too few frames with a hand; RGB-only frames without ``hand_length_m``.
    """
    from .estimator import HandPoseEstimator

    if hand_length_m is not None:
        hand_scale_from_length(hand_length_m)  # validates the value
    if not isinstance(min_frames, int) or min_frames < 1:
        raise ValueError(f"min_frames must be an int >= 1; got {min_frames!r}")
    m = model or load_hand_model()
    base = estimator if estimator is not None else HandPoseEstimator()
    est = base.with_options(max_hands=1, correct=False, smoothing=None, hand_scale=None,
                            fit_depth=False, use_depth=True)
    parent = np.asarray([b[0] for b in BONES])
    child = np.asarray([b[1] for b in BONES])
    lengths: list[np.ndarray] = []
    n_frames = n_depth = 0
    for frame in frames:
        if not isinstance(frame, Frame):
            raise ValueError(f"frames must hold handpose Frames; got {type(frame).__name__}")
        n_frames += 1
        n_depth += frame.depth is not None
        result = est.process(frame)
        if result.hands:
            j = result.hands[0].joints
            lengths.append(np.linalg.norm(j[child] - j[parent], axis=-1))
    if len(lengths) < min_frames:
        raise ValueError(f"calibrate_hand_size: a hand was found in {len(lengths)} of "
                         f"{n_frames} frames; at least {min_frames} are needed (show a flat, "
                         "open hand facing the camera)")
    if n_depth < n_frames and hand_length_m is None:
        raise ValueError("calibrate_hand_size: without depth in every frame the hand's metric "
                         "size is not observable from RGB; pass hand_length_m (measured from "
                         "the wrist crease to the tip of the middle finger)")
    bones = np.median(np.stack(lengths), axis=0)
    if hand_length_m is not None:
        bones = bones * (float(hand_length_m) / float(bones[list(HAND_LENGTH_BONES)].sum()))
    return _feasible(bones, m)


def resolve_hand_scale(hand_scale: Any) -> tuple[np.ndarray | None, float, float]:
    """What the estimator's ``hand_scale`` means.

    Args:
        hand_scale: None (the default adult hand), a size relative to it in [0.3, 3], or
            (20,) per-user bone lengths in metres (BONES order).

    Returns:
        per-user bone lengths (20,) metres or None, the reference bone length (metres), and
        the size relative to the template hand.

    Raises:
        ValueError: anything else, saying what is accepted.
    """
    model = load_hand_model()
    ref0 = model.reference_bone_length
    if hand_scale is None:
        return None, ref0, 1.0
    arr = np.asarray(hand_scale, dtype=np.float64)
    if arr.ndim == 0:
        f = float(arr)
        if not (np.isfinite(f) and 0.3 <= f <= 3.0):
            raise ValueError(f"hand_scale as a number is the size relative to the default "
                             f"adult hand, in [0.3, 3]; got {f}")
        return model.bone_lengths * f, ref0 * f, f
    if arr.shape != (NUM_BONES,) or not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ValueError(f"hand_scale must be None, a relative size, or (20,) positive bone "
                         f"lengths in metres; got shape {arr.shape}")
    return arr, float(arr[_REF]), float(np.mean(arr / model.bone_lengths))
