"""Pose correction: project a 3D hand pose onto the biomechanically feasible set (METHODS §3).

Greedy registration along the kinematic chain (SemiHand, extended with joint angles by the
dual-modality work), feasible BY CONSTRUCTION:

1. **Scale and bone lengths.** With per-user ``bone_lengths`` they are used exactly. Otherwise
   the reference length s is the pose's own reference bone unless that bone disagrees with the
   others, in which case s minimises the total length change sum_k dist(|b_k|, [lo_k s, hi_k s])
   (a convex piecewise-linear function, solved exactly). For a feasible pose that is its own
   reference bone. Each bone length is then clamped into [lo_k s, hi_k s].
2. **Palm** (wrist, thumb CMC, finger MCPs). The wrist stays; root bones keep their directions
   at the step-1 lengths. If that palm violates a palm constraint (root angles, curvature,
   palm normal angles), each root direction is blended towards the template palm (the
   model's planar ``rest_pose`` palm, rotated onto the input by Kabsch) by the smallest
   factor t in [0, 1] found feasible by a vectorised search (resolution 1/4096). t = 1 is
   feasible for any lengths because the template palm is planar (curvature 0).
3. **Fingers**, level by level (all five at once): the direction from the corrected parent
   towards the input child, expressed in the bone's local frame, has its flexion and
   abduction clamped into the limits (flexion to the circularly nearer bound); the child is
   placed at the step-1 length; the frame is carried by the corrected direction.

A pose that is already feasible is returned unchanged (up to float round-off).
"""

from __future__ import annotations

import numpy as np
import torch

from ..handmodel import HandModel
from ..skeleton import NUM_BONES, REFERENCE_BONE
from . import _backend as B
from ._backend import Array
from .constraints import (
    Limits,
    check_handedness,
    check_joints,
    interval_excess,
    limits_for,
    to_right,
)
from .frames import (
    FINGER_BONE_INDEX,
    ROOT_BONE_INDEX,
    bone_vectors,
    carry_frame,
    direction_angles,
    local_direction,
    mirror_x,
    palm_quantities,
    root_frames,
    root_vectors,
)
from .violations import DEFAULT_TOL

__all__ = ["correct_pose"]

_REF = REFERENCE_BONE[1] - 1
_ROOT = list(ROOT_BONE_INDEX)
_FINGER = np.asarray(FINGER_BONE_INDEX)  # (5, 3)
_TARGET = _FINGER + 1  # child joint of each finger bone, (5, 3)
_TOL = 0.5 * DEFAULT_TOL  # internal acceptance, strictly inside the reported tolerance
_SEARCH_BITS = 12  # the palm blend factor is found to 1 / 4096
_MIN_SCALE = 1e-6  # metres; below it the pose has no usable size


def _choose_scale(lengths: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(N, 20) bone lengths -> (N,) s minimising sum_k dist(l_k, [lo_k s, hi_k s])."""
    n = len(lengths)
    upper = lengths / lo  # bone k fits for s <= upper_k; above it the cost rises by lo_k
    lower = lengths / hi  # ... for s >= lower_k; below it the cost falls by hi_k
    points = np.concatenate([lower, upper], 1)
    slope_step = np.concatenate([np.broadcast_to(hi, (n, NUM_BONES)),
                                 np.broadcast_to(lo, (n, NUM_BONES))], 1)
    order = np.argsort(points, axis=1, kind="stable")
    pts = np.take_along_axis(points, order, 1)
    slope = np.cumsum(np.take_along_axis(slope_step, order, 1), 1) - hi.sum()
    first = np.argmax(slope >= -1e-12, axis=1)  # the slope ends >= 0 (sum lo > 0)
    return pts[np.arange(n), first]


def _palm_ok(vectors: np.ndarray, scale: np.ndarray, limits: Limits) -> np.ndarray:
    """(..., 5, 3) root vectors, (...,) reference length -> (...,) palm feasible."""
    q = palm_quantities(vectors / scale[..., None, None])
    ok = np.ones(vectors.shape[:-2], dtype=bool)
    for fam, key in (("root_angle", "angle"), ("root_curvature", "curvature"),
                     ("palm_normal_angle", "normal_angle")):
        iv = limits.intervals[fam]
        ok &= ((q[key] >= iv[:, 0] - _TOL) & (q[key] <= iv[:, 1] + _TOL)).all(-1)
    return ok


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(N, K, 3) x2 -> (N, 3, 3) proper rotation R minimising sum |R src - dst|^2."""
    h = np.einsum("nki,nkj->nij", src, dst)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nji,nkj->nik", vt, u)))
    d = np.where(d == 0, 1.0, d)
    vt = vt.copy()
    vt[:, 2, :] *= d[:, None]
    return np.einsum("nji,nkj->nik", vt, u)


def _blend(d0: np.ndarray, d1: np.ndarray, t: np.ndarray, root_len: np.ndarray) -> np.ndarray:
    """Root vectors with directions normalise((1 - t) d0 + t d1) and lengths root_len."""
    return B.normalise((1.0 - t)[..., None, None] * d0 + t[..., None, None] * d1) * root_len


def _correct_palm(
    roots: np.ndarray, root_len: np.ndarray, scale: np.ndarray, limits: Limits
) -> np.ndarray:
    """(N, 5, 3) input root vectors -> (N, 5, 3) feasible root vectors of lengths root_len."""
    d0 = B.normalise(roots)
    out = d0 * root_len[..., None]
    few = len(roots) <= 16
    rest = limits.rest_pose
    tmpl = B.normalise(root_vectors(rest))  # (5, 3)
    if few:  # one grid evaluation also answers "is t = 0 feasible?"
        bad = np.ones(len(roots), dtype=bool)
    else:
        bad = ~_palm_ok(out, scale, limits)
        if not bad.any():
            return out
    d0b, lenb, sb = d0[bad], root_len[bad][..., None], scale[bad]
    rot = _kabsch(tmpl[None] * lenb, d0b * lenb)
    d1 = np.einsum("nij,kj->nki", rot, tmpl)
    # Search t in [0, 1] (t = 0 infeasible, t = 1 feasible): each round tries P - 1 interior
    # points of [lo_t, hi_t] at once and keeps the first feasible one. Few poses: a fine grid
    # (few numpy calls); many poses: bisection (fewest evaluations).
    points = 64 if few else (8 if len(d0b) <= 256 else 2)
    rounds = int(np.ceil(_SEARCH_BITS / np.log2(points)))
    lo_t = np.zeros(len(d0b))
    hi_t = np.ones(len(d0b))
    interior = np.arange(1, points) / points
    rows = np.arange(len(d0b))
    for r in range(rounds):
        # with few poses the first round also tries t = 0 (the input palm itself)
        frac = np.concatenate([[0.0], interior]) if few and r == 0 else interior
        ts = lo_t[:, None] + (hi_t - lo_t)[:, None] * frac[None]  # (M, P - 1)
        cand = _blend(d0b[:, None], d1[:, None], ts, lenb[:, None])
        ok = _palm_ok(cand, np.broadcast_to(sb[:, None], ts.shape), limits)
        ok = np.concatenate([ok, np.ones((len(ts), 1), dtype=bool)], 1)
        ts = np.concatenate([ts, hi_t[:, None]], 1)
        k = np.argmax(ok, axis=1)
        lo_t = np.where(k > 0, ts[rows, np.maximum(k - 1, 0)], lo_t)
        hi_t = ts[rows, k]
        if not hi_t.any():  # every palm was feasible as it is
            return out
    moved = np.where(hi_t[:, None, None] > 0, _blend(d0b, d1, hi_t, lenb), out[bad])
    out[bad] = moved
    return out


def _clamp_flexion(f: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Clamp angles in (-pi, pi] into [lo, hi], outside values to the circularly nearer end."""
    below, above = f < lo, f > hi
    to_lo = np.where(below, lo - f, lo + 2 * np.pi - f)
    to_hi = np.where(above, f - hi, f + 2 * np.pi - hi)
    clamped = np.where(to_lo <= to_hi, lo, hi)
    return np.where(below | above, clamped, f)


def _correct_right(
    joints: np.ndarray, lengths: np.ndarray | None, limits: Limits
) -> np.ndarray:
    """(N, 21, 3) right hands -> (N, 21, 3) feasible right hands."""
    n = len(joints)
    bones_in = bone_vectors(joints)
    own = np.sqrt((bones_in**2).sum(-1))
    lo_r, hi_r = limits.intervals["bone_length"].T
    if lengths is None:
        scale = _choose_scale(own, lo_r, hi_r)
        small = scale < _MIN_SCALE
        scale = np.where(small, limits.bone_lengths[_REF], scale)
        lengths = np.clip(own, lo_r * scale[:, None], hi_r * scale[:, None])
    else:
        lengths = np.broadcast_to(lengths, (n, NUM_BONES))
        scale = lengths[:, _REF]
    wrist = joints[:, :1]
    roots = _correct_palm(root_vectors(joints), lengths[:, _ROOT], scale, limits)
    frame = root_frames(roots)
    parent = wrist + roots  # (N, 5, 3)
    flex_lim = limits.intervals["flexion"].reshape(5, 3, 2)
    abd_lim = limits.intervals["abduction"].reshape(5, 3, 2)
    finger_len = lengths[:, _FINGER]  # (N, 5, 3)
    chain = [parent]
    for level in range(3):
        d = joints[:, _TARGET[:, level]] - parent
        f, a = direction_angles(B.matTvec(frame, d))
        f = _clamp_flexion(f, flex_lim[:, level, 0], flex_lim[:, level, 1])
        a = np.clip(a, abd_lim[:, level, 0], abd_lim[:, level, 1])
        u = local_direction(f, a)
        parent = parent + finger_len[:, :, level, None] * B.matvec(frame, u)
        chain.append(parent)
        if level < 2:
            frame = carry_frame(frame, u)
    fingers = np.stack(chain, 2).reshape(n, 20, 3)
    return np.concatenate([wrist, fingers], 1)


_TEMPLATE_CHECKED: dict[int, bool] = {}


def _check_template(limits: Limits) -> None:
    key = id(limits)
    if key in _TEMPLATE_CHECKED:
        return
    rest = limits.rest_pose
    ref = np.linalg.norm(rest[10] - rest[9])
    if not _palm_ok(root_vectors(rest), np.asarray(ref), limits):
        raise ValueError("model.rest_pose has an infeasible palm; correct_pose needs one")
    # curvature 0 for any lengths needs the root bones in one plane through the wrist
    if np.linalg.svd(root_vectors(rest))[1][-1] > 1e-6 * ref:
        raise ValueError("model.rest_pose palm must be planar (zero curvature for any lengths)")
    _TEMPLATE_CHECKED[key] = True


def _check_lengths(bone_lengths: object, lead: tuple[int, ...], limits: Limits) -> np.ndarray:
    if isinstance(bone_lengths, torch.Tensor):
        bone_lengths = bone_lengths.detach().cpu().numpy()
    lengths = np.asarray(bone_lengths, dtype=np.float64)
    if lengths.ndim < 1 or lengths.shape[-1] != NUM_BONES:
        raise ValueError(f"bone_lengths must have shape (20,) or (..., 20) metres; got "
                         f"{lengths.shape}")
    try:
        lengths = np.broadcast_to(lengths, lead + (NUM_BONES,)).reshape(-1, NUM_BONES)
    except ValueError as e:
        raise ValueError(f"bone_lengths {lengths.shape} does not broadcast to the poses "
                         f"{lead}") from e
    if not np.all(np.isfinite(lengths)) or not np.all(lengths > 0):
        raise ValueError("bone_lengths must be finite and positive (metres)")
    ratio = lengths / lengths[:, _REF : _REF + 1]
    lo, hi = limits.intervals["bone_length"].T
    bad = (interval_excess(ratio, lo, hi) > _TOL).any(0)
    if bad.any():
        raise ValueError(
            f"bone_lengths are infeasible: bones {np.flatnonzero(bad).tolist()} (BONES order) "
            f"have length / reference-bone ratios outside bone_length_range"
        )
    return lengths


def correct_pose(
    joints: Array,
    bone_lengths: Array | None = None,
    handedness: str = "right",
    model: HandModel | None = None,
) -> Array:
    """Project poses onto the biomechanically feasible set (see the module docstring).

    Args:
        joints: (..., 21, 3) metres, any rigid frame (camera frame usually); numpy or torch.
        bone_lengths: None (lengths clamped relative to the pose's own scale) or (20,) /
            (..., 20) metres in BONES order (per-user calibration), set exactly. Their
            ratios to the reference bone must lie in ``bone_length_range``.
        handedness: ``"right"``, ``"left"`` or ``"auto"`` (per pose, the chirality with the
            smaller total violation).
        model: hand model (default: the shipped one).

    Returns:
        (..., 21, 3) feasible joints: 0 :func:`~handpose.core.biomech.violations` with the
        default tolerance. Same type as ``joints`` (torch: same dtype and device, no gradient).

    Raises:
        ValueError: ``joints`` has the wrong shape or contains NaN/infinity; infeasible or
            mis-shaped ``bone_lengths``; unknown ``handedness``.
    """
    j = check_joints(joints)
    check_handedness(handedness)
    like = j if B.is_torch(j) else None
    arr = j.detach().to("cpu", torch.float64).numpy() if like is not None else j
    lead = tuple(arr.shape[:-2])
    flat = arr.reshape(-1, 21, 3)
    limits = limits_for(model)
    _check_template(limits)
    lengths = None if bone_lengths is None else _check_lengths(bone_lengths, lead, limits)
    right, is_left = to_right(flat, handedness, limits)
    out = _correct_right(right, lengths, limits)
    out = np.where(is_left[:, None, None], mirror_x(out), out).reshape(arr.shape)
    if like is not None:
        return torch.as_tensor(out, dtype=like.dtype, device=like.device)
    return out
