"""Per-vertex data of the template hand mesh, derived from its rest geometry: linear blend
skinning weights from capsule proximity, the thickness controls, and the shading attributes
the fragment shader reads (palm side, nails, creases, sleeves).

Skinning: a vertex's weight for bone b is ``exp(-(d_b - d_min) / tau_b)`` over its distances
``d_b`` to the 20 bone segments and the forearm axis (``tau`` 1.4 mm for finger bones, 3 mm for
the palm's root bones, 5 mm for the forearm), keeping the four largest and renormalising. A
vertex at a joint is equidistant from the two bones meeting there and gets half of each; one
radius away it is almost rigid.

Shading attributes, ``shading[:, k]``:

0. ``volar``: 1 on the palm side (rest normal towards +z), 0 on the back, smooth between.
1. ``ao``: baked ambient occlusion (filled by the caller).
2. ``arm``: metres from the wrist along the forearm (0 on the hand): sleeves start there.
3. ``nail_u``: position along the distal phalanx (0 at the DIP/IP, 1 at the tip), -1 elsewhere.
4. ``nail_v``: lateral position on the back of the distal phalanx (-1..1 across the nail bed),
   2 on the palm side or off the distal phalanges.
5. ``crease1``: signed distance (m) along the finger from its PIP (thumb: MCP), linear in
   the rest position (no seams when interpolated).
6. ``palm``: weight of the palm region. 7. ``finger``: weight of the finger region.
8. ``crease2``: as 5, from the DIP (thumb: IP). 9. unused (0).
"""

from __future__ import annotations

import numpy as np

from ...skeleton import BONES, FINGERS, NUM_BONES
from .hand_sdf import FOREARM_LENGTH

__all__ = ["NUM_SKIN_BONES", "FOREARM_BONE", "NUM_SHADING", "vertex_normals",
           "segment_distances", "compute_attributes"]

#: Skinning columns: the 20 bones then the forearm.
NUM_SKIN_BONES = NUM_BONES + 1
FOREARM_BONE = NUM_BONES
#: Shading attributes per vertex.
NUM_SHADING = 10
_TAU_FINGER, _TAU_ROOT, _TAU_ARM = 0.0014, 0.003, 0.005
_PALM_Z = 0.0025
_ROOT_BONES = [i for i, (p, _) in enumerate(BONES) if p == 0]


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals of a mesh (V, 3), (F, 3)."""
    v = np.asarray(vertices, np.float64)
    tri = v[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def segment_distances(points: np.ndarray, a: np.ndarray, b: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Distances (N, S) from points (N, 3) to segments a (S, 3) -> b (S, 3) and the segment
    parameter t (N, S) of the closest point (unclamped)."""
    ab = b - a
    pa = points[:, None, :] - a[None]
    t = (pa * ab[None]).sum(-1) / (ab * ab).sum(-1)[None]
    tc = np.clip(t, 0.0, 1.0)
    d = np.linalg.norm(pa - tc[..., None] * ab[None], axis=-1)
    return d, t


def _skin_weights(v: np.ndarray, rest: np.ndarray) -> np.ndarray:
    a = np.stack([rest[p] for p, _ in BONES] + [np.zeros(3)])
    b = np.stack([rest[c] for _, c in BONES] + [np.array([0.0, -FOREARM_LENGTH, 0.0])])
    d, _ = segment_distances(v, a, b)
    tau = np.full(NUM_SKIN_BONES, _TAU_FINGER)
    tau[_ROOT_BONES] = _TAU_ROOT
    tau[FOREARM_BONE] = _TAU_ARM
    w = np.exp(-(d - d.min(1, keepdims=True)) / tau[None])
    keep = np.argsort(-w, 1)[:, :4]
    out = np.zeros_like(w)
    rows = np.arange(len(v))[:, None]
    out[rows, keep] = w[rows, keep]
    out[out < 1e-3] = 0.0
    return out / out.sum(1, keepdims=True)


def _finger_polylines(v: np.ndarray, rest: np.ndarray, w: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per vertex: the radial vector from its finger's axis polyline, its finger id, the
    segment (0-2) and the parameter along it of the closest point."""
    finger_w = np.stack([w[:, [c - 1 for c in chain[1:]]].sum(1) for chain in FINGERS], 1)
    fid = np.argmax(finger_w, 1)
    radial = np.zeros_like(v)
    seg = np.zeros(len(v), np.int64)
    tpar = np.zeros(len(v))
    for f, chain in enumerate(FINGERS):
        sel = np.flatnonzero(fid == f)
        a, b = rest[list(chain[:3])], rest[list(chain[1:])]
        d, t = segment_distances(v[sel], a, b)
        # the tip segment continues past the tip joint (its cap is squeezed sideways only)
        tc = np.clip(t, 0.0, 1.0)
        tc[:, 2] = np.maximum(t[:, 2], 0.0)
        closest = a[None] + tc[..., None] * (b - a)[None]
        dist = np.linalg.norm(v[sel, None] - closest, axis=-1)
        k = np.argmin(dist, 1)
        r = np.arange(len(sel))
        radial[sel] = v[sel] - closest[r, k]
        seg[sel], tpar[sel] = k, t[r, k]
    return radial, fid, seg, tpar


def compute_attributes(vertices: np.ndarray, faces: np.ndarray, rest_joints: np.ndarray
                       ) -> dict[str, np.ndarray]:
    """Skinning and shading data of a rest mesh (see the module docstring).

    Args:
        vertices: (V, 3) metres, rest pose. faces: (F, 3). rest_joints: (21, 3) metres.

    Returns:
        dict with ``skin_weights`` (V, 21), ``region`` (V, 3), ``radial`` (V, 3, 3),
        ``shading`` (V, NUM_SHADING) (column 1, ao, left 1), ``part`` (V,) int32; float32 arrays.
    """
    v = np.asarray(vertices, np.float64)
    rest = np.asarray(rest_joints, np.float64)
    n = vertex_normals(v, faces)
    w = _skin_weights(v, rest)
    root = w[:, _ROOT_BONES].sum(1)
    arm = w[:, FOREARM_BONE]
    finger = 1.0 - root - arm
    region = np.stack([finger, root, arm], 1)
    f_radial, fid, seg, tpar = _finger_polylines(v, rest, w)
    p_radial = np.zeros_like(v)
    p_radial[:, 2] = v[:, 2] - _PALM_Z
    a_radial = v * np.array([1.0, 0.0, 1.0])
    radial = np.stack([f_radial, p_radial, a_radial], 1)

    shading = np.zeros((len(v), NUM_SHADING))
    shading[:, 0] = np.clip((n[:, 2] + 0.25) / 0.6, 0.0, 1.0) ** 2 * (3 - 2 * np.clip(
        (n[:, 2] + 0.25) / 0.6, 0.0, 1.0))
    shading[:, 1] = 1.0
    shading[:, 2] = np.maximum(-v[:, 1], 0.0)
    # nails: on the back of the distal phalanges (the thumb's back faces -z and +x)
    distal = (seg == 2) & (finger > 0.5)
    shading[:, 3] = np.where(distal, tpar, -1.0)
    nail_v = np.full(len(v), 2.0)
    for f, chain in enumerate(FINGERS):
        d = rest[chain[3]] - rest[chain[2]]
        d /= np.linalg.norm(d)
        back = np.array([0.9, 0.0, -0.45]) if f == 0 else np.array([0.0, 0.0, -1.0])
        back = back - (back @ d) * d
        back /= np.linalg.norm(back)
        side = np.cross(d, back)
        sel = distal & (fid == f)
        rad = f_radial[sel]
        rn = rad / np.maximum(np.linalg.norm(rad, axis=1, keepdims=True), 1e-9)
        nail_v[sel] = np.where(rn @ back > 0.0, rn @ side, 2.0)
    shading[:, 4] = nail_v
    # creases: signed distances along the finger from its two interior joints (PIP and DIP;
    # thumb MCP and IP), linear in the rest position so they interpolate without seams
    for f, chain in enumerate(FINGERS):
        sel = fid == f
        for col, jt in ((5, chain[1]), (8, chain[2])):
            d = rest[jt + 1] - rest[jt - 1]
            d /= np.linalg.norm(d)
            shading[sel, col] = (v[sel] - rest[jt]) @ d
    shading[:, 6] = root
    shading[:, 7] = finger
    return {
        "skin_weights": w.astype(np.float32),
        "region": region.astype(np.float32),
        "radial": radial.astype(np.float32),
        "shading": shading.astype(np.float32),
        "part": np.argmax(w, 1).astype(np.int32),
    }
