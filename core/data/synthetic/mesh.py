"""The renderer's template hand mesh: the rest hand's signed distance field (:mod:`.hand_sdf`)
meshed once by marching tetrahedra, decimated and smoothed (Open3D), with baked ambient
occlusion, shipped as ``assets/hand_mesh.json``.

Regenerate the asset after changing the hand model's rest pose or :mod:`.hand_sdf`::

    python -m handpose.core.data.synthetic.mesh            # writes assets/hand_mesh.json

Loading (:func:`load_template_mesh`) adds the skinning weights and the shading attributes
(:mod:`.mesh_attributes`); it is cached per process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ...handmodel import HandModel, load_hand_model
from .hand_sdf import JOINT_RADII_MM, SDFParts, evaluate_sdf, hand_sdf_parts
from .marching import marching_tetrahedra

__all__ = [
    "MESH_FORMAT_VERSION",
    "TemplateMesh",
    "default_mesh_path",
    "rest_signature",
    "build_template_mesh",
    "bake_ambient_occlusion",
    "write_mesh_asset",
    "read_mesh_asset",
    "load_template_mesh",
    "template_lod",
    "joint_ellipsoids",
]

MESH_FORMAT_VERSION = 1
_BOUNDS = (np.array([-0.085, -0.295, -0.055]), np.array([0.12, 0.2, 0.08]))


@dataclass(frozen=True, eq=False)
class TemplateMesh:
    """The rest hand mesh with everything the renderer needs (float32/int32 numpy).

    Attributes:
        vertices: (V, 3) metres, rest pose, right hand, hand frame.
        faces: (F, 3) vertex ids, counter-clockwise seen from outside.
        normals: (V, 3) unit rest normals, outwards.
        rest_joints: (21, 3) metres, the joints the mesh was built around.
        joint_radii: (21,) metres, template finger radius at each joint (palm/forearm
            half-thickness at the wrist and the MCPs).
        joint_frames: (21, 3, 3) rest frame at each joint (columns: along the bone into the
            joint (wrist: towards the middle MCP), towards the palm side, their cross product).
        joint_extent: (21, 3) metres, depth of the surface above each joint along those axes
            (ray cast on the rest mesh): the semi-axes of the joint's "flesh" ellipsoid.
        ao: (V,) baked ambient occlusion in [0, 1] (1 = open).
        skin_weights: (V, 21) linear blend weights: columns 0-19 the bones in ``BONES`` order,
            column 20 the forearm. Rows sum to 1.
        region: (V, 3) weights of the finger / palm / forearm thickness controls (sum 1).
        radial: (V, 3, 3) per region, the vector from the region's axis (finger polyline,
            palm mid-surface, forearm axis) to the vertex: thickening by k moves the vertex
            by ``(k - 1) * radial``.
        shading: (V, 10) per-vertex shading attributes (see :mod:`.mesh_attributes`).
        part: (V,) dominant skinning column.
        signature: hash of the rest pose and radii the asset was built from.
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    rest_joints: np.ndarray
    joint_radii: np.ndarray
    joint_frames: np.ndarray
    joint_extent: np.ndarray
    ao: np.ndarray
    skin_weights: np.ndarray
    region: np.ndarray
    radial: np.ndarray
    shading: np.ndarray
    part: np.ndarray
    signature: str


def default_mesh_path() -> Path:
    """Path of the shipped ``hand_mesh.json`` (inside the ``handpose.assets`` package)."""
    from handpose.assets import ASSETS_DIR

    return Path(ASSETS_DIR) / "hand_mesh.json"


def rest_signature(rest_pose: np.ndarray) -> str:
    """Short hash of a rest pose (rounded to 0.1 mm) and the template radii."""
    data = np.round(np.asarray(rest_pose, np.float64) * 1e4).astype(np.int64).tobytes()
    data += np.asarray(JOINT_RADII_MM, np.float64).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def _grid_sdf(parts: SDFParts, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """SDF on the template grid; exact only near the surface (coarse-to-fine)."""
    from scipy.interpolate import RegularGridInterpolator

    lo, hi = _BOUNDS
    coarse_h = 4 * spacing
    axes_c = [np.arange(lo[i], hi[i] + coarse_h, coarse_h) for i in range(3)]
    pc = np.stack(np.meshgrid(*axes_c, indexing="ij"), -1).reshape(-1, 3)
    dc = evaluate_sdf(parts, torch.as_tensor(pc)).numpy().reshape([len(a) for a in axes_c])
    axes = [np.arange(lo[i], hi[i], spacing) for i in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    d = RegularGridInterpolator(axes_c, dc)(pts)
    near = np.flatnonzero(np.abs(d) < 2.5 * coarse_h)
    for s in range(0, len(near), 300_000):
        idx = near[s:s + 300_000]
        d[idx] = evaluate_sdf(parts, torch.as_tensor(pts[idx])).numpy()
    return d.reshape([len(a) for a in axes]), lo


def build_template_mesh(model: HandModel | None = None, spacing: float = 0.0012,
                        triangles: int = 14000) -> tuple[np.ndarray, np.ndarray]:
    """Mesh the rest hand's SDF.

    Args:
        model: hand model whose ``rest_pose`` the hand is built around (default: shipped).
        spacing: marching grid step, metres.
        triangles: target triangle count after quadric decimation.

    Returns:
        vertices (V, 3) metres and faces (F, 3), a closed mesh oriented outwards.
    """
    import open3d as o3d

    m = model or load_hand_model()
    parts = hand_sdf_parts(m.rest_pose)
    values, origin = _grid_sdf(parts, spacing)
    v, f = marching_tetrahedra(values, origin, spacing)
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(v), o3d.utility.Vector3iVector(f))
    mesh = mesh.simplify_quadric_decimation(int(triangles))
    mesh = mesh.filter_smooth_taubin(number_of_iterations=4)
    mesh.remove_degenerate_triangles()
    mesh.remove_unreferenced_vertices()
    return np.asarray(mesh.vertices), np.asarray(mesh.triangles)


def bake_ambient_occlusion(vertices: np.ndarray, faces: np.ndarray, rays: int = 96,
                           reach: float = 0.035, seed: int = 0) -> np.ndarray:
    """(V,) ambient occlusion: fraction of cosine-weighted hemisphere rays from each vertex
    that do not hit the mesh within ``reach`` metres (Open3D ray casting)."""
    import open3d as o3d

    from .mesh_attributes import vertex_normals

    n = vertex_normals(vertices, faces)
    rng = np.random.default_rng(seed)
    u1, u2 = rng.random(rays), rng.random(rays)
    local = np.stack([np.sqrt(u1) * np.cos(2 * np.pi * u2), np.sqrt(u1) * np.sin(2 * np.pi * u2),
                      np.sqrt(1 - u1)], -1)  # cosine-weighted around +z
    helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    t1 = np.cross(n, helper)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    dirs = (local[None, :, :1] * t1[:, None] + local[None, :, 1:2] * t2[:, None]
            + local[None, :, 2:] * n[:, None])  # (V, R, 3)
    origins = np.broadcast_to((vertices + 2e-4 * n)[:, None], dirs.shape)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor.from_numpy(np.ascontiguousarray(vertices, np.float32)),
                        o3d.core.Tensor.from_numpy(np.ascontiguousarray(faces, np.uint32)))
    r = np.concatenate([origins, dirs], -1).reshape(-1, 6).astype(np.float32)
    hit = scene.cast_rays(o3d.core.Tensor.from_numpy(np.ascontiguousarray(r)))["t_hit"]
    hit = hit.numpy().reshape(len(vertices), rays)
    return 1.0 - (hit < reach).mean(1)


def write_mesh_asset(path: str | Path | None = None, model: HandModel | None = None) -> Path:
    """Build the template (:func:`build_template_mesh`, AO) and write it as JSON."""
    m = model or load_hand_model()
    v, f = build_template_mesh(m)
    ao = bake_ambient_occlusion(v, f)
    out = Path(path) if path else default_mesh_path()
    doc = {
        "format_version": MESH_FORMAT_VERSION,
        "_doc": "Template hand mesh of the synthetic renderer (handpose.core.data.synthetic."
                "mesh): rest pose of hand_model.json, metres, hand frame, right hand; faces "
                "counter-clockwise from outside; ao = baked ambient occlusion.",
        "signature": rest_signature(m.rest_pose),
        "rest_joints": np.round(m.rest_pose, 7).tolist(),
        "vertices": np.round(v, 6).reshape(-1).tolist(),
        "faces": f.astype(np.int64).reshape(-1).tolist(),
        "ao": np.round(ao, 3).tolist(),
    }
    out.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    return out


def read_mesh_asset(path: str | Path | None = None) -> dict[str, np.ndarray | str]:
    """The raw arrays of a mesh asset: vertices (V, 3), faces (F, 3), ao (V,),
    rest_joints (21, 3), signature.

    Raises:
        ValueError: missing file, unknown format version or inconsistent arrays.
    """
    p = Path(path) if path else default_mesh_path()
    if not p.is_file():
        raise ValueError(f"hand mesh asset not found: {p} (regenerate it with "
                         f"'python -m handpose.core.data.synthetic.mesh')")
    doc = json.loads(p.read_text(encoding="utf-8"))
    if doc.get("format_version") != MESH_FORMAT_VERSION:
        raise ValueError(f"{p}: format_version {doc.get('format_version')!r} is not "
                         f"{MESH_FORMAT_VERSION}")
    v = np.asarray(doc["vertices"], np.float64).reshape(-1, 3)
    f = np.asarray(doc["faces"], np.int64).reshape(-1, 3)
    ao = np.asarray(doc["ao"], np.float64)
    rest = np.asarray(doc["rest_joints"], np.float64)
    if rest.shape != (21, 3) or len(ao) != len(v) or f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"{p}: inconsistent mesh arrays (rest_joints {rest.shape}, "
                         f"{len(v)} vertices, {len(ao)} ao values, face ids up to {f.max()})")
    return {"vertices": v, "faces": f, "ao": ao, "rest_joints": rest,
            "signature": str(doc["signature"])}


def joint_ellipsoids(vertices: np.ndarray, faces: np.ndarray, rest: np.ndarray,
                     radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per joint, a rest frame (21, 3, 3) and the surface depth along its axes (21, 3): the
    median ray-cast hit distance over a few rays around each of the six axis directions;
    towards the palm/back the thicker side, sideways and along the bone the nearer side (the
    far sides run through the palm or along the finger), sideways at most 1.5 times and along
    the bone at most twice the thickness. Tips lie on the surface: the fingertip's flesh is
    within twice their radius in any direction."""
    import open3d as o3d

    from ...skeleton import PARENTS

    frames = np.zeros((21, 3, 3))
    for j in range(21):
        e0 = rest[9] - rest[0] if j == 0 else rest[j] - rest[PARENTS[j]]
        e0 = e0 / np.linalg.norm(e0)
        e1 = np.array([0.0, 0.0, 1.0]) - e0[2] * e0
        e1 /= np.linalg.norm(e1)
        frames[j] = np.stack([e0, e1, np.cross(e0, e1)], 1)
    tilt = np.deg2rad(12.0)
    offsets = [(0.0, 0.0)] + [(tilt * np.cos(a), tilt * np.sin(a))
                              for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)]
    rays, meta = [], []
    for j in range(21):
        f = frames[j]
        for ax in range(3):
            for sign in (1.0, -1.0):
                o1, o2 = f[:, (ax + 1) % 3], f[:, (ax + 2) % 3]
                for a, b in offsets:
                    d = sign * f[:, ax] + a * o1 + b * o2
                    rays.append(np.r_[rest[j], d / np.linalg.norm(d)])
                    meta.append((j, ax, sign > 0))
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor.from_numpy(np.ascontiguousarray(vertices, np.float32)),
                        o3d.core.Tensor.from_numpy(np.ascontiguousarray(faces, np.uint32)))
    hit = scene.cast_rays(o3d.core.Tensor.from_numpy(np.asarray(rays, np.float32)))["t_hit"]
    hit = hit.numpy()
    hit = np.minimum(hit, 0.1).reshape(21, 3, 2, len(offsets))
    med = np.median(hit, -1)  # (21, 3 axes, 2 signs)
    # front/back of the hand: the thicker side; sideways and along the bone the nearer side
    # (the far side runs through the palm or along the finger)
    ext = np.stack([med[:, 0].min(-1), med[:, 1].max(-1), med[:, 2].min(-1)], 1)
    ext[:, 2] = np.minimum(ext[:, 2], 1.5 * ext[:, 1])  # the palm continues sideways
    # along the bone the flesh continues (a ray at angle a to a finger of radius r crosses
    # r / sin(a) of it): up to twice the cross-section, beyond that the joint counts as hidden
    # by its own finger
    ext[:, 0] = np.minimum(ext[:, 0], 2.0 * ext[:, 1:].max(1))
    tips = [4, 8, 12, 16, 20]
    ext[tips] = 2.0 * radii[tips, None]  # on the surface: the fingertip lies within 2 radii
    return frames, ext


@lru_cache(maxsize=4)
def _load(path: str) -> TemplateMesh:
    from .mesh_attributes import compute_attributes, vertex_normals

    raw = read_mesh_asset(path)
    v, f = raw["vertices"], raw["faces"]
    rest = raw["rest_joints"]
    assert isinstance(v, np.ndarray) and isinstance(f, np.ndarray)
    assert isinstance(rest, np.ndarray)
    att = compute_attributes(v, f, rest)
    ao = np.asarray(raw["ao"], np.float32)
    att["shading"][:, 1] = ao
    radii = np.asarray(JOINT_RADII_MM) * 1e-3
    frames, extent = joint_ellipsoids(v, f, rest, radii)
    return TemplateMesh(
        vertices=v.astype(np.float32), faces=f.astype(np.int32),
        normals=vertex_normals(v, f).astype(np.float32), rest_joints=rest,
        joint_radii=radii, joint_frames=frames, joint_extent=extent, ao=ao,
        skin_weights=att["skin_weights"], region=att["region"], radial=att["radial"],
        shading=att["shading"], part=att["part"], signature=str(raw["signature"]),
    )


def load_template_mesh(path: str | Path | None = None) -> TemplateMesh:
    """The template mesh (cached). ``path``: a mesh asset; None = the shipped one."""
    return _load(str(Path(path).resolve()) if path else str(default_mesh_path()))


@lru_cache(maxsize=8)
def _lod(mesh: TemplateMesh, triangles: int) -> TemplateMesh:
    import open3d as o3d
    from scipy.spatial import cKDTree

    from .mesh_attributes import compute_attributes, vertex_normals

    o3 = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(mesh.vertices.astype(np.float64)),
                                   o3d.utility.Vector3iVector(mesh.faces.astype(np.int32)))
    o3 = o3.simplify_quadric_decimation(int(triangles))
    v, f = np.asarray(o3.vertices), np.asarray(o3.triangles)
    att = compute_attributes(v, f, mesh.rest_joints)
    _, nearest = cKDTree(mesh.vertices).query(v)
    ao = mesh.ao[nearest]
    att["shading"][:, 1] = ao
    return TemplateMesh(
        vertices=v.astype(np.float32), faces=f.astype(np.int32),
        normals=vertex_normals(v, f).astype(np.float32), rest_joints=mesh.rest_joints,
        joint_radii=mesh.joint_radii, joint_frames=mesh.joint_frames,
        joint_extent=mesh.joint_extent, ao=ao, skin_weights=att["skin_weights"],
        region=att["region"], radial=att["radial"], shading=att["shading"], part=att["part"],
        signature=mesh.signature,
    )


def template_lod(mesh: TemplateMesh, triangles: int) -> TemplateMesh:
    """A lighter version of the template (quadric decimation to ``triangles``; attributes
    recomputed, ambient occlusion taken from the nearest full-resolution vertex). Cached.
    Returns ``mesh`` itself when it has no more triangles than asked."""
    if not isinstance(triangles, int) or triangles < 100:
        raise ValueError(f"triangles must be an integer >= 100; got {triangles!r}")
    if len(mesh.faces) <= triangles:
        return mesh
    return _lod(mesh, triangles)


def _main() -> None:
    ap = argparse.ArgumentParser(description="Regenerate the renderer's template hand mesh.")
    ap.add_argument("--out", default=None, help="output JSON (default: the shipped asset)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = write_mesh_asset(args.out)
    raw = read_mesh_asset(out)
    print(f"wrote {out}: {len(raw['vertices'])} vertices, {len(raw['faces'])} faces")


if __name__ == "__main__":
    _main()
