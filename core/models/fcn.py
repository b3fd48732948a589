"""Depth FCN: an hourglass network with integral regression of 3D points (Wan et al. 2019).

Input: a depth crop in the normalised crop cube (:mod:`handpose.core.data.depth_crop`), (B, 1,
S, S) with S = ``input_size`` (64), values ``(Z - c_z) / (a / 2)`` in [-1, 1] (background 1).

Output: per point k (the 21 joints or the 41 sphere centres), a heatmap ``h_k`` and a depth map
``d_k`` at S / 2 resolution. With ``p_k = softmax(beta h_k)`` over the cells (METHODS §6,
Wan et al. eq. 1-2, ``beta`` = 10):

    x_k = sum_cells p_k(cell) gx(cell),  y_k = sum p_k gy,  z_k = sum p_k d_k

where ``(gx, gy)`` are the cell centres in normalised cube coordinates: cell ``(i, j)`` of an
``h x w`` map sits at ``gx = 2 (j + 0.5) / w - 1``, ``gy = 2 (i + 0.5) / h - 1`` (the pixel
grid of :func:`~handpose.core.render.render_depth_orthographic`). So the points are in the
normalised cube: metres = ``c + (a / 2) * point`` (:func:`~handpose.core.data.depth_crop.
from_cube`).

Architecture (Newell et al. 2016, pre-activation bottleneck residuals): a strided 5x5 stem
convolution to S / 2 (cheaper than Newell's full-resolution residual; the 64 px input is
already coarse), a residual, then ``stacks`` hourglasses of ``depth`` levels
(S / 2 -> S / 2^(depth + 1)), each followed by a residual, a 1x1 conv-BN-ReLU and a 1x1 head
with 2 K outputs; between stacks the head is mapped back and added (intermediate supervision).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DepthFCN", "Hourglass", "integral_points"]


class _Residual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1x1 (c/2), BN-ReLU-3x3 (c/2), BN-ReLU-1x1 (c)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = max(cout // 2, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, mid, 1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1),
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels (each halves the resolution); shape-preserving.

    The input side must be divisible by ``2 ** depth``.
    """

    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"hourglass depth must be >= 1; got {depth}")
        self.up1 = _Residual(channels, channels)
        self.low1 = _Residual(channels, channels)
        self.low2: nn.Module = (Hourglass(depth - 1, channels) if depth > 1
                                else _Residual(channels, channels))
        self.low3 = _Residual(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return self.up1(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


def integral_points(heatmaps: torch.Tensor, depthmaps: torch.Tensor, beta: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Integral regression: soft-argmax 2D and heatmap-weighted depth.

    Args:
        heatmaps: (B, K, h, w) logits.
        depthmaps: (B, K, h, w) normalised depths.
        beta: softmax sharpness (Wan et al.'s alpha).
    Returns:
        points (B, K, 3) in the normalised cube (x, y from the cell grid, z from the depth
        maps) and the probabilities (B, K, h, w).
    """
    if heatmaps.ndim != 4 or depthmaps.shape != heatmaps.shape:
        raise ValueError(f"heatmaps and depthmaps must be (B, K, h, w) of one shape; got "
                         f"{tuple(heatmaps.shape)} and {tuple(depthmaps.shape)}")
    b, k, h, w = heatmaps.shape
    dtype = torch.promote_types(heatmaps.dtype, torch.float32)  # never integrate in half
    prob = torch.softmax(beta * heatmaps.reshape(b, k, h * w).to(dtype), dim=-1)
    gy = (torch.arange(h, device=heatmaps.device, dtype=prob.dtype) + 0.5) * (2.0 / h) - 1.0
    gx = (torch.arange(w, device=heatmaps.device, dtype=prob.dtype) + 0.5) * (2.0 / w) - 1.0
    p = prob.reshape(b, k, h, w)
    x = (p.sum(2) * gx).sum(-1)
    y = (p.sum(3) * gy).sum(-1)
    z = (p * depthmaps.to(dtype)).sum((2, 3))
    return torch.stack([x, y, z], -1), p


class DepthFCN(nn.Module):
    """Hourglass FCN with integral 3D regression on a normalised depth crop.

    Args:
        num_points: K, 21 (joints) or 41 (sphere centres).
        width: channels of the hourglass (Newell et al.: 256; 64 is plenty for 64 px crops).
        stacks: number of stacked hourglasses (Wan et al.: 1 or 2).
        depth: levels per hourglass (3: 32 -> 4 px).
        beta: softmax sharpness of the integral regression (10, Wan et al.).
        input_size: side S of the input crop in pixels (divisible by 2 ** (depth + 1)).
    """

    def __init__(self, num_points: int = 21, width: int = 64, stacks: int = 1, depth: int = 3,
                 beta: float = 10.0, input_size: int = 64) -> None:
        super().__init__()
        if num_points not in (21, 41):
            raise ValueError(f"num_points must be 21 (joints) or 41 (spheres); got {num_points}")
        if width < 2 or stacks < 1 or depth < 1 or not beta > 0:
            raise ValueError(f"need width >= 2, stacks >= 1, depth >= 1, beta > 0; got "
                             f"{width}, {stacks}, {depth}, {beta}")
        if input_size % (2 ** (depth + 1)):
            raise ValueError(f"input_size must be divisible by 2 ** (depth + 1) = "
                             f"{2 ** (depth + 1)}; got {input_size}")
        self.num_points, self.beta, self.input_size = num_points, float(beta), input_size
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.pre = _Residual(width, width)
        self.hourglasses = nn.ModuleList(Hourglass(depth, width) for _ in range(stacks))
        self.features = nn.ModuleList(
            nn.Sequential(_Residual(width, width), nn.Conv2d(width, width, 1, bias=False),
                          nn.BatchNorm2d(width), nn.ReLU(inplace=True))
            for _ in range(stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(width, 2 * num_points, 1) for _ in range(stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(width, width, 1)
                                            for _ in range(stacks - 1))
        self.merge_heads = nn.ModuleList(nn.Conv2d(2 * num_points, width, 1)
                                         for _ in range(stacks - 1))
        for head in self.heads:  # start from flat heatmaps and depth 0 (the cube centre)
            assert isinstance(head, nn.Conv2d) and head.bias is not None
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)

    def forward(self, depth: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predict points from normalised depth crops.

        Args:
            depth: (B, 1, S, S) normalised cube depth (see the module docstring).
        Returns:
            ``points`` (B, K, 3) normalised cube coordinates of the last stack;
            ``stack_points`` (stacks, B, K, 3) of every stack (intermediate supervision);
            ``heatmaps`` (B, K, S/2, S/2) probabilities and ``depthmaps`` (B, K, S/2, S/2) of
            the last stack.
        """
        s = self.input_size
        if depth.ndim != 4 or tuple(depth.shape[1:]) != (1, s, s):
            raise ValueError(f"depth must have shape (B, 1, {s}, {s}) (normalised cube depth); "
                             f"got {tuple(depth.shape)}")
        x = self.pre(self.stem(depth))
        all_points = []
        prob = maps = depth.new_zeros(())
        for i, hg in enumerate(self.hourglasses):
            feat = self.features[i](hg(x))
            out = self.heads[i](feat)
            heat, maps = out.split(self.num_points, dim=1)
            pts, prob = integral_points(heat, maps, self.beta)
            all_points.append(pts)
            if i < len(self.hourglasses) - 1:
                x = x + self.merge_features[i](feat) + self.merge_heads[i](out)
        return {"points": all_points[-1], "stack_points": torch.stack(all_points),
                "heatmaps": prob, "depthmaps": maps}
