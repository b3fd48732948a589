"""Depth crops in a crop cube: the input convention of the depth FCN (Wan et al. 2019).

**The crop cube.** An axis-aligned cube in the camera frame (axes of the camera: x right,
y down, z forward), centred on the hand at ``c`` (metres) with side ``a`` (default 0.3 m).
Normalised cube coordinates are ``q = (p - c) / (a / 2)``, so the cube is ``[-1, 1]^3``
(:func:`to_cube`, :func:`from_cube`).

**The crop** is an orthographic ``S x S`` depth image of the cube's x-y face (S = 64): cell
``(i, j)`` covers ``x in c_x + a (j / S - 1/2) .. c_x + a ((j + 1) / S - 1/2)`` (same for y with
i), the pixel grid of :func:`handpose.core.render.render_depth_orthographic`, so a sphere model
rendered there compares cell by cell. :func:`depth_to_cube` back-projects every valid depth
pixel (``Z > 0``) with ``K`` and splats it into its cell; a cell holds the nearest surface
within the cube's depth range ``[c_z - a/2, c_z + a/2]`` (the hand): the mean of its readings
within ``surface_band`` (1 cm) of its nearest reading. Other cells read ``far = c_z + a/2``
(the back face): cells whose points lie behind the cube (background), and empty cells (no
reading: the sensor's background or a hole), unless ``empty="invalid"`` marks those invalid
(``valid`` False, excluded from L_m2d). Points in front of the cube (occluders) are dropped.
Small holes inside the hand (an empty cell with at least 6 of its 8 neighbours on the hand) are
filled with the nearest neighbouring depth first.

**Network input** (:meth:`CubeCrop.normalized`): ``(Z - c_z) / (a / 2)`` in ``[-1, 1]``, the
background exactly 1; shape (B, 1, S, S).

**Centre.** From labels (e.g. the mean joint) or, without labels,
:func:`hand_centre_from_depth`: a mean-shift in 3D started at the nearest readings (the hand is
taken to be the object nearest the camera, as in most depth-based hand datasets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..geometry.camera import check_intrinsics, normalize_pixels

__all__ = [
    "DEFAULT_CUBE_SIDE",
    "DEFAULT_CROP_SIZE_PX",
    "CubeCrop",
    "to_cube",
    "from_cube",
    "depth_to_cube",
    "cube_points",
    "hand_centre_from_depth",
]

#: Side of the crop cube in metres (an adult hand spans about 0.2 m).
DEFAULT_CUBE_SIDE = 0.3
#: Side of the crop in cells (the FCN's input size).
DEFAULT_CROP_SIZE_PX = 64


@dataclass(frozen=True)
class CubeCrop:
    """Depth crops of a batch (see the module docstring).

    Attributes:
        depth: (B, S, S) metres (camera Z): the hand's surface, ``far`` elsewhere.
        hand: (B, S, S) bool, the cell holds a reading inside the cube.
        valid: (B, S, S) bool, the cell's value is known (hand or background).
        centre: (B, 3) metres; side: (B,) metres.
    """

    depth: torch.Tensor
    hand: torch.Tensor
    valid: torch.Tensor
    centre: torch.Tensor
    side: torch.Tensor

    @property
    def far(self) -> torch.Tensor:
        """(B,) metres: the back face ``c_z + a / 2`` (the background value)."""
        return self.centre[:, 2] + self.side / 2

    def normalized(self) -> torch.Tensor:
        """(B, 1, S, S) network input ``(Z - c_z) / (a / 2)`` clipped to [-1, 1]."""
        q = (self.depth - self.centre[:, 2, None, None]) / (self.side[:, None, None] / 2)
        return q.clamp(-1.0, 1.0)[:, None]


def _batch(x: Any, bsz: int, tail: tuple[int, ...], name: str, like: torch.Tensor
           ) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if tuple(t.shape) == tail:
        t = t.expand(bsz, *tail)
    if tuple(t.shape) != (bsz, *tail):
        raise ValueError(f"{name} must have shape {tail} or ({bsz}, {', '.join(map(str, tail))})"
                         f"; got {tuple(t.shape)}")
    return t


def _side(side: Any, bsz: int, like: torch.Tensor) -> torch.Tensor:
    s = _batch(side, bsz, (), "side", like)
    if not bool(torch.all(s > 0)):
        raise ValueError(f"side must be positive metres; got {s.tolist()}")
    return s


def to_cube(points: torch.Tensor, centre: torch.Tensor, side: torch.Tensor | float
            ) -> torch.Tensor:
    """Metres -> normalised cube coordinates ``(p - c) / (a / 2)``.

    Args:
        points: (B, N, 3) metres, camera frame.
        centre: (B, 3) or (3,) metres; side: float or (B,) metres.
    Returns:
        (B, N, 3) unitless.
    """
    if not isinstance(points, torch.Tensor) or points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must be a tensor (B, N, 3) metres; got "
                         f"{tuple(getattr(points, 'shape', ()))}")
    c = _batch(centre, points.shape[0], (3,), "centre", points)
    s = _side(side, points.shape[0], points)
    return (points - c[:, None]) / (s[:, None, None] / 2)


def from_cube(points: torch.Tensor, centre: torch.Tensor, side: torch.Tensor | float
              ) -> torch.Tensor:
    """Normalised cube coordinates -> metres ``c + (a / 2) q`` (inverse of :func:`to_cube`).

    Args:
        points: (B, N, 3) unitless; centre: (B, 3) or (3,) metres; side: float or (B,) metres.
    Returns:
        (B, N, 3) metres, camera frame.
    """
    if not isinstance(points, torch.Tensor) or points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must be a tensor (B, N, 3); got "
                         f"{tuple(getattr(points, 'shape', ()))}")
    c = _batch(centre, points.shape[0], (3,), "centre", points)
    s = _side(side, points.shape[0], points)
    return c[:, None] + points * (s[:, None, None] / 2)


def _depth_batch(depth: Any) -> tuple[torch.Tensor, bool]:
    d = torch.as_tensor(depth)
    single = d.ndim == 2
    if single:
        d = d[None]
    if d.ndim == 4 and d.shape[1] == 1:
        d = d[:, 0]
    if d.ndim != 3 or not d.is_floating_point():
        raise ValueError(f"depth must be a float (H, W), (B, H, W) or (B, 1, H, W) map of "
                         f"metres; got {tuple(d.shape)} {d.dtype}")
    return d, single


def _fill_holes(z: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    """Fill empty cells with >= 6 of 8 hand neighbours by the neighbours' minimum depth."""
    inf = torch.full_like(z, float("inf"))
    hand_z = torch.where(torch.isfinite(z), z, inf)[:, None]
    near = -F.max_pool2d(-hand_z, 3, stride=1, padding=1)[:, 0]
    count = F.avg_pool2d(torch.isfinite(hand_z).to(z.dtype), 3, stride=1, padding=1,
                         count_include_pad=True)[:, 0] * 9
    fill = empty & (count >= 6) & torch.isfinite(near)
    return torch.where(fill, near, z)


def depth_to_cube(
    depth: Any,
    K: Any,
    centre: Any,
    side: Any = DEFAULT_CUBE_SIDE,
    size: int = DEFAULT_CROP_SIZE_PX,
    empty: str = "far",
    fill_holes: bool = True,
    surface_band: float = 0.01,
) -> CubeCrop:
    """Orthographic depth crops of the cube around ``centre`` (see the module docstring).

    Args:
        depth: (H, W), (B, H, W) or (B, 1, H, W) metres, camera Z; 0 / NaN / inf = no reading.
        K: (3, 3) or (B, 3, 3) intrinsics of the depth maps.
        centre: (3,) or (B, 3) metres, camera frame.
        side: cube side in metres, float or (B,).
        size: S, cells per side.
        empty: ``"far"`` (cells without any reading are background) or ``"invalid"``.
        fill_holes: fill small holes inside the hand first.
        surface_band: metres; a cell's depth is the mean of its readings within this band of
            its nearest reading (the visible surface; robust to noise and to depth edges).
    Returns:
        :class:`CubeCrop` (float32 unless the depth is float64; on the depth's device).
    Raises:
        ValueError: bad shapes, K, side, size or ``empty``.
    """
    d, _ = _depth_batch(depth)
    if d.dtype != torch.float64:
        d = d.float()
    bsz, h, w = d.shape
    if not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an int >= 2 cells; got {size!r}")
    if empty not in ("far", "invalid"):
        raise ValueError(f"empty must be 'far' or 'invalid'; got {empty!r}")
    k = _batch(K, bsz, (3, 3), "K", d)
    check_intrinsics(k)
    c = _batch(centre, bsz, (3,), "centre", d)
    s = _side(side, bsz, d)
    ok = (d > 0) & (d < float("inf"))  # False for NaN too
    bi, ii, jj = torch.nonzero(ok, as_tuple=True)  # the valid pixels only
    z = d[bi, ii, jj]
    # normalised rays of the first row and column suffice when K has no skew; in general
    # the (B, H, W, 2) ray grid of each image is computed once and the valid pixels read
    vv, uu = torch.meshgrid(torch.arange(h, dtype=d.dtype, device=d.device),
                            torch.arange(w, dtype=d.dtype, device=d.device), indexing="ij")
    grid = torch.stack([uu, vv], -1).reshape(1, h * w, 2).expand(bsz, -1, -1)
    xy = normalize_pixels(grid, k).reshape(bsz, h, w, 2)[bi, ii, jj]  # (P, 2)
    cb, sb = c[bi], s[bi]
    col = torch.floor((xy[:, 0] * z - (cb[:, 0] - sb / 2)) / sb * size)
    row = torch.floor((xy[:, 1] * z - (cb[:, 1] - sb / 2)) / sb * size)
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    zrel = z - cb[:, 2]
    in_range = inside & (zrel.abs() <= sb / 2)
    behind = inside & (zrel > sb / 2)
    cell = bi * (size * size) + (row.clamp(0, size - 1) * size + col.clamp(0, size - 1)).long()
    n = bsz * size * size
    zmin = torch.full((n,), float("inf"), dtype=d.dtype, device=d.device)
    zmin = zmin.scatter_reduce(0, cell[in_range], z[in_range], reduce="amin")
    # the mean of the cell's front surface (readings within surface_band of its nearest one):
    # unbiased under sensor noise, unlike the minimum of many noisy readings
    front = in_range & (z <= zmin[cell] + surface_band)
    zsum = torch.zeros(n, dtype=d.dtype, device=d.device).index_add_(0, cell[front], z[front])
    cnt = torch.zeros(n, dtype=d.dtype, device=d.device).index_add_(
        0, cell[front], torch.ones_like(z[front]))
    zmin = torch.where(cnt > 0, zsum / cnt.clamp(min=1), zmin)
    seen = torch.zeros(n, dtype=torch.bool, device=d.device)
    seen[cell[behind]] = True
    seen[cell[in_range]] = True
    zmin = zmin.reshape(bsz, size, size)
    seen = seen.reshape(bsz, size, size)
    if fill_holes:
        zmin = _fill_holes(zmin, ~seen)
    hand = torch.isfinite(zmin)
    far = (c[:, 2] + s / 2)[:, None, None]
    out = torch.where(hand, zmin, far.expand_as(zmin))
    valid = hand | seen | torch.full_like(hand, empty == "far")
    return CubeCrop(depth=out, hand=hand, valid=valid, centre=c, side=s)


def cube_points(crop: CubeCrop, stride: int = 1, max_points: int = 0,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The hand cells of a crop as 3D points (cell centre x, y; the cell's depth z).

    Args:
        crop: a :class:`CubeCrop` (or the result of rendering into the same cube).
        stride: keep every ``stride``-th row and column of cells.
        max_points: > 0: at most this many points per image, a uniformly random subset of the
            hand cells (``generator`` seeds it; the points of images with fewer hand cells are
            all kept, the rest of the slots masked).
        generator: random generator for ``max_points`` (on the crop's device).
    Returns:
        points (B, M, 3) metres, camera frame (M = (S / stride)^2, or ``max_points``) and mask
        (B, M) bool (True on hand cells).
    """
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an int >= 1; got {stride!r}")
    if not isinstance(max_points, int) or max_points < 0:
        raise ValueError(f"max_points must be an int >= 0; got {max_points!r}")
    z = crop.depth[:, ::stride, ::stride]
    mask = crop.hand[:, ::stride, ::stride]
    bsz, size = crop.depth.shape[0], crop.depth.shape[-1]
    idx = torch.arange(0, size, stride, dtype=z.dtype, device=z.device)
    g = ((idx + 0.5) / size - 0.5)  # fraction of the side
    gx = crop.centre[:, 0, None] + crop.side[:, None] * g  # (B, m)
    gy = crop.centre[:, 1, None] + crop.side[:, None] * g
    m = len(idx)
    x = gx[:, None, :].expand(bsz, m, m)
    y = gy[:, :, None].expand(bsz, m, m)
    pts = torch.stack([x, y, z], -1).reshape(bsz, m * m, 3)
    mask = mask.reshape(bsz, m * m)
    if 0 < max_points < m * m:
        keys = torch.rand(mask.shape, generator=generator, device=mask.device)
        keys = torch.where(mask, keys, keys - 2.0)  # hand cells first, in random order
        pick = keys.topk(max_points, dim=1).indices
        pts = pts.gather(1, pick[..., None].expand(-1, -1, 3))
        mask = mask.gather(1, pick)
    return pts, mask


def hand_centre_from_depth(
    depth: Any,
    K: Any,
    radius: float = 0.05,
    near_band: float = 0.03,
    iterations: int = 10,
    stride: int = 2,
) -> torch.Tensor:
    """A hand centre without labels: 3D mean-shift from the nearest readings.

    Seed: the median of the points within ``near_band`` metres of the 1st depth percentile
    (robust to a few stray near pixels). Then ``iterations`` times: the mean of the points
    within ``radius`` metres of the current centre. For a hand in front of its arm (the usual
    depth-camera setting) the result lies on the hand's visible surface: on the 25 frames of
    ``shared/data/real_rgbd`` 11.6 mm from the mean joint on average (28.8 mm with a 0.1 m
    radius, which the forearm pulls towards the wrist).

    Args:
        depth: (H, W) or (B, H, W) metres; 0 / NaN = no reading.
        K: (3, 3) or (B, 3, 3).
        radius, near_band: metres. iterations: mean-shift steps. stride: pixel subsampling.
    Returns:
        (3,) or (B, 3) metres (matching the depth's batch shape).
    Raises:
        ValueError: an image without any valid reading (names the batch index).
    """
    d, single = _depth_batch(depth)
    d = d.double()
    bsz = d.shape[0]
    k = _batch(K, bsz, (3, 3), "K", d)
    check_intrinsics(k)
    out = []
    for b in range(bsz):
        sub = d[b, ::stride, ::stride]
        ok = torch.isfinite(sub) & (sub > 0)
        if not bool(ok.any()):
            raise ValueError(f"depth[{b}] has no valid reading (all 0 / NaN): no hand to centre")
        ii, jj = torch.nonzero(ok, as_tuple=True)
        uv = torch.stack([jj * stride, ii * stride], -1).to(d.dtype)
        z = sub[ii, jj]
        pts = torch.cat([normalize_pixels(uv, k[b]) * z[:, None], z[:, None]], -1)
        z1 = torch.quantile(z, 0.01)
        centre = pts[z <= z1 + near_band].median(0).values
        for _ in range(iterations):
            near = ((pts - centre) ** 2).sum(-1) <= radius**2
            if not bool(near.any()):
                break
            centre = pts[near].mean(0)
        out.append(centre)
    res = torch.stack(out).float()
    return res[0] if single else res
