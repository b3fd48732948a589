"""The 41-sphere hand model of Wan et al. (METHODS §6) placed on a 21-joint skeleton.

Each sphere centre is a fixed convex combination of joints (``sphere_weights`` in
``assets/hand_model.json``), so the model follows any pose; each radius is the published
radius x the file's ``radius_scale`` (calibrated on real RGB-D frames) x a per-hand size factor.

Parts: every sphere belongs to one *part*: the palm (0) or a finger (1 thumb ... 5 pinky), read
from the sphere names of the hand model (``palm_*``, ``thumb_*``, ...). :func:`collision_pairs`
lists the pairs the collision energy checks: spheres of different parts, except a palm sphere
against the proximal-phalanx spheres of a finger (those rest on the palm by construction and
would always "collide").
"""

from __future__ import annotations

from functools import lru_cache

import torch

from .handmodel import HandModel, load_hand_model
from .skeleton import BONES, FINGER_NAMES, NUM_JOINTS

__all__ = [
    "NUM_SPHERES",
    "PART_NAMES",
    "sphere_parts",
    "collision_pairs",
    "estimate_hand_scale",
    "spheres_from_joints",
]

NUM_SPHERES = 41

#: Part names; ``sphere_parts()[i]`` indexes this tuple.
PART_NAMES: tuple[str, ...] = ("palm", *FINGER_NAMES)


def _model(model: HandModel | None) -> HandModel:
    return load_hand_model() if model is None else model


@lru_cache(maxsize=8)
def _parts_of(names: tuple[str, ...]) -> tuple[int, ...]:
    parts = []
    for n in names:
        prefix = n.split("_", 1)[0]
        if prefix not in PART_NAMES:
            raise ValueError(
                f"sphere name {n!r} does not start with a part name {PART_NAMES}"
            )
        parts.append(PART_NAMES.index(prefix))
    return tuple(parts)


def sphere_parts(model: HandModel | None = None) -> tuple[int, ...]:
    """Part of each of the 41 spheres: 0 palm, 1 thumb, 2 index, 3 middle, 4 ring, 5 pinky.

    Args:
        model: the hand model (``None``: the shipped one).
    Returns:
        tuple of 41 ints, indices into :data:`PART_NAMES`.
    """
    return _parts_of(_model(model).sphere_names)


@lru_cache(maxsize=8)
def _pairs_of(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    parts = _parts_of(names)
    proximal = ["_proximal_" in n for n in names]
    pairs = []
    for j in range(len(names)):
        for k in range(j + 1, len(names)):
            if parts[j] == parts[k]:
                continue
            if (parts[j] == 0 and proximal[k]) or (parts[k] == 0 and proximal[j]):
                continue
            pairs.append((j, k))
    return tuple(pairs)


def collision_pairs(model: HandModel | None = None) -> torch.Tensor:
    """Sphere pairs checked by the collision energy.

    A pair qualifies when its spheres belong to different parts (palm / five fingers), except
    palm spheres against a finger's proximal-phalanx spheres (names containing
    ``_proximal_``), which touch the palm in every pose.

    Returns:
        (P, 2) int64 tensor of sphere indices, j < k (P = 580 for the shipped model).
    """
    return torch.tensor(_pairs_of(_model(model).sphere_names), dtype=torch.int64)


def _check_joints(joints: torch.Tensor) -> None:
    if not isinstance(joints, torch.Tensor) or not joints.is_floating_point():
        raise ValueError(
            f"joints must be a floating torch tensor (..., 21, 3); got {type(joints).__name__}"
            + (f" of dtype {joints.dtype}" if isinstance(joints, torch.Tensor) else "")
        )
    if joints.ndim < 2 or tuple(joints.shape[-2:]) != (NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (..., 21, 3) metres; got {tuple(joints.shape)}")


def estimate_hand_scale(joints: torch.Tensor, model: HandModel | None = None) -> torch.Tensor:
    """Hand size relative to the template: the mean over the 20 bones of |bone| / template.

    The mean of per-bone ratios (rather than one bone) keeps a single bad joint from dominating
    and is 1.0 for the template hand. Differentiable; detach the result if the size must not
    receive gradients.

    Args:
        joints: (..., 21, 3) metres.
        model: the hand model (``None``: the shipped one); its ``bone_lengths`` are the template.
    Returns:
        (...,) unitless scale.
    """
    _check_joints(joints)
    m = _model(model)
    parent = torch.tensor([b[0] for b in BONES], device=joints.device)
    child = torch.tensor([b[1] for b in BONES], device=joints.device)
    lengths = torch.linalg.vector_norm(joints[..., child, :] - joints[..., parent, :], dim=-1)
    template = torch.tensor(m.bone_lengths, dtype=joints.dtype, device=joints.device)
    return (lengths / template).mean(dim=-1)


def spheres_from_joints(
    joints: torch.Tensor,
    hand_scale: torch.Tensor | float | None = None,
    model: HandModel | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place the 41 spheres on a skeleton.

    Args:
        joints: (..., 21, 3) metres (any frame; the centres are in the same frame).
        hand_scale: size of this hand relative to the template (1.0 = the default adult hand
            of ``bone_lengths``): a float or a tensor broadcastable to ``joints.shape[:-2]``.
            ``None``: :func:`estimate_hand_scale` of the pose itself.
        model: the hand model (``None``: the shipped one).
    Returns:
        centres (..., 41, 3) metres, ``centres[..., i, :] = sphere_weights[i] @ joints``;
        radii (..., 41) metres, ``sphere_radii * hand_scale`` (``sphere_radii`` already holds
        the file's ``radius_scale``).
    Raises:
        ValueError: ``joints`` is not a floating tensor (..., 21, 3), or ``hand_scale`` is not
            positive / not broadcastable.
    """
    _check_joints(joints)
    m = _model(model)
    batch = joints.shape[:-2]
    if hand_scale is None:
        scale = estimate_hand_scale(joints, m)
    else:
        scale = torch.as_tensor(hand_scale, dtype=joints.dtype, device=joints.device)
        try:
            scale = torch.broadcast_to(scale, batch)
        except RuntimeError as e:
            raise ValueError(
                f"hand_scale must broadcast to the batch shape {tuple(batch)}; "
                f"got {tuple(scale.shape)}"
            ) from e
        if not torch.jit.is_tracing() and not bool(torch.all(scale > 0)):
            raise ValueError(f"hand_scale must be positive; got min {float(scale.min()):.4g}")
    weights = torch.tensor(m.sphere_weights, dtype=joints.dtype, device=joints.device)
    radii = torch.tensor(m.sphere_radii, dtype=joints.dtype, device=joints.device)
    centres = weights @ joints
    return centres, radii * scale[..., None]
