"""The rest hand as a signed distance field: a soft union of tapered capsules (fingers, thumb,
thenar, forearm) and a rounded palm slab, in the hand frame of ``assets/hand_model.json``
(right hand, wrist at the origin, +y towards the middle finger, +x towards the thumb, +z out
of the palm).

The field is meshed once (:mod:`.mesh`) into the renderer's template; it also defines the
template's per-joint radii (the finger radius at each joint), which the renderer uses as the
tolerance of its joint visibility test.

Label convention fixed here: every joint but the tips lies on a capsule's axis (inside the
surface, about one radius deep); a TIP joint lies ON the fingertip surface (the distal
capsule ends one tip radius short of the tip joint), as in FreiHAND/MANO and MediaPipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import torch

from ...skeleton import FINGERS, NUM_JOINTS

__all__ = [
    "JOINT_RADII_MM",
    "FOREARM_LENGTH",
    "SDFParts",
    "hand_sdf_parts",
    "evaluate_sdf",
    "smooth_min",
]

#: Template radius (mm) of the finger at each joint (the palm/forearm half-thickness for the
#: wrist and the MCPs). Adult hand of the default bone lengths.
JOINT_RADII_MM: Final[tuple[float, ...]] = (
    17.0,                      # wrist (forearm half-thickness at the wrist)
    13.0, 10.6, 9.4, 8.4,      # thumb CMC, MCP, IP, TIP
    9.6, 8.8, 7.6, 6.9,        # index MCP, PIP, DIP, TIP
    9.9, 9.0, 7.8, 7.1,        # middle
    9.3, 8.5, 7.3, 6.7,        # ring
    8.3, 7.5, 6.6, 6.0,        # pinky
)
#: Template forearm length (m) from the wrist joint to the end of the arm stub.
FOREARM_LENGTH: Final = 0.26
_PALM_CENTRE_Z = 0.0025  # the palm's mid-surface sits a little volar of the joints (fleshy palm)
_PALM_HALF_WRIST = 0.0135  # palm half-thickness at the wrist line (m)
_PALM_HALF_KNUCKLE = 0.0105  # ... at the knuckle line
_K_FINGER_PALM = 0.009  # smooth-union widths (m)
_K_FINGERS = 0.006
_K_FOREARM = 0.016
_FOREARM_X_STRETCH = 1.42  # wrist/forearm cross-section is wider (x) than thick (z)


@dataclass(frozen=True)
class SDFParts:
    """The primitives of the rest hand (float64 numpy, metres).

    Attributes:
        joints: (21, 3) rest joints.
        cones: (C, 8) tapered capsules ``a (3), b (3), ra, rb`` of fingers and thumb.
        cone_group: (C,) group of each cone: finger index 0-4 (thumb .. pinky) or 5 (thenar).
        palm_polygon: (P, 2) convex palm outline (x, y), counter-clockwise.
        forearm: (8,) the forearm cone ``a, b, ra, rb`` in the x-compressed space.
        joint_radii: (21,) metres.
    """

    joints: np.ndarray
    cones: np.ndarray
    cone_group: np.ndarray
    palm_polygon: np.ndarray
    forearm: np.ndarray
    joint_radii: np.ndarray


def hand_sdf_parts(rest_pose: np.ndarray, scale: float = 1.0) -> SDFParts:
    """The primitives of a rest hand.

    Args:
        rest_pose: (21, 3) metres, the model's rest pose (right hand, hand frame, wrist at 0).
        scale: multiplies every radius and thickness (1 = the default adult hand).

    Returns:
        :class:`SDFParts`.
    """
    j = np.asarray(rest_pose, np.float64)
    if j.shape != (NUM_JOINTS, 3) or not np.isfinite(j).all():
        raise ValueError(f"rest_pose must be a finite (21, 3) array; got {j.shape}")
    r = np.asarray(JOINT_RADII_MM) * 1e-3 * scale
    cones, group = [], []
    for f, chain in enumerate(FINGERS):
        for k in range(3):
            a, b = j[chain[k]], j[chain[k + 1]]
            ra, rb = r[chain[k]], r[chain[k + 1]]
            if k == 2:  # the tip joint lies on the surface: stop one tip radius short
                d = (b - a) / np.linalg.norm(b - a)
                b = b - rb * d
            cones.append(np.concatenate([a, b, [ra, rb]]))
            group.append(f)
    # thenar eminence: a fleshy cone from the palm heel towards the thumb MCP, volar side
    cmc, mcp = j[1], j[2]
    heel = np.array([0.35 * cmc[0], 0.35 * cmc[1], 0.006])
    bulge = 0.55 * cmc + 0.45 * mcp + np.array([-0.006, 0.0, 0.007])
    cones.append(np.concatenate([heel, bulge, [0.0125 * scale, 0.0105 * scale]]))
    group.append(5)
    # palm outline through the finger bases, widened by the MCP radii so the slab's rounded
    # rim (radius = half-thickness) covers the knuckles
    mcps = j[[5, 9, 13, 17]]
    ulnar = np.array([mcps[3, 0] - 0.004, 0.5 * mcps[3, 1]])
    radial = np.array([cmc[0] + 0.002, cmc[1] + 0.012])
    poly = np.array([
        [0.70 * ulnar[0], -0.006],
        [0.80 * cmc[0], -0.006],
        radial,
        [mcps[0, 0] + 0.001, mcps[0, 1] - 0.001],
        [mcps[1, 0], mcps[1, 1] + 0.001],
        [mcps[2, 0], mcps[2, 1]],
        [mcps[3, 0] - 0.001, mcps[3, 1]],
        ulnar,
    ])
    fa = np.array([0.0, -0.012, 0.0, 0.0, -FOREARM_LENGTH + 0.03, 0.0,
                   0.0175 * scale, 0.027 * scale])
    return SDFParts(joints=j, cones=np.asarray(cones), cone_group=np.asarray(group),
                    palm_polygon=poly, forearm=fa, joint_radii=r)


def smooth_min(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """Polynomial smooth minimum of two distance fields with blend width ``k`` metres."""
    h = torch.clamp(k - (a - b).abs(), min=0.0) / k
    return torch.minimum(a, b) - h * h * k * 0.25


def _round_cone(p: torch.Tensor, cone: torch.Tensor) -> torch.Tensor:
    """Distance (N,) from points (N, 3) to the convex hull of two spheres (a, ra), (b, rb)."""
    a, b, ra, rb = cone[:3], cone[3:6], cone[6], cone[7]
    ba = b - a
    length = torch.linalg.norm(ba)
    d = ba / length
    pa = p - a
    t = pa @ d
    radial = torch.linalg.norm(pa - t[:, None] * d, dim=1)
    # the hull's side is tangent to both spheres: slope from the radius difference
    s = (ra - rb) / length
    c = torch.sqrt(torch.clamp(1.0 - s * s, min=1e-9))
    # coordinate along the side line; before/after the tangent points use the spheres
    side = t * s + radial * c - ra  # signed distance to the tangent line of the side
    u = t * c - radial * s  # position along that line: tangent points at 0 and length * c
    da = torch.linalg.norm(pa, dim=1) - ra
    db = torch.linalg.norm(p - b, dim=1) - rb
    return torch.where(u < 0, da, torch.where(u > length * c, db, side))


def _palm(p: torch.Tensor, poly: torch.Tensor, knuckle_y: float) -> torch.Tensor:
    """Rounded slab: the convex outline extruded +-h(y), rims rounded with radius h."""
    xy = p[:, :2]
    e0 = poly
    e1 = torch.roll(poly, -1, 0)
    edge = e1 - e0
    n = torch.stack([edge[:, 1], -edge[:, 0]], 1)  # outward for a counter-clockwise outline
    n = n / torch.linalg.norm(n, dim=1, keepdim=True)
    plane = (xy[:, None, :] - e0[None]) @ n.T  # (N, P, P) -> take the diagonal below
    d_out = torch.diagonal(plane, dim1=1, dim2=2).amax(1)  # > 0 outside (convex polygon)
    # exact outside distance: nearest point on the boundary segments
    w = xy[:, None, :] - e0[None]
    t = ((w * edge[None]).sum(-1) / (edge * edge).sum(-1)[None]).clamp(0.0, 1.0)
    seg = torch.linalg.norm(w - t[..., None] * edge[None], dim=-1).amin(1)
    d2 = torch.where(d_out > 0, seg, d_out)
    frac = (p[:, 1] / knuckle_y).clamp(0.0, 1.0)
    h = _PALM_HALF_WRIST + (_PALM_HALF_KNUCKLE - _PALM_HALF_WRIST) * frac
    wx = d2 + h
    wz = (p[:, 2] - _PALM_CENTRE_Z).abs()
    outside = torch.sqrt(torch.clamp(wx, min=0) ** 2 + wz**2)
    inside = torch.clamp(torch.maximum(wx, wz), max=0.0)
    return outside + inside - h


def evaluate_sdf(parts: SDFParts, points: torch.Tensor, with_forearm: bool = True
                 ) -> torch.Tensor:
    """Signed distance (N,) metres (< 0 inside) of the rest hand at points (N, 3) metres."""
    dt = points.dtype
    cones = torch.as_tensor(parts.cones, dtype=dt)
    poly = torch.as_tensor(parts.palm_polygon, dtype=dt)
    knuckle_y = float(parts.joints[[5, 9, 13, 17], 1].mean())
    palm = _palm(points, poly, knuckle_y)
    fingers = []
    for f in range(6):
        idx = np.flatnonzero(parts.cone_group == f)
        d = torch.stack([_round_cone(points, cones[i]) for i in idx]).amin(0)
        fingers.append(d)
    # neighbouring fingers web together near their bases, then everything joins the palm
    web = fingers[1]
    for f in (2, 3, 4):
        web = smooth_min(web, fingers[f], _K_FINGERS)
    thumb = smooth_min(fingers[0], fingers[5], _K_FINGER_PALM)
    d = smooth_min(palm, web, _K_FINGER_PALM)
    d = smooth_min(d, thumb, _K_FINGER_PALM)
    if with_forearm:
        squeezed = points * torch.tensor([1.0 / _FOREARM_X_STRETCH, 1.0, 1.0], dtype=dt)
        fa = _round_cone(squeezed, torch.as_tensor(parts.forearm, dtype=dt))
        d = smooth_min(d, fa, _K_FOREARM)
    return d
