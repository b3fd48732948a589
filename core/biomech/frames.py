"""Local joint frames, joint angles and forward kinematics of the hand (METHODS §3).

Everything here works on a RIGHT hand (left hands are mirrored by the public wrappers in
:mod:`.angles`) and accepts numpy arrays or torch tensors with any leading batch dims.

Conventions (fixed here, used by the losses, the correction and the pose sampler):

* Root (metacarpal) bones ``b_f = J[ROOT_JOINTS[f]] - J[0]`` for the fingers f = 0..4
  (thumb, index, middle, ring, pinky).
* Palm normals ``n_i = normalise(b_{i+1} x b_i)`` (i = 0..3), edge normals ``e_0 = n_0``,
  ``e_4 = n_3``, ``e_i = normalise(n_{i-1} + n_i)``. For a right hand they point out of the
  back of the hand (dorsal).
* Frame of a finger's first bone: ``z`` = root bone direction, ``x = -e_f`` (volar, towards
  the palm side), ``y = z x x`` (towards the thumb). Frames are stored as (..., 3, 3) matrices
  whose COLUMNS are x, y, z.
* A bone with unit direction ``u`` in its frame (``u = F^T b / |b|``) has
  ``flexion = atan2(u_x, u_z)`` (positive towards the palm) and
  ``abduction = atan2(u_y, sqrt(u_x^2 + u_z^2))`` (positive towards the thumb), i.e.
  ``u = (cos a sin f, sin a, cos a cos f)``.
* The next bone's frame is the previous one rotated by the minimal rotation taking its ``z``
  onto the current bone direction.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from ..skeleton import FINGERS, NUM_JOINTS, PARENTS, REFERENCE_BONE, ROOT_JOINTS
from . import _backend as B
from ._backend import Array

__all__ = [
    "PALM_JOINTS",
    "ROOT_BONE_INDEX",
    "FINGER_BONE_INDEX",
    "FINGER_BONE_NAMES",
    "mirror_x",
    "root_vectors",
    "palm_normals",
    "root_frames",
    "local_direction",
    "direction_angles",
    "carry_frame",
    "bone_vectors",
    "palm_quantities",
    "finger_angles_right",
    "finger_fk_right",
    "root_geometry_right",
]

#: The six palm joints: wrist, thumb CMC and the four finger MCPs.
PALM_JOINTS: Final[tuple[int, ...]] = (0, *ROOT_JOINTS)
#: Index into BONES (child - 1) of the five root bones wrist -> ROOT_JOINTS[f].
ROOT_BONE_INDEX: Final[tuple[int, ...]] = tuple(r - 1 for r in ROOT_JOINTS)
#: (5, 3) index into BONES of each finger's three bones, proximal to distal.
FINGER_BONE_INDEX: Final[tuple[tuple[int, ...], ...]] = tuple(
    tuple(j - 1 for j in f[1:]) for f in FINGERS
)
_FINGER_JOINTS = np.asarray(FINGERS)  # (5, 4)
_FINGER_LEVEL_NAMES = (("CMC", "MCP", "IP", "TIP"),) + (("MCP", "PIP", "DIP", "TIP"),) * 4
_NAMES = ("thumb", "index", "middle", "ring", "pinky")
#: 15 names "index MCP->PIP" in chain order.
FINGER_BONE_NAMES: Final[tuple[str, ...]] = tuple(
    f"{_NAMES[f]} {_FINGER_LEVEL_NAMES[f][k]}->{_FINGER_LEVEL_NAMES[f][k + 1]}"
    for f in range(5) for k in range(3)
)


def mirror_x(joints: Array) -> Array:
    """Negate the x coordinate (turns a left hand into a right hand and back). (..., 3)."""
    sign = np.array([-1.0, 1.0, 1.0])
    if B.is_torch(joints):
        import torch

        return joints * torch.as_tensor(sign, dtype=joints.dtype, device=joints.device)
    return joints * sign


def root_vectors(joints: Array) -> Array:
    """(..., 21, 3) joints (or (..., 6, 3) palm joints 0, 1, 5, 9, 13, 17) -> (..., 5, 3) root
    bone vectors wrist -> thumb CMC / finger MCPs, in the input's units."""
    if joints.shape[-2] == NUM_JOINTS:
        return joints[..., list(ROOT_JOINTS), :] - joints[..., :1, :]
    return joints[..., 1:, :] - joints[..., :1, :]


def _palm_normals(roots: Array) -> tuple[Array, Array, Array]:
    c = B.cross(roots[..., 1:, :], roots[..., :-1, :])  # b_{i+1} x b_i
    c_len = B.norm(c)
    n = c / c_len[..., None]
    e_mid = B.normalise(n[..., :-1, :] + n[..., 1:, :])
    e = B.cat([n[..., :1, :], e_mid, n[..., -1:, :]], -2)
    return c_len, n, e


def palm_normals(roots: Array) -> tuple[Array, Array]:
    """Palm normals of (..., 5, 3) root bone vectors.

    Returns:
        n: (..., 4, 3) unit normals of the planes of neighbouring root bones,
        e: (..., 5, 3) unit edge normals (one per root bone, orthogonal to it).
    Zero where undefined (parallel bones, opposite normals); never NaN.
    """
    _, n, e = _palm_normals(roots)
    return n, e


def root_frames(roots: Array) -> Array:
    """(..., 5, 3) root bone vectors -> (..., 5, 3, 3) first-bone frames, columns x, y, z."""
    _, e = palm_normals(roots)
    z = B.normalise(roots)
    x = -e
    x = B.normalise(x - B.dot(x, z)[..., None] * z)
    y = B.cross(z, x)
    return B.stack([x, y, z], -1)


def local_direction(flexion: Array, abduction: Array) -> Array:
    """Unit direction (..., 3) in a bone frame from flexion and abduction (radians)."""
    ca = B.cos(abduction)
    return B.stack([ca * B.sin(flexion), B.sin(abduction), ca * B.cos(flexion)], -1)


def direction_angles(u: Array) -> tuple[Array, Array]:
    """(..., 3) direction in a bone frame (any length) -> (flexion, abduction) radians."""
    flex = B.atan2(u[..., 0], u[..., 2])
    abd = B.atan2(u[..., 1], B.sqrt(u[..., 0] ** 2 + u[..., 2] ** 2))
    return flex, abd


def carry_frame(frame: Array, u: Array, eps: float = 1e-9) -> Array:
    """Rotate ``frame`` (..., 3, 3) by the minimal rotation taking its z onto the unit local
    direction ``u`` (..., 3). Exact for ``u_z > -1``; finite (not a rotation) at ``u_z = -1``."""
    ux, uy, uz = u[..., 0], u[..., 1], u[..., 2]
    k = 1.0 / B.clip(1.0 + uz, eps, 2.0)
    col_x = B.stack([1.0 - ux * ux * k, -ux * uy * k, -ux], -1)
    col_y = B.stack([-ux * uy * k, 1.0 - uy * uy * k, -uy], -1)
    rot = B.stack([col_x, col_y, u], -1)  # columns
    return frame @ rot


def _finger_bones(joints: Array) -> Array:
    """(..., 21, 3) -> (..., 5, 3, 3) finger bone vectors [finger, level, xyz]."""
    j = joints[..., _FINGER_JOINTS.reshape(-1), :]
    j = j.reshape(*joints.shape[:-2], 5, 4, 3)
    return j[..., 1:, :] - j[..., :-1, :]


def finger_angles_right(joints: Array) -> tuple[Array, Array]:
    """Flexion and abduction (..., 5, 3) radians of a right hand's (..., 21, 3) joints."""
    frame = root_frames(root_vectors(joints))
    bones = _finger_bones(joints)
    flex, abd = [], []
    for level in range(3):
        u = B.normalise(B.matTvec(frame, bones[..., level, :]))
        f, a = direction_angles(u)
        flex.append(f)
        abd.append(a)
        if level < 2:
            frame = carry_frame(frame, u)
    return B.stack(flex, -1), B.stack(abd, -1)


def finger_fk_right(palm: Array, flexion: Array, abduction: Array, lengths: Array) -> Array:
    """Forward kinematics of a right hand.

    Args:
        palm: (..., 6, 3) joints 0, 1, 5, 9, 13, 17 (already at their final positions).
        flexion, abduction: (..., 5, 3) radians.
        lengths: (..., 5, 3) finger bone lengths (units of ``palm``).

    Returns:
        (..., 21, 3) joints.
    """
    roots = palm[..., 1:, :] - palm[..., :1, :]
    frame = root_frames(roots)
    parent = palm[..., 1:, :]  # (..., 5, 3)
    chain = [parent]
    for level in range(3):
        u = local_direction(flexion[..., level], abduction[..., level])
        parent = parent + lengths[..., level, None] * B.matvec(frame, u)
        chain.append(parent)
        if level < 2:
            frame = carry_frame(frame, u)
    fingers = B.stack(chain, -2)  # (..., 5, 4, 3)
    flat = fingers.reshape(*fingers.shape[:-3], 20, 3)
    return B.cat([palm[..., :1, :], flat], -2)


def bone_vectors(joints: Array) -> Array:
    """(..., 21, 3) -> (..., 20, 3) bone vectors child - parent in BONES order."""
    return joints[..., 1:, :] - joints[..., list(PARENTS[1:]), :]


def root_geometry_right(joints: Array, ref_length: Array | None = None) -> dict[str, Array]:
    """Palm quantities of a right hand (METHODS §3).

    Args:
        joints: (..., 21, 3).
        ref_length: (...,) scale for the curvature; default the reference bone length.

    Returns:
        dict with ``angle`` (..., 4) radians between neighbouring root bones,
        ``curvature`` (..., 4) on bones divided by the reference length, and
        ``normal_angle`` (..., 3) radians between consecutive palm normals n_{i-1}, n_i.
    """
    roots = root_vectors(joints)
    if ref_length is None:
        ref_length = B.norm(joints[..., REFERENCE_BONE[1], :] - joints[..., REFERENCE_BONE[0], :])
    b = roots / B.clip(ref_length, B.EPS, np.inf)[..., None, None]
    return palm_quantities(b)


def palm_quantities(b: Array) -> dict[str, Array]:
    """Root angles, curvature and normal angles (see :func:`root_geometry_right`) of
    (..., 5, 3) scale-normalised root bone vectors."""
    b0, b1 = b[..., :-1, :], b[..., 1:, :]
    c_len, n, e = _palm_normals(b)
    angle = B.atan2(c_len, B.dot(b0, b1))
    db = b1 - b0
    curv = B.dot(e[..., 1:, :] - e[..., :-1, :], db) / B.clip(B.dot(db, db), B.EPS, np.inf)
    n0, n1 = n[..., :-1, :], n[..., 1:, :]
    normal_angle = B.atan2(B.norm(B.cross(n0, n1)), B.dot(n0, n1))
    return {"angle": angle, "curvature": curv, "normal_angle": normal_angle}
