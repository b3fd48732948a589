"""Public joint-angle API: angles of a pose in the local frames of METHODS §3, palm angles,
forward kinematics (the exact inverse of :func:`joint_angles`) and handedness inference.

numpy in -> numpy out, torch in -> torch out (differentiable); any leading batch dims.
Frame conventions: :mod:`handpose.core.biomech.frames`. numpy inputs are checked for NaN and
infinity; torch inputs only for shape (a finiteness check would synchronise the device).
"""

from __future__ import annotations

import numpy as np
import torch

from ..handmodel import HandModel
from ..skeleton import NUM_BONES, NUM_JOINTS
from . import _backend as B
from ._backend import Array
from .constraints import check_handedness, check_joints, limits_for, to_right
from .frames import (
    FINGER_BONE_INDEX,
    ROOT_BONE_INDEX,
    finger_angles_right,
    finger_fk_right,
    mirror_x,
    root_geometry_right,
    root_vectors,
)

__all__ = [
    "joint_angles",
    "root_angles",
    "root_curvature",
    "palm_normal_angles",
    "forward_kinematics",
    "is_left_hand",
]


def joint_angles(
    joints: Array, handedness: str = "right", model: HandModel | None = None
) -> tuple[Array, Array]:
    """Flexion and abduction of the 15 finger bones.

    Args:
        joints: (..., 21, 3) any unit (metres usually), any rigid frame.
        handedness: ``"right"``, ``"left"`` (mirrored to a right hand first) or ``"auto"``
            (per pose, the chirality with the smaller total constraint violation).
        model: hand model for ``"auto"`` (default: the shipped one).

    Returns:
        (flexion, abduction), each (..., 15) radians in chain order (thumb CMC->MCP,
        MCP->IP, IP->TIP, index MCP->PIP, PIP->DIP, DIP->TIP, middle ..., pinky ...).
        Flexion is positive towards the palm, abduction positive towards the thumb.
        Undefined angles (zero-length bones) are 0; never NaN for finite input.
    """
    j = check_joints(joints, finite=not B.is_torch(joints))
    check_handedness(handedness)
    right, _ = to_right(j, handedness, limits_for(model))
    flex, abd = finger_angles_right(right)
    lead = tuple(j.shape[:-2])
    return flex.reshape(*lead, 15), abd.reshape(*lead, 15)


def root_angles(joints: Array) -> Array:
    """(..., 21, 3) -> (..., 4) radians: angles between neighbouring root bones (wrist ->
    thumb CMC / index / middle / ring / pinky MCP). The same for both hands."""
    j = check_joints(joints, finite=not B.is_torch(joints))
    return root_geometry_right(j)["angle"]


def palm_normal_angles(joints: Array) -> Array:
    """(..., 21, 3) -> (..., 3) radians between consecutive palm normals n_{i-1}, n_i (at the
    index, middle and ring root bones). The same for both hands."""
    j = check_joints(joints, finite=not B.is_torch(joints))
    return root_geometry_right(j)["normal_angle"]


def root_curvature(joints: Array, handedness: str = "right") -> Array:
    """(..., 21, 3) -> (..., 4) METHODS §3 curvature between neighbouring root bones, computed
    on bones divided by the reference bone length (unitless; positive = cupped palm).

    ``handedness`` is ``"right"`` or ``"left"`` (mirroring flips the curvature's sign).
    """
    j = check_joints(joints, finite=not B.is_torch(joints))
    check_handedness(handedness, allow_auto=False)
    return root_geometry_right(mirror_x(j) if handedness == "left" else j)["curvature"]


def _as_like(x: object, like: Array, name: str) -> Array:
    if B.is_torch(like):
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x), dtype=like.dtype, device=like.device)
        return x.to(like.dtype)
    if isinstance(x, torch.Tensor):
        raise ValueError(f"{name} is a torch tensor but palm is a numpy array; use one type")
    return np.asarray(x, dtype=np.float64)


def forward_kinematics(
    palm: Array,
    flexion: Array,
    abduction: Array,
    bone_lengths: Array,
    handedness: str = "right",
) -> Array:
    """Joints from a palm, joint angles and bone lengths: the inverse of :func:`joint_angles`.

    Args:
        palm: (..., 6, 3) joints 0, 1, 5, 9, 13, 17 (wrist, thumb CMC, finger MCPs), or full
            (..., 21, 3) joints whose palm is used. Only the wrist position and the root bone
            DIRECTIONS are used; the root bone lengths come from ``bone_lengths``.
        flexion, abduction: (..., 15) radians, chain order, in the frames of
            :func:`joint_angles`.
        bone_lengths: (..., 20) in the palm's units (metres), BONES order (root bones included).
        handedness: ``"right"`` or ``"left"`` (the palm and the result are left hands; the
            angles are those :func:`joint_angles` reports with ``handedness="left"``).

    Returns:
        (..., 21, 3) joints; the leading dims of all inputs are broadcast.

    Raises:
        ValueError: a shape is wrong or the handedness unknown.
    """
    check_handedness(handedness, allow_auto=False)
    if not B.is_torch(palm):
        palm = np.asarray(palm, dtype=np.float64)
    shape = tuple(palm.shape)
    if len(shape) < 2 or shape[-2:] not in ((6, 3), (NUM_JOINTS, 3)):
        raise ValueError(f"palm must have shape (..., 6, 3) or (..., 21, 3); got {shape}")
    flexion = _as_like(flexion, palm, "flexion")
    abduction = _as_like(abduction, palm, "abduction")
    bone_lengths = _as_like(bone_lengths, palm, "bone_lengths")
    for name, a, k in (("flexion", flexion, 15), ("abduction", abduction, 15),
                       ("bone_lengths", bone_lengths, NUM_BONES)):
        if a.ndim < 1 or a.shape[-1] != k:
            raise ValueError(f"{name} must have shape (..., {k}); got {tuple(a.shape)}")
    lead = tuple(np.broadcast_shapes(
        shape[:-2], tuple(flexion.shape[:-1]), tuple(abduction.shape[:-1]),
        tuple(bone_lengths.shape[:-1]),
    ))

    def bc(a: Array, tail: tuple[int, ...]) -> Array:
        if B.is_torch(a):
            return a.expand(*lead, *tail)
        return np.broadcast_to(a, lead + tail)

    p = palm if handedness == "right" else mirror_x(palm)
    p = bc(p, shape[-2:])
    wrist = p[..., :1, :]
    roots = root_vectors(p)  # (..., 5, 3)
    lengths = bc(bone_lengths, (NUM_BONES,))
    root_len = lengths[..., list(ROOT_BONE_INDEX)]
    palm6 = B.cat([wrist, wrist + B.normalise(roots) * root_len[..., None]], -2)
    finger_len = lengths[..., [i for f in FINGER_BONE_INDEX for i in f]]
    out = finger_fk_right(
        palm6,
        bc(flexion, (15,)).reshape(*lead, 5, 3),
        bc(abduction, (15,)).reshape(*lead, 5, 3),
        finger_len.reshape(*lead, 5, 3),
    )
    return out if handedness == "right" else mirror_x(out)


def is_left_hand(joints: Array, model: HandModel | None = None) -> Array:
    """(..., 21, 3) -> (...,) bool: True where the pose violates the constraints less as a
    left hand than as a right hand (ties count as right)."""
    j = check_joints(joints, finite=not B.is_torch(joints))
    _, is_left = to_right(j, "auto", limits_for(model))
    return is_left
