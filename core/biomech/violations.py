"""Which biomechanical constraints a pose violates, and by how much (METHODS §3).

:func:`violations` lists every violated constraint with readable units (degrees for angles,
ratios and millimetres for bone lengths); :func:`count_violations` is the vectorised count
for statistics (SemiHand reports it per round); :func:`is_feasible` the boolean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import torch

from ..handmodel import HandModel
from ..skeleton import REFERENCE_BONE
from . import _backend as B
from ._backend import Array
from .constraints import (
    FAMILIES,
    Limits,
    check_handedness,
    check_joints,
    constraint_names,
    evaluate_right,
    interval_excess,
    limits_for,
    to_right,
)
from .frames import bone_vectors

__all__ = ["DEFAULT_TOL", "NUM_CONSTRAINTS", "Violation", "violations", "count_violations",
           "is_feasible"]

#: A constraint counts as violated when its excess is above this (radians for angles, ratio
#: for bone lengths, unitless for curvature): 0.0006 deg, or 0.5 um on a 5 cm reference bone.
#: It absorbs the round-off of poses corrected exactly onto a limit, float32 storage included
#: (camera-frame hands within about 1 m of the origin).
DEFAULT_TOL: Final = 1e-5
#: Number of scalar constraints per pose (20 + 4 + 4 + 3 + 15 + 15).
NUM_CONSTRAINTS: Final = sum(k for _, k in FAMILIES)
_ANGULAR = ("root_angle", "palm_normal_angle", "flexion", "abduction")


@dataclass(frozen=True)
class Violation:
    """One violated constraint of one pose.

    Attributes:
        pose: index of the pose in the input's leading dims (``()`` for a single pose).
        family: ``bone_length``, ``root_angle``, ``root_curvature``, ``palm_normal_angle``,
            ``flexion`` or ``abduction``.
        index: constraint index within the family (bone in BONES order, finger bone in chain
            order, neighbour pair).
        name: readable name, e.g. ``"index MCP->PIP"``.
        value, lo, hi, excess: the quantity, its interval and the distance outside it, in
            ``unit``: ``"deg"`` (angles), ``"ratio"`` (bone length / reference bone length) or
            ``"curvature"``.
        excess_mm: bone lengths only: the excess in millimetres (ratio excess times the pose's
            reference bone length); None otherwise.
        handedness: ``"right"`` or ``"left"``: the chirality the pose was evaluated as.
    """

    pose: tuple[int, ...]
    family: str
    index: int
    name: str
    value: float
    lo: float
    hi: float
    excess: float
    unit: str
    excess_mm: float | None
    handedness: str

    def __str__(self) -> str:
        mm = f" ({self.excess_mm:.1f} mm)" if self.excess_mm is not None else ""
        return (
            f"pose {self.pose} {self.family} {self.name}: {self.value:.4g} {self.unit} outside "
            f"[{self.lo:.4g}, {self.hi:.4g}] by {self.excess:.4g}{mm}"
        )


def _excess(
    joints: Array, handedness: str, model: HandModel | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray],
           Limits]:
    check_handedness(handedness)
    j = check_joints(joints)
    if B.is_torch(j):
        j = j.detach().to("cpu", torch.float64).numpy()
    lim = limits_for(model)
    right, is_left = to_right(j, handedness, lim)
    values = evaluate_right(right)
    excess = {}
    for fam, _ in FAMILIES:
        lo, hi = lim.lo_hi(fam, values[fam])
        excess[fam] = interval_excess(values[fam], lo, hi)
    return j, right, is_left, values, excess, lim


def count_violations(
    joints: Array,
    handedness: str = "right",
    tol: float = DEFAULT_TOL,
    model: HandModel | None = None,
) -> np.ndarray:
    """(..., 21, 3) -> (...,) int64 numpy: number of violated scalar constraints per pose
    (0..:data:`NUM_CONSTRAINTS`). ``handedness``: ``"right"``, ``"left"`` or ``"auto"``.

    Raises:
        ValueError: bad shape, NaN/infinite joints, unknown handedness.
    """
    _, _, _, _, excess, _ = _excess(joints, handedness, model)
    return sum((excess[f] > tol).sum(-1) for f, _ in FAMILIES).astype(np.int64)


def is_feasible(
    joints: Array,
    handedness: str = "right",
    tol: float = DEFAULT_TOL,
    model: HandModel | None = None,
) -> np.ndarray:
    """(..., 21, 3) -> (...,) bool numpy: True where no constraint is violated."""
    return count_violations(joints, handedness, tol, model) == 0


def violations(
    joints: Array,
    handedness: str = "right",
    tol: float = DEFAULT_TOL,
    model: HandModel | None = None,
) -> list[Violation]:
    """Every violated constraint of every pose, poses in order, families in report order.

    Args:
        joints: (..., 21, 3) metres (numpy or torch).
        handedness: ``"right"``, ``"left"`` or ``"auto"`` (per pose).
        tol: excess above which a constraint counts (radians / ratio / curvature).
        model: hand model (default shipped).

    Returns:
        list of :class:`Violation` (empty for a feasible pose).
    """
    j, _, is_left, values, excess, lim = _excess(joints, handedness, model)
    lead = j.shape[:-2]
    ref_mm = 1000.0 * np.linalg.norm(bone_vectors(j)[..., REFERENCE_BONE[1] - 1, :], axis=-1)
    out: list[Violation] = []
    hits = {fam: np.argwhere(excess[fam] > tol) for fam, _ in FAMILIES}
    rows = sorted(
        (tuple(int(i) for i in h[:-1]), order, fam, int(h[-1]))
        for order, (fam, _) in enumerate(FAMILIES) for h in hits[fam]
    )
    for pose, _, fam, k in rows:
        scale = 180.0 / np.pi if fam in _ANGULAR else 1.0
        unit = "deg" if fam in _ANGULAR else ("ratio" if fam == "bone_length" else "curvature")
        ex = float(excess[fam][pose + (k,)])
        out.append(Violation(
            pose=pose if lead else (),
            family=fam,
            index=k,
            name=constraint_names(fam)[k],
            value=float(values[fam][pose + (k,)]) * scale,
            lo=float(lim.intervals[fam][k, 0]) * scale,
            hi=float(lim.intervals[fam][k, 1]) * scale,
            excess=ex * scale,
            unit=unit,
            excess_mm=ex * float(ref_mm[pose]) if fam == "bone_length" else None,
            handedness="left" if bool(is_left[pose]) else "right",
        ))
    return out
