"""How the constraint intervals and the rest pose of ``assets/hand_model.json`` are derived.

No public table of hand joint limits exists (METHODS §3). The shipped intervals are the union
of an anatomical prior (:data:`ANATOMICAL_PRIORS`, right hand, degrees) and the range measured
on ALL real labelled poses of the development data (``real_eval_hgc`` 400 frames,
``real_rgbd`` 25 frames) widened by a small margin, then rounded outwards. The union keeps every
real label feasible (their label noise included) while never narrowing the anatomical range.
This module is the recipe; tests check that the shipped file is what it produces.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from .constraints import evaluate_right
from .frames import finger_fk_right

__all__ = [
    "ANATOMICAL_PRIORS",
    "ANGLE_MARGIN_DEG",
    "CURVATURE_MARGIN",
    "LENGTH_SLACK",
    "REST_FINGER_ANGLES_DEG",
    "calibrate_limits",
    "make_rest_pose",
]

_MCP = ((-30.0, 90.0), (-20.0, 20.0))
_PIP = ((0.0, 110.0), (-10.0, 10.0))
_DIP = ((0.0, 90.0), (-10.0, 10.0))

#: Anatomical prior intervals (right hand, degrees; curvature unitless). Finger bones in chain
#: order as ((flexion lo, hi), (abduction lo, hi)): MCP flexion -30..90, abduction +-20; PIP
#: 0..110; DIP 0..90; +-10 abduction beyond the MCP (the minimal-rotation frames turn part of a
#: flexed finger's twist into apparent abduction); the thumb wider.
ANATOMICAL_PRIORS: Final[dict[str, tuple]] = {
    "joints": (
        ((-30.0, 60.0), (-45.0, 20.0)),  # thumb CMC->MCP (the first metacarpal)
        ((-10.0, 60.0), (-20.0, 20.0)),  # thumb MCP->IP
        ((-20.0, 90.0), (-10.0, 10.0)),  # thumb IP->TIP
        _MCP, _PIP, _DIP,  # index
        _MCP, _PIP, _DIP,  # middle
        _MCP, _PIP, _DIP,  # ring
        _MCP, _PIP, _DIP,  # pinky
    ),
    # neighbouring root bones thumb-index, index-middle, middle-ring, ring-pinky
    "root_angle": ((20.0, 70.0), (3.0, 30.0), (3.0, 30.0), (3.0, 35.0)),
    # the palm cups (positive) but hardly bends backwards
    "root_curvature": ((-0.5, 1.0),) * 4,
    # consecutive palm planes (at index, middle, ring)
    "palm_normal_angle": ((0.0, 60.0),) * 3,
}
#: Data ranges are widened by this many degrees (curvature: by CURVATURE_MARGIN), then the
#: bounds are rounded outwards to whole degrees (curvature: to 0.05).
ANGLE_MARGIN_DEG: Final = 3.0
CURVATURE_MARGIN: Final = 0.1
#: Bone length ratio ranges: [min, max] over the real data and the template, times
#: (1 - LENGTH_SLACK, 1 + LENGTH_SLACK), rounded outwards to 0.001. The reference bone is [1, 1].
LENGTH_SLACK: Final = 0.05
_MIN_ROOT_ANGLE_DEG = 1.0  # root planes must stay defined

#: Rest pose finger angles (degrees, chain order): a relaxed open hand.
REST_FINGER_ANGLES_DEG: Final[dict[str, tuple[float, ...]]] = {
    "flexion": (20.0, 10.0, 10.0) + (10.0, 15.0, 10.0) * 4,
    "abduction": (-15.0, 0.0, 0.0) + (0.0, 0.0, 0.0) * 4,
}


def _union(prior: np.ndarray, lo: np.ndarray, hi: np.ndarray, step: float) -> np.ndarray:
    lo = np.minimum(prior[:, 0], lo)
    hi = np.maximum(prior[:, 1], hi)
    out = np.stack([np.floor(lo / step + 1e-9) * step, np.ceil(hi / step - 1e-9) * step], -1)
    return np.round(out, 6)


def calibrate_limits(
    joints_right: np.ndarray, template_lengths: np.ndarray
) -> dict[str, np.ndarray]:
    """Derive every constraint interval from real labelled RIGHT-hand poses.

    Args:
        joints_right: (N, 21, 3) metres, real labelled poses (left hands mirrored first).
        template_lengths: (20,) metres, the model's bone lengths (kept inside the ranges).

    Returns:
        dict with ``flexion_deg`` (15, 2), ``abduction_deg`` (15, 2), ``root_angle_deg``
        (4, 2), ``root_curvature`` (4, 2), ``palm_normal_angle_deg`` (3, 2),
        ``bone_length_range`` (20, 2) and ``median_root_angle_deg`` (4,) (for the rest pose).
    """
    j = np.asarray(joints_right, dtype=np.float64)
    if j.ndim != 3 or j.shape[1:] != (21, 3) or len(j) == 0:
        raise ValueError(f"joints_right must have shape (N, 21, 3), N > 0; got {j.shape}")
    v = evaluate_right(j)
    deg = {k: np.rad2deg(v[k]) for k in ("root_angle", "palm_normal_angle", "flexion", "abduction")}
    m = ANGLE_MARGIN_DEG
    pri = np.asarray(ANATOMICAL_PRIORS["joints"], dtype=np.float64)  # (15, 2, 2)
    out: dict[str, np.ndarray] = {}
    priors = {
        "flexion": pri[:, 0],
        "abduction": pri[:, 1],
        "root_angle": np.asarray(ANATOMICAL_PRIORS["root_angle"], dtype=np.float64),
        "palm_normal_angle": np.asarray(ANATOMICAL_PRIORS["palm_normal_angle"], dtype=np.float64),
    }
    for fam, p in priors.items():
        out[f"{fam}_deg"] = _union(p, deg[fam].min(0) - m, deg[fam].max(0) + m, 1.0)
    out["root_angle_deg"][:, 0] = np.maximum(out["root_angle_deg"][:, 0], _MIN_ROOT_ANGLE_DEG)
    out["palm_normal_angle_deg"][:, 0] = np.maximum(out["palm_normal_angle_deg"][:, 0], 0.0)
    c, cm = v["root_curvature"], CURVATURE_MARGIN
    p = np.asarray(ANATOMICAL_PRIORS["root_curvature"], dtype=np.float64)
    out["root_curvature"] = _union(p, c.min(0) - cm, c.max(0) + cm, 0.05)
    tmpl = template_lengths / template_lengths[9]
    r = v["bone_length"]
    rng = np.stack([np.minimum(r.min(0), tmpl), np.maximum(r.max(0), tmpl)], -1)
    rng = rng * np.array([1.0 - LENGTH_SLACK, 1.0 + LENGTH_SLACK])
    rng = np.stack([np.floor(rng[:, 0] * 1000 + 1e-9), np.ceil(rng[:, 1] * 1000 - 1e-9)], -1)
    rng = np.round(rng / 1000.0, 6)
    rng[9] = 1.0
    out["bone_length_range"] = rng
    out["median_root_angle_deg"] = np.median(deg["root_angle"], axis=0)
    return out


def make_rest_pose(
    bone_lengths: np.ndarray, root_angles_deg: np.ndarray
) -> np.ndarray:
    """The canonical rest pose: a flat palm and a relaxed open hand.

    The palm is planar (z = 0): the middle root bone along +y and the others fanned out in the
    palm plane by ``root_angles_deg`` (thumb-index, index-middle, middle-ring, ring-pinky),
    positive towards the thumb (+x). A planar template palm has zero curvature for ANY root
    bone lengths, which the correction relies on. Fingers follow
    :data:`REST_FINGER_ANGLES_DEG` through the forward kinematics.

    Args:
        bone_lengths: (20,) metres.
        root_angles_deg: (4,) degrees, each in (0, 90).

    Returns:
        (21, 3) metres, right hand in the hand frame (+x thumb, +y middle finger, +z volar).
    """
    lengths = np.asarray(bone_lengths, dtype=np.float64)
    ang = np.asarray(root_angles_deg, dtype=np.float64)
    if lengths.shape != (20,) or not np.all(lengths > 0):
        raise ValueError(f"bone_lengths must be 20 positive metres; got shape {lengths.shape}")
    if ang.shape != (4,) or not np.all((ang > 0) & (ang < 90)):
        raise ValueError(f"root_angles_deg must be 4 angles in (0, 90) deg; got {ang}")
    # angle of each root bone from +y towards +x: middle 0, index +a1, thumb +a1+a0, ...
    theta = np.deg2rad(np.array([ang[1] + ang[0], ang[1], 0.0, -ang[2], -ang[2] - ang[3]]))
    root_len = lengths[[0, 4, 8, 12, 16]]
    palm = np.zeros((6, 3))
    palm[1:, 0] = root_len * np.sin(theta)
    palm[1:, 1] = root_len * np.cos(theta)
    flex = np.deg2rad(np.asarray(REST_FINGER_ANGLES_DEG["flexion"])).reshape(5, 3)
    abd = np.deg2rad(np.asarray(REST_FINGER_ANGLES_DEG["abduction"])).reshape(5, 3)
    finger_len = np.delete(lengths, [0, 4, 8, 12, 16]).reshape(5, 3)
    return np.asarray(finger_fk_right(palm, flex, abd, finger_len))
