"""The 21-joint hand skeleton: joint names, parents, bones, fingers and joint-order conversions.

Joint order is the FreiHAND / MediaPipe order used everywhere in handpose::

    0 wrist
    1-4   thumb  CMC, MCP, IP, TIP
    5-8   index  MCP, PIP, DIP, TIP
    9-12  middle MCP, PIP, DIP, TIP
    13-16 ring   MCP, PIP, DIP, TIP
    17-20 pinky  MCP, PIP, DIP, TIP

A *bone* is a (parent, child) pair; the 20 bones are listed in chain order (``BONES[i]`` has
child ``i + 1``), so a loop over ``BONES`` always visits a parent before its children.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "Joint",
    "NUM_JOINTS",
    "NUM_BONES",
    "PARENTS",
    "BONES",
    "FINGERS",
    "FINGER_NAMES",
    "ROOT_JOINTS",
    "REFERENCE_BONE",
    "JOINT_ORDERS",
    "convert_joint_order",
]


class Joint(IntEnum):
    """Index of each of the 21 hand joints (FreiHAND / MediaPipe order)."""

    WRIST = 0
    THUMB_CMC = 1
    THUMB_MCP = 2
    THUMB_IP = 3
    THUMB_TIP = 4
    INDEX_MCP = 5
    INDEX_PIP = 6
    INDEX_DIP = 7
    INDEX_TIP = 8
    MIDDLE_MCP = 9
    MIDDLE_PIP = 10
    MIDDLE_DIP = 11
    MIDDLE_TIP = 12
    RING_MCP = 13
    RING_PIP = 14
    RING_DIP = 15
    RING_TIP = 16
    PINKY_MCP = 17
    PINKY_PIP = 18
    PINKY_DIP = 19
    PINKY_TIP = 20


NUM_JOINTS: Final = 21
NUM_BONES: Final = 20

#: Parent of each joint (-1 for the wrist, the root of the kinematic tree).
PARENTS: Final[tuple[int, ...]] = (
    -1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19,
)

#: The 20 bones as (parent, child); ``BONES[i] == (PARENTS[i + 1], i + 1)``.
BONES: Final[tuple[tuple[int, int], ...]] = tuple((PARENTS[c], c) for c in range(1, NUM_JOINTS))

FINGER_NAMES: Final[tuple[str, ...]] = ("thumb", "index", "middle", "ring", "pinky")

#: The four joints of each finger, proximal to distal (thumb: CMC, MCP, IP, TIP).
FINGERS: Final[tuple[tuple[int, int, int, int], ...]] = tuple(
    (1 + 4 * f, 2 + 4 * f, 3 + 4 * f, 4 + 4 * f) for f in range(5)
)

#: The first joint of each finger; wrist -> ROOT_JOINTS[f] are the five root (metacarpal) bones.
ROOT_JOINTS: Final[tuple[int, ...]] = tuple(f[0] for f in FINGERS)

#: The reference bone of the 2.5D representation: middle MCP -> middle PIP (FreiHAND's scale).
REFERENCE_BONE: Final[tuple[int, int]] = (int(Joint.MIDDLE_MCP), int(Joint.MIDDLE_PIP))


def _rhd_index() -> tuple[int, ...]:
    # RHD per hand: 0 wrist, then per finger (thumb, index, middle, ring, little) tip -> base.
    order = [0]
    for f in range(5):
        base = 1 + 4 * f
        order += [base + 3, base + 2, base + 1, base]
    return tuple(order)


def _interhand_index() -> tuple[int, ...]:
    # InterHand2.6M per hand: per finger (thumb ... little) tip -> base (0-19), wrist 20.
    order = [20]
    for f in range(5):
        base = 4 * f
        order += [base + 3, base + 2, base + 1, base]
    return tuple(order)


#: For each named order, ``index[k]`` is the position in that order of our joint k.
JOINT_ORDERS: Final[dict[str, tuple[int, ...]]] = {
    "freihand": tuple(range(NUM_JOINTS)),
    "mediapipe": tuple(range(NUM_JOINTS)),
    "handpose": tuple(range(NUM_JOINTS)),
    "rhd": _rhd_index(),
    "interhand": _interhand_index(),
}


def _order(name: str) -> np.ndarray:
    key = name.lower()
    if key not in JOINT_ORDERS:
        raise ValueError(
            f"unknown joint order {name!r}; expected one of {sorted(JOINT_ORDERS)}"
        )
    return np.asarray(JOINT_ORDERS[key])


def convert_joint_order(
    joints: npt.ArrayLike, src: str, dst: str = "handpose"
) -> np.ndarray:
    """Reorder the joint axis of ``joints`` from order ``src`` to order ``dst``.

    Args:
        joints: array (..., 21, D) — any leading batch dims, any per-joint payload D
            (2 for pixels, 3 for metres, ...). A torch tensor works too (it is indexed, not
            copied to numpy) when passed through :func:`numpy.asarray`-compatible indexing.
        src, dst: ``"handpose"`` (= ``"freihand"`` = ``"mediapipe"``), ``"rhd"``,
            ``"interhand"``.

    Returns:
        array (..., 21, D) in order ``dst``.

    Raises:
        ValueError: unknown order name, or the joint axis (second to last) is not 21.
    """
    src_idx, dst_idx = _order(src), _order(dst)
    arr: Any = joints if hasattr(joints, "shape") else np.asarray(joints)  # torch stays torch
    shape = tuple(arr.shape)
    if len(shape) < 2 or shape[-2] != NUM_JOINTS:
        raise ValueError(f"joints must have shape (..., 21, D); got {shape}")
    # ours[k] = src[src_idx[k]];  dst[dst_idx[k]] = ours[k]  =>  dst[m] = src[src_idx[inv_dst[m]]]
    inv_dst = np.empty(NUM_JOINTS, dtype=np.int64)
    inv_dst[dst_idx] = np.arange(NUM_JOINTS)
    gather = src_idx[inv_dst]
    return arr[..., gather, :]  # type: ignore[no-any-return]

