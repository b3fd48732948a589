"""Image grids of a disentangled VAE: reconstructions, pose transfer and latent walks.

Each function takes the model (any mode; it is run as given, so call ``model.eval()`` first),
a batch of hand crops and returns one uint8 RGB image (3, H, W) ready for a PNG file or
TensorBoard. Layouts follow the chapter's figures (Yang & Yao 2019, Figs. 4.4 and 4.6):

- :func:`pose_transfer_grid`: the first row holds the content images, the first column the
  pose images and the second their 2D pose (ground truth, drawn on black); cell (i, j) is the
  image decoded from the pose of row i and the content of column j.
- :func:`latent_walk_grid` ("pose"): per row a fixed content, z_pose walked from the pose of
  image A (left) to that of image B (right); the last row draws the decoded poses.
  ("content"): per row a fixed pose, z_content walked from A's content to B's.
- :func:`reconstruction_grid`: rows input, D_x(E_x(x)), D_x([E_y(y), E_u(x)]) (pose from the
  label), and the input with the estimated (colour) and true (white) 2D pose.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from handpose.core.models.disentangled_vae import DisentangledVAE, interpolate

from ..logging import draw_skeletons

__all__ = ["tile", "pose_transfer_grid", "latent_walk_grid", "reconstruction_grid"]

_PAD = 2


def _u8(images: Tensor | np.ndarray) -> np.ndarray:
    a = images.detach().float().cpu().numpy() if isinstance(images, Tensor) else images
    if a.dtype != np.uint8:
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return a


def tile(rows: list[Tensor | np.ndarray], pad: int = _PAD) -> np.ndarray:
    """Tile rows of equal-size images into one image.

    Args:
        rows: R rows, each (C_r, 3, H, W) uint8 or float in [0, 1]; rows may be shorter than
            the longest (the rest stays the padding grey).
        pad: pixels between cells.
    Returns:
        (3, R (H + pad) + pad, C (W + pad) + pad) uint8 RGB.
    """
    if not rows:
        raise ValueError("rows must hold at least one row of images")
    arrs = [_u8(r) for r in rows]
    shapes = {a.shape[1:] for a in arrs}
    if len(shapes) != 1 or any(a.ndim != 4 or a.shape[1] != 3 for a in arrs):
        raise ValueError(f"every row must be (C, 3, H, W) of one H, W; got "
                         f"{[a.shape for a in arrs]}")
    _, h, w = arrs[0].shape[1:]
    ncol = max(a.shape[0] for a in arrs)
    out = np.full((3, len(arrs) * (h + pad) + pad, ncol * (w + pad) + pad), 96, np.uint8)
    for r, a in enumerate(arrs):
        for c in range(a.shape[0]):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            out[:, y:y + h, x:x + w] = a[c]
    return out


def _skeletons(uv: Tensor, size: int) -> np.ndarray:
    black = np.zeros((uv.shape[0], 3, size, size), np.uint8)
    return draw_skeletons(black, uv)


def _check(images: Tensor, images01: Tensor, model: DisentangledVAE) -> None:
    s = model.image_size
    if images.shape != images01.shape or images.shape[1:] != (3, s, s):
        raise ValueError(f"images (normalised) and images01 must both be (B, 3, {s}, {s}); got "
                         f"{tuple(images.shape)} and {tuple(images01.shape)}")


@torch.no_grad()
def pose_transfer_grid(model: DisentangledVAE, images: Tensor, images01: Tensor, uv: Tensor,
                       count: int = 4) -> np.ndarray:
    """Pose transfer (Fig. 4.6): poses of the first ``count`` crops onto the content of the
    next ``count``.

    Args:
        images: (B >= 2 count, 3, S, S) normalised crops, S = ``model.image_size``.
        images01: the same crops in [0, 1]. uv: (B, 21, 2) their ground-truth 2D poses.
    Returns:
        (3, H, W) uint8: (count + 1) rows x (count + 2) columns of cells.
    """
    _check(images, images01, model)
    if images.shape[0] < 2 * count or count < 1:
        raise ValueError(f"need 2 * count = {2 * count} >= 2 crops; got {images.shape[0]}")
    s = model.image_size
    pose_x, content_x = images[:count], images[count:2 * count]
    blank = torch.zeros(2, 3, s, s)
    rows: list[Tensor | np.ndarray] = [torch.cat([blank, images01[count:2 * count].cpu()])]
    skel = _skeletons(uv[:count], s)
    for i in range(count):
        cells = model.transfer(pose_x[i:i + 1].expand(count, -1, -1, -1), content_x)
        first = np.stack([_u8(images01[i]), skel[i]])
        rows.append(np.concatenate([first, _u8(cells)]))
    return tile(rows)


@torch.no_grad()
def latent_walk_grid(model: DisentangledVAE, images: Tensor, images01: Tensor,
                     factor: Literal["pose", "content"], steps: int = 8, count: int = 3
                     ) -> np.ndarray:
    """Latent walk of one factor between crops 0 (A) and 1 (B), the other factor fixed.

    Args:
        images: (B >= 2 + count, 3, S, S) normalised crops; images01: the same in [0, 1].
        factor: "pose" (rows: the content of crops 2.., z_pose from A to B; last row: the
            decoded poses) or "content" (rows: the pose of crops 2.., z_content from A to B).
        steps: points of the walk (>= 2), between the A and B input columns.
        count: rows of fixed factors.
    Returns:
        (3, H, W) uint8.
    """
    _check(images, images01, model)
    if factor not in ("pose", "content"):
        raise ValueError(f"factor must be 'pose' or 'content'; got {factor!r}")
    if images.shape[0] < 2 + count or count < 1:
        raise ValueError(f"need 2 + count = {2 + count} crops; got {images.shape[0]}")
    p = model.pose_latent
    z_img = model.encode_image(images).mu
    z_cont = model.encode_content(images).mu
    a, b = images01[0:1], images01[1:2]
    rows: list[Tensor | np.ndarray] = []
    if factor == "pose":
        walk = interpolate(z_img[0, :p], z_img[1, :p], steps)
        for k in range(2, 2 + count):
            fixed = z_cont[k].expand(steps, -1)
            cells = model.decode_image(torch.cat([walk, fixed], 1))
            rows.append(torch.cat([a, cells, b]).cpu())
        pose = model.decode_pose(walk)
        s = model.image_size
        rows.append(np.concatenate([np.zeros((1, 3, s, s), np.uint8), _skeletons(pose["uv"], s),
                                    np.zeros((1, 3, s, s), np.uint8)]))
    else:
        walk = interpolate(z_cont[0], z_cont[1], steps)
        for k in range(2, 2 + count):
            fixed = z_img[k, :p].expand(steps, -1)
            cells = model.decode_image(torch.cat([fixed, walk], 1))
            rows.append(torch.cat([a, cells, b]).cpu())
    return tile(rows)


@torch.no_grad()
def reconstruction_grid(model: DisentangledVAE, images: Tensor, images01: Tensor, uv: Tensor,
                        z_rel: Tensor, count: int = 8) -> np.ndarray:
    """Rows: inputs, D_x(E_x(x)), D_x([E_y(y), E_u(x)]), inputs with estimated/true 2D pose.

    Args:
        images, images01: (B, 3, S, S) normalised / [0, 1] crops; uv (B, 21, 2), z_rel (B, 21)
            their labels. count: columns (at most B).
    Returns:
        (3, H, W) uint8.
    """
    _check(images, images01, model)
    n = min(count, images.shape[0])
    x, x01 = images[:n], images01[:n]
    rec = model.reconstruct(x)
    syn = model.synthesize(uv[:n], z_rel[:n], x)
    est = model(x)["uv"]
    return tile([x01.cpu(), rec.cpu(), syn.cpu(), draw_skeletons(x01, est, uv[:n])])
