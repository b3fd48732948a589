"""The biomechanical constraint set (METHODS §3): limits from the hand model, the constrained
quantities of a pose, interval excesses, input validation and handedness resolution.

A pose is *feasible* when every quantity below lies in its interval (``hand_model.json``):

==================  ====  ======================================================  ========
family              K     quantity                                                unit
==================  ====  ======================================================  ========
bone_length         20    |b_k| / |b_ref| (reference bone middle MCP -> PIP)       ratio
root_angle          4     angle between neighbouring root bones                    radians
root_curvature      4     METHODS §3 curvature on bones divided by |b_ref|         unitless
palm_normal_angle   3     angle between consecutive palm normals n_{i-1}, n_i      radians
flexion             15    finger bone flexion in its local frame                   radians
abduction           15    finger bone abduction in its local frame                 radians
==================  ====  ======================================================  ========

``palm_normal_angle`` is not in Spurr et al.: it keeps the edge normals (and hence the
finger frames) defined by forbidding neighbouring palm planes from folding over each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import torch

from ..handmodel import HandModel, load_hand_model
from ..skeleton import BONES, NUM_JOINTS, REFERENCE_BONE
from . import _backend as B
from ._backend import Array
from .frames import (
    FINGER_BONE_NAMES,
    bone_vectors,
    finger_angles_right,
    mirror_x,
    root_geometry_right,
)

__all__ = [
    "FAMILIES",
    "Limits",
    "limits_for",
    "constraint_names",
    "check_joints",
    "check_handedness",
    "evaluate_right",
    "interval_excess",
    "excess_right",
    "total_excess_right",
    "to_right",
]

#: Constraint families in report order, with the number of scalar constraints in each.
FAMILIES: Final[tuple[tuple[str, int], ...]] = (
    ("bone_length", 20),
    ("root_angle", 4),
    ("root_curvature", 4),
    ("palm_normal_angle", 3),
    ("flexion", 15),
    ("abduction", 15),
)
_HANDEDNESS = ("right", "left", "auto")


@dataclass(frozen=True)
class Limits:
    """The hand model's constraint intervals as ``{family: (K, 2) [lo, hi]}`` (radians for
    angles) plus the template used by the correction."""

    intervals: dict[str, np.ndarray]
    #: (21, 3) metres, the canonical feasible right hand (hand frame) of the model.
    rest_pose: np.ndarray
    #: (20,) metres, the model's bone lengths.
    bone_lengths: np.ndarray

    def lo_hi(self, family: str, like: Array) -> tuple[Array, Array]:
        """(K,) lower and upper bounds of ``family`` as arrays of the type/dtype of ``like``."""
        iv = self.intervals[family]
        if B.is_torch(like):
            t = torch.tensor(iv, dtype=like.dtype, device=like.device)
            return t[:, 0], t[:, 1]
        return iv[:, 0], iv[:, 1]


_CACHE: dict[int, tuple[HandModel, Limits]] = {}
_DEFAULT: list[Limits] = []


def limits_for(model: HandModel | None = None) -> Limits:
    """The :class:`Limits` of ``model`` (default: the shipped hand model), cached."""
    if model is None:
        if not _DEFAULT:
            _DEFAULT.append(limits_for(load_hand_model()))
        return _DEFAULT[0]
    hit = _CACHE.get(id(model))
    if hit is not None and hit[0] is model:
        return hit[1]
    lim = Limits(
        intervals={
            "bone_length": np.asarray(model.bone_length_range, dtype=np.float64),
            "root_angle": np.asarray(model.root_angle_limits, dtype=np.float64),
            "root_curvature": np.asarray(model.root_curvature_limits, dtype=np.float64),
            "palm_normal_angle": np.asarray(model.root_normal_angle_limits, dtype=np.float64),
            "flexion": np.asarray(model.flexion_limits, dtype=np.float64),
            "abduction": np.asarray(model.abduction_limits, dtype=np.float64),
        },
        rest_pose=np.asarray(model.rest_pose, dtype=np.float64),
        bone_lengths=np.asarray(model.bone_lengths, dtype=np.float64),
    )
    _CACHE[id(model)] = (model, lim)
    return lim


def constraint_names(family: str) -> tuple[str, ...]:
    """Human-readable names of the K constraints of ``family``."""
    from ..skeleton import Joint

    fingers = ("thumb", "index", "middle", "ring", "pinky")
    if family == "bone_length":
        return tuple(
            f"{Joint(p).name.lower()}->{Joint(c).name.lower()}" for p, c in BONES
        )
    if family in ("root_angle", "root_curvature"):
        return tuple(f"{fingers[i]}-{fingers[i + 1]}" for i in range(4))
    if family == "palm_normal_angle":
        return tuple(f"at {fingers[i]}" for i in range(1, 4))
    if family in ("flexion", "abduction"):
        return FINGER_BONE_NAMES
    raise ValueError(f"unknown constraint family {family!r}; expected one of {dict(FAMILIES)}")


def check_joints(joints: object, name: str = "joints", finite: bool = True) -> Array:
    """Validate (..., 21, 3) joints; returns a float numpy array or the torch tensor as is.

    Raises:
        ValueError: wrong shape, non-float dtype, or (``finite``) NaN / infinity.
    """
    if isinstance(joints, torch.Tensor):
        arr: Array = joints
        if not arr.is_floating_point():
            raise ValueError(f"{name} must be a floating point tensor; got {arr.dtype}")
    else:
        try:
            arr = np.asarray(joints, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must be a numeric (..., 21, 3) array ({e})") from e
    shape = tuple(arr.shape)
    if len(shape) < 2 or shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name} must have shape (..., 21, 3) in metres; got {shape}")
    if finite:
        ok = bool(torch.isfinite(arr).all()) if B.is_torch(arr) else bool(np.isfinite(arr).all())
        if not ok:
            raise ValueError(f"{name} contains NaN or infinity; expected finite metres")
    return arr


def check_handedness(handedness: str, allow_auto: bool = True) -> str:
    allowed = _HANDEDNESS if allow_auto else _HANDEDNESS[:2]
    if handedness not in allowed:
        raise ValueError(f"handedness must be one of {allowed}; got {handedness!r}")
    return handedness


def evaluate_right(joints: Array) -> dict[str, Array]:
    """All constrained quantities of right-hand joints (..., 21, 3): {family: (..., K)}."""
    bones = bone_vectors(joints)
    lengths = B.norm(bones)
    ref = lengths[..., REFERENCE_BONE[1] - 1]
    ratio = lengths / B.clip(ref, B.EPS, np.inf)[..., None]
    palm = root_geometry_right(joints, ref)
    flex, abd = finger_angles_right(joints)
    lead = tuple(joints.shape[:-2])
    return {
        "bone_length": ratio,
        "root_angle": palm["angle"],
        "root_curvature": palm["curvature"],
        "palm_normal_angle": palm["normal_angle"],
        "flexion": flex.reshape(*lead, 15),
        "abduction": abd.reshape(*lead, 15),
    }


def interval_excess(x: Array, lo: Array, hi: Array) -> Array:
    """The interval penalty I(x; lo, hi) = max(lo - x, 0) + max(x - hi, 0), elementwise."""
    return B.relu(lo - x) + B.relu(x - hi)


def excess_right(joints: Array, limits: Limits) -> dict[str, Array]:
    """{family: (..., K) interval excess} of right-hand joints (0 where satisfied)."""
    values = evaluate_right(joints)
    out = {}
    for fam, _ in FAMILIES:
        lo, hi = limits.lo_hi(fam, values[fam])
        out[fam] = interval_excess(values[fam], lo, hi)
    return out


def total_excess_right(joints: Array, limits: Limits) -> Array:
    """(...,) sum of all interval excesses (radians, ratios and curvature mixed)."""
    ex = excess_right(joints, limits)
    return sum(ex[f].sum(-1) for f, _ in FAMILIES)


def to_right(joints: Array, handedness: str, limits: Limits) -> tuple[Array, Array]:
    """Mirror left hands into right hands.

    Returns:
        (right-hand joints (..., 21, 3), is_left (...,) bool numpy/torch). With ``"auto"``
        each pose takes the chirality with the smaller total violation (ties: right).
    """
    lead = tuple(joints.shape[:-2])
    is_left: Array
    if handedness == "right" or handedness == "left":
        flag = handedness == "left"
        if B.is_torch(joints):
            is_left = torch.full(lead, flag, dtype=torch.bool, device=joints.device)
        else:
            is_left = np.full(lead, flag)
        return (mirror_x(joints) if flag else joints), is_left
    mirrored = mirror_x(joints)
    if B.is_torch(joints):
        with torch.no_grad():
            is_left = total_excess_right(mirrored, limits) < total_excess_right(joints, limits)
    else:
        is_left = total_excess_right(mirrored, limits) < total_excess_right(joints, limits)
    return B.where(is_left[..., None, None], mirrored, joints), is_left
