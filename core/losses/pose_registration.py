"""SemiHand's pose registration P for 2.5D labels: lift, correct in 3D, project back.

:func:`handpose.core.biomech.correct_pose` makes 3D joints biomechanically feasible (METHODS
§3); pseudo-labels are 2.5D (crop pixels + z_rel), so :func:`correct_pose_25d` lifts them with
the crop's K, corrects, and returns to 2.5D (details in its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..biomech import correct_pose, count_violations
from ..geometry.lifting import lift_from_root_depth, normalized_root_depth, to_25d
from ..handmodel import HandModel, load_hand_model
from ..skeleton import NUM_JOINTS

__all__ = ["MIN_ROOT_DEPTH", "Corrected25D", "correct_pose_25d"]

#: Lower bound of the root depth, in reference-bone lengths, when a 2.5D label is lifted for
#: correction (:func:`correct_pose_25d`).
MIN_ROOT_DEPTH = 7.0
#: Corrected joints must stay this many template reference bones in front of the camera.
_MIN_DEPTH = 0.1
#: How often :func:`correct_pose_25d` may double the focal length for a label it cannot keep
#: in front of the camera (2^12: practically orthographic).
_FOCAL_DOUBLINGS = 12


def _check_pose(uv: torch.Tensor, z: torch.Tensor, name: str) -> None:
    if not isinstance(uv, torch.Tensor) or uv.ndim != 3 or tuple(uv.shape[1:]) != (NUM_JOINTS, 2):
        raise ValueError(f"{name}_uv must be a tensor (B, 21, 2) pixels; got "
                         f"{tuple(getattr(uv, 'shape', ()))}")
    if not isinstance(z, torch.Tensor) or tuple(z.shape) != tuple(uv.shape[:2]):
        raise ValueError(f"{name}_z must be a tensor ({uv.shape[0]}, 21) (z_rel); got "
                         f"{tuple(getattr(z, 'shape', ()))}")


@dataclass(frozen=True)
class Corrected25D:
    """Result of :func:`correct_pose_25d` for B labels.

    Attributes:
        uv: (B, 21, 2) crop pixels of the corrected pose. z_rel: (B, 21).
        violations_before, violations_after: (B,) int64 numpy, violated biomechanical
            constraints of the lifted label and of the corrected pose
            (:func:`handpose.core.biomech.count_violations`); -1 for a label that could not
            be corrected (see :func:`correct_pose_25d`).
        is_left: (B,) bool numpy, the chirality used.
    """

    uv: torch.Tensor
    z_rel: torch.Tensor
    violations_before: np.ndarray
    violations_after: np.ndarray
    is_left: np.ndarray


def _handedness_groups(handedness: str | torch.Tensor | np.ndarray, b: int) -> np.ndarray:
    """(B,) codes 1 right, 0 left, -1 unknown."""
    if isinstance(handedness, str):
        code = {"right": 1, "left": 0, "auto": -1}.get(handedness)
        if code is None:
            raise ValueError(f"handedness must be 'right', 'left', 'auto' or (B,) codes; got "
                             f"{handedness!r}")
        return np.full(b, code)
    h = handedness.detach().cpu().numpy() if isinstance(handedness, torch.Tensor) \
        else np.asarray(handedness)
    if h.shape != (b,) or not np.isin(h, (-1, 0, 1)).all():
        raise ValueError(f"handedness codes must be ({b},) in {{1 right, 0 left, -1 unknown}}; "
                         f"got shape {h.shape}")
    return h.astype(np.int64)


def correct_pose_25d(
    uv: torch.Tensor,
    z_rel: torch.Tensor,
    K: torch.Tensor,
    handedness: str | torch.Tensor | np.ndarray = "auto",
    model: HandModel | None = None,
    min_root_depth: float = MIN_ROOT_DEPTH,
) -> Corrected25D:
    """The pose registration P of a 2.5D label: lift, correct in 3D, project back.

    :func:`handpose.core.biomech.correct_pose` works on 3D joints, so the label is lifted
    with the crop's ``K`` and the template reference bone (METHODS §1:
    :func:`~handpose.core.geometry.lifting.normalized_root_depth`), corrected, and turned
    back into 2.5D with :func:`~handpose.core.geometry.lifting.to_25d` and the same ``K``.
    The metric scale is irrelevant: lifting is linear in it and the correction and ``to_25d``
    are scale-invariant. The normalised root depth Z = Z_root / s is clamped to at least
    ``min_root_depth`` (7; the wrist stays where it is and a feasible hand reaches at most
    6.44 of its own reference bones from it). The corrected hand's size is chosen by
    ``correct_pose`` from the lifted bones, so a label that is inconsistent with ``K`` (a
    hand that would subtend a large angle, typical of a tight crop of a bigger photo with the
    default webcam ``K``) can still come out partly behind the camera. Such labels are lifted
    again with the focal length doubled (a weaker perspective, the principal point fixed)
    until the corrected joints lie at least 0.1 template reference bones in front of the
    camera (at most 2^12 times; a label that never does is returned unchanged with
    violation counts -1). A feasible, consistently lifted label comes back unchanged up to
    round-off.

    Args:
        uv: (B, 21, 2) crop pixels; z_rel: (B, 21); K: (B, 3, 3) or (3, 3) of the crop.
        handedness: "right", "left", "auto" (per label the chirality whose lifted pose
            violates fewer constraints, ties right), or (B,) codes 1 right / 0 left /
            -1 unknown (= auto).
        model: the hand model (limits, template); None: the shipped one.
        min_root_depth: see above (> 0).
    Returns:
        :class:`Corrected25D` (tensors on ``uv``'s device and dtype).
    Raises:
        ValueError: shapes, non-finite values, a bad handedness or root-depth bound.
    """
    _check_pose(uv, z_rel, "label")
    b = uv.shape[0]
    if not isinstance(K, torch.Tensor) or tuple(K.shape) not in ((3, 3), (b, 3, 3)):
        raise ValueError(f"K must be a tensor (3, 3) or ({b}, 3, 3); got "
                         f"{tuple(getattr(K, 'shape', ()))}")
    if not min_root_depth > 0:
        raise ValueError(f"min_root_depth must be > 0 reference bones; got {min_root_depth}")
    codes = _handedness_groups(handedness, b)
    m = load_hand_model() if model is None else model
    dev, dt = uv.device, uv.dtype
    q = uv.detach().to("cpu", torch.float64)
    z = z_rel.detach().to("cpu", torch.float64)
    k = K.detach().to("cpu", torch.float64).expand(b, 3, 3)
    if not (torch.isfinite(q).all() and torch.isfinite(z).all()):
        raise ValueError("uv and z_rel must be finite")
    uv_c, z_c = q.clone(), z.clone()
    before = np.zeros(b, np.int64)
    after = np.zeros(b, np.int64)
    is_left = np.zeros(b, bool)
    pending = np.arange(b)
    focal = 1.0
    for _ in range(_FOCAL_DOUBLINGS + 1):
        kk = k[pending].clone()
        kk[:, :2, :2] *= focal  # longer focal length, same principal point
        joints, bf, left = _lift_and_correct(q[pending], z[pending], kk, codes[pending], m,
                                             min_root_depth)
        ok = joints[..., 2].min(-1) > _MIN_DEPTH * m.reference_bone_length
        rows = pending[ok]
        if rows.size:
            u, zz, _ = to_25d(torch.from_numpy(joints[ok]), kk[torch.from_numpy(ok)])
            uv_c[rows], z_c[rows] = u, zz
            before[rows], is_left[rows] = bf[ok], left[ok]
            for flag, hand in ((False, "right"), (True, "left")):
                sub = ok & (left == flag)
                if sub.any():
                    after[pending[sub]] = count_violations(joints[sub], hand, model=m)
        pending = pending[~ok]
        if pending.size == 0:
            break
        focal *= 2.0
    if pending.size:  # never seen; kept as they are and reported as not corrected
        before[pending] = after[pending] = -1
    return Corrected25D(uv_c.to(dev, dt), z_c.to(dev, dt), before, after, is_left)


def _lift_and_correct(q: torch.Tensor, z: torch.Tensor, k: torch.Tensor, codes: np.ndarray,
                      m: HandModel, min_root_depth: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 21, 3) corrected joints (metres), (N,) violations of the lifted label, (N,) left."""
    s = m.reference_bone_length
    root = normalized_root_depth(q, z, k)
    root = torch.nan_to_num(root, nan=0.0).clamp(min=min_root_depth)
    joints = lift_from_root_depth(q, z, k, s, s * root).numpy()
    corrected = np.empty_like(joints)
    before = np.zeros(len(q), np.int64)
    is_left = np.zeros(len(q), bool)
    for code, name in ((1, "right"), (0, "left"), (-1, "auto")):
        rows = np.flatnonzero(codes == code)
        if rows.size == 0:
            continue
        j = joints[rows]
        if name == "auto":  # decide once, then count and correct with that chirality
            left = count_violations(j, "left", model=m) < count_violations(j, "right", model=m)
        else:
            left = np.full(rows.size, name == "left")
        for flag, hand in ((False, "right"), (True, "left")):
            sub = rows[left == flag]
            if sub.size:
                before[sub] = count_violations(joints[sub], hand, model=m)
                corrected[sub] = correct_pose(joints[sub], handedness=hand, model=m)
        is_left[rows] = left
    return corrected, before, is_left
