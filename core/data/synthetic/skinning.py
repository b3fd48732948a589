"""Posing the template hand mesh on given joints: batched linear blend skinning in torch.

Bone transforms (deterministic and twist-free):

* the palm: the rigid rotation (Kabsch) taking the template's palm joints (wrist, thumb CMC,
  four MCPs) onto the posed ones;
* each bone, in chain order: its parent's rotation (the palm's for the root bones), followed
  by the minimal rotation taking the parent-rotated rest direction onto the posed direction;
  plus a scaling along the rest bone of ``posed length / rest length``, about the bone's
  parent joint, which is pinned to the posed parent joint. So every joint of the template
  lands exactly on the given joint, whatever the bone lengths;
* the forearm: the palm's rotation followed by a wrist bend (flexion about the hand's x axis,
  deviation about its z axis), pinned at the wrist, stretched along its axis.

Before skinning, the rest mesh is thickened per region (fingers, palm, forearm) by moving each
vertex away from its region's axis (:mod:`.mesh_attributes`), times the hand's size (mean ratio
of posed to rest bone lengths), so small hands have thin fingers. Left hands are skinned as the
mirror image (x -> -x) of a right hand and mirrored back.
"""

from __future__ import annotations

import torch

from ...skeleton import BONES, NUM_BONES
from .mesh import TemplateMesh
from .mesh_attributes import FOREARM_BONE, NUM_SKIN_BONES

__all__ = ["PALM_JOINTS", "WRIST_LIMITS", "minimal_rotation", "kabsch_rotation",
           "bone_transforms", "pose_vertices", "vertex_normals_torch", "hand_size",
           "arm_away_bend"]

#: Joints whose rest/posed positions define the palm's rigid rotation.
PALM_JOINTS = (0, 1, 5, 9, 13, 17)
#: Wrist flexion/extension and deviation limits used when turning the arm away, radians.
WRIST_LIMITS = (1.2, 0.45)


def minimal_rotation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation of least angle taking unit vectors a (..., 3) onto b (..., 3)."""
    v = torch.linalg.cross(a, b)
    c = (a * b).sum(-1)
    zero = torch.zeros_like(c)
    vx = torch.stack([
        torch.stack([zero, -v[..., 2], v[..., 1]], -1),
        torch.stack([v[..., 2], zero, -v[..., 0]], -1),
        torch.stack([-v[..., 1], v[..., 0], zero], -1),
    ], -2)
    eye = torch.eye(3, dtype=a.dtype, device=a.device).expand_as(vx)
    return eye + vx + vx @ vx / (1.0 + c).clamp_min(1e-6)[..., None, None]


def kabsch_rotation(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) proper rotation R minimising sum |R (src - mean) - (dst - mean)|^2 for point
    sets src (N, 3) or (B, N, 3) and dst (B, N, 3)."""
    s = src - src.mean(-2, keepdim=True)
    d = dst - dst.mean(-2, keepdim=True)
    h = s.transpose(-1, -2) @ d if s.ndim == 3 else s.T @ d  # (B, 3, 3)
    u, _, vt = torch.linalg.svd(h)
    det = torch.det(vt.transpose(-1, -2) @ u.transpose(-1, -2))
    fix = torch.ones(h.shape[:-1], dtype=h.dtype, device=h.device)
    fix[..., 2] = torch.sign(det) + (det == 0).to(h.dtype)
    return vt.transpose(-1, -2) @ torch.diag_embed(fix) @ u.transpose(-1, -2)


def _axis_rotation(axis: int, angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    i, j = [k for k in range(3) if k != axis]
    rows = [[zero] * 3 for _ in range(3)]
    rows[axis][axis] = one
    rows[i][i], rows[i][j], rows[j][i], rows[j][j] = c, -s, s, c
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def hand_size(joints: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """(B,) mean ratio of the posed bone lengths (B, 21, 3) to the rest ones (21, 3)."""
    p = torch.tensor([a for a, _ in BONES])
    c = torch.tensor([b for _, b in BONES])
    posed = torch.linalg.norm(joints[:, c] - joints[:, p], dim=-1)
    rest_len = torch.linalg.norm(rest[c] - rest[p], dim=-1)
    return (posed / rest_len).mean(-1)


def bone_transforms(joints: torch.Tensor, rest: torch.Tensor, wrist_bend: torch.Tensor,
                    forearm_scale: torch.Tensor) -> torch.Tensor:
    """Affine transforms (B, 21, 3, 4) of the 20 bones (BONES order) and the forearm.

    Args:
        joints: (B, 21, 3) posed RIGHT-hand joints, metres.
        rest: (21, 3) the template's rest joints.
        wrist_bend: (B, 2) forearm flexion and deviation relative to the palm, radians.
        forearm_scale: (B,) stretch of the forearm along its axis.
    """
    bsz = joints.shape[0]
    dt = joints.dtype
    r_palm = kabsch_rotation(rest[list(PALM_JOINTS)], joints[:, list(PALM_JOINTS)])
    rots: list[torch.Tensor] = []
    mats = []
    eye = torch.eye(3, dtype=dt)
    for p, c in BONES:
        r_par = r_palm if p == 0 else rots[p - 1]
        d_rest = rest[c] - rest[p]
        l_rest = torch.linalg.norm(d_rest)
        d_rest = d_rest / l_rest
        d_pose = joints[:, c] - joints[:, p]
        l_pose = torch.linalg.norm(d_pose, dim=-1)
        d_pose = d_pose / l_pose.clamp_min(1e-9)[:, None]
        a = (r_par @ d_rest[:, None])[..., 0]
        r_b = minimal_rotation(a, d_pose) @ r_par
        rots.append(r_b)
        s = (l_pose / l_rest - 1.0)[:, None, None]
        lin = r_b @ (eye + s * torch.outer(d_rest, d_rest))
        t = joints[:, p] - (lin @ rest[p][:, None])[..., 0]
        mats.append(torch.cat([lin, t[..., None]], -1))
    bend = _bend_rotation(wrist_bend)
    stretch = eye.repeat(bsz, 1, 1)
    stretch[:, 1, 1] = forearm_scale
    lin = r_palm @ bend @ stretch
    t = joints[:, 0] - (lin @ rest[0][:, None])[..., 0]
    mats.append(torch.cat([lin, t[..., None]], -1))
    out = torch.stack(mats, 1)
    assert out.shape[1] == NUM_SKIN_BONES and FOREARM_BONE == NUM_BONES
    return out


def _bend_rotation(wrist_bend: torch.Tensor) -> torch.Tensor:
    return _axis_rotation(0, wrist_bend[..., 0]) @ _axis_rotation(2, wrist_bend[..., 1])


def arm_away_bend(joints: torch.Tensor, rest: torch.Tensor, wrist_bend: torch.Tensor,
                  max_cos: float = 0.15, steps: int = 13) -> torch.Tensor:
    """Wrist bends that keep the forearm from coming towards the camera.

    For each hand, among bends on a grid inside :data:`WRIST_LIMITS`, the one nearest to
    ``wrist_bend`` whose forearm direction makes ``cos <= max_cos`` with the direction from the
    wrist to the camera (the origin); when none does, the one pointing furthest away.

    Args:
        joints: (B, 21, 3) posed right-hand joints, camera frame. rest: (21, 3).
        wrist_bend: (B, 2) radians, the wanted bends.

    Returns:
        (B, 2) radians.
    """
    r_palm = kabsch_rotation(rest[list(PALM_JOINTS)], joints[:, list(PALM_JOINTS)])
    f = torch.linspace(-WRIST_LIMITS[0], WRIST_LIMITS[0], steps, dtype=joints.dtype)
    d = torch.linspace(-WRIST_LIMITS[1], WRIST_LIMITS[1], (steps + 1) // 2, dtype=joints.dtype)
    grid = torch.stack(torch.meshgrid(f, d, indexing="ij"), -1).reshape(-1, 2)  # (G, 2)
    down = torch.tensor([0.0, -1.0, 0.0], dtype=joints.dtype)
    arm = _bend_rotation(grid) @ down  # (G, 3) in the hand frame
    arm_cam = torch.einsum("bij,gj->bgi", r_palm, arm)
    to_cam = -joints[:, 0] / torch.linalg.norm(joints[:, 0], dim=-1, keepdim=True)
    cos = (arm_cam * to_cam[:, None]).sum(-1)  # (B, G)
    dist = ((grid[None] - wrist_bend[:, None]) ** 2).sum(-1)
    ok = cos <= max_cos
    score = torch.where(ok, dist, 1e6 + cos)
    choice = grid[score.argmin(1)]
    # keep the wanted bend when it already points away
    wanted = torch.einsum("bij,bj->bi", r_palm, _bend_rotation(wrist_bend) @ down)
    keep = ((wanted * to_cam).sum(-1) <= max_cos)[:, None]
    return torch.where(keep, wrist_bend, choice)


def vertex_normals_torch(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) unit area-weighted normals of meshes (B, V, 3) sharing faces (F, 3)."""
    tri = vertices[:, faces]  # (B, F, 3, 3)
    fn = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    n = torch.zeros_like(vertices)
    for k in range(3):
        n.index_add_(1, faces[:, k], fn)
    return n / torch.linalg.norm(n, dim=-1, keepdim=True).clamp_min(1e-12)


def pose_vertices(mesh: TemplateMesh, joints: torch.Tensor, is_left: torch.Tensor,
                  thickness: torch.Tensor, wrist_bend: torch.Tensor,
                  forearm_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Skin the template onto posed joints.

    Args:
        mesh: the template.
        joints: (B, 21, 3) metres, camera frame (validated by the caller).
        is_left: (B,) bool.
        thickness: (B, 3) finger, palm and forearm thickness factors (1 = template).
        wrist_bend: (B, 2) radians. forearm_scale: (B,).

    Returns:
        vertices (B, V, 3) and unit normals (B, V, 3), float32, camera frame.
    """
    dt = torch.float32
    j = joints.to(dt)
    mirror = torch.where(is_left, -1.0, 1.0).to(dt)
    j = j * torch.stack([mirror, torch.ones_like(mirror), torch.ones_like(mirror)], -1)[:, None]
    rest = torch.as_tensor(mesh.rest_joints, dtype=dt)
    size = hand_size(j, rest)
    k = thickness.to(dt) * size[:, None]  # (B, 3)
    v0 = torch.as_tensor(mesh.vertices, dtype=dt)
    region = torch.as_tensor(mesh.region, dtype=dt)
    radial = torch.as_tensor(mesh.radial, dtype=dt)  # (V, 3, 3)
    offset = torch.einsum("vr,br,vrc->bvc", region, k - 1.0, radial)
    vr = v0[None] + offset  # (B, V, 3)
    mats = bone_transforms(j, rest, wrist_bend.to(dt), forearm_scale.to(dt))  # (B, 21, 3, 4)
    w = torch.as_tensor(mesh.skin_weights, dtype=dt)
    blend = torch.matmul(w, mats.reshape(len(j), NUM_SKIN_BONES, 12))  # (B, V, 12)
    b = blend.reshape(len(j), -1, 3, 4)
    verts = (b[..., :3] * vr[:, :, None, :]).sum(-1) + b[..., 3]
    # normals: the rest normals through the blended linear parts (inverse-transpose omitted:
    # the stretch along a bone changes them by a few degrees at most)
    n0 = torch.as_tensor(mesh.normals, dtype=dt)
    normals = (b[..., :3] * n0[None, :, None, :]).sum(-1)
    normals = normals / torch.linalg.norm(normals, dim=-1, keepdim=True).clamp_min(1e-12)
    flip = torch.stack([mirror, torch.ones_like(mirror), torch.ones_like(mirror)], -1)[:, None]
    verts, normals = verts * flip, normals * flip
    return verts, normals
