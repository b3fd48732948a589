"""Screen-space culling for the soft renderers: per-primitive pixel windows and scatter reductions.

A primitive (sphere, circle) only influences the pixels of its screen bounding box grown by a
margin beyond which its soft contribution is negligible. Each primitive ``(b, n)`` gets a
window of ``kv x ku`` pixels (one size for all, the largest box of the call) placed over its
box and clamped inside the image, so a window never holds the same pixel twice. The renderer
evaluates the primitive only on its window, a ``(B, N, kv, ku)`` tensor, and the per-pixel
reductions over primitives (sum, log-sum-exp) scatter into the ``B * H * W`` image with
``index_add`` (whose backward is a gather). With ``cull=False`` every window is the whole
image: the dense computation, kept as the reference for tests and benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Windows", "make_windows", "scatter_sum", "scatter_logsumexp"]


@dataclass(frozen=True)
class Windows:
    """Pixel windows of ``N`` primitives in ``B`` images of ``height x width``.

    Attributes:
        cols: (B, N, 1, ku) int64 column index of each window pixel.
        rows: (B, N, kv, 1) int64 row index of each window pixel.
        index: (B * N * kv * ku,) int64 flat pixel index ``b * H * W + row * W + col``.
        size: ``B * H * W``.
    """

    cols: torch.Tensor
    rows: torch.Tensor
    index: torch.Tensor
    size: int


def _starts(lo: torch.Tensor, hi: torch.Tensor, extent: int, valid: torch.Tensor) -> tuple:
    first = torch.floor(lo).to(torch.int64)
    last = torch.ceil(hi).to(torch.int64)
    need = torch.where(valid, last - first + 1, torch.ones_like(first))
    k = int(min(max(int(need.max()) if need.numel() else 1, 1), extent))
    start = torch.where(valid, first, torch.zeros_like(first)).clamp(0, extent - k)
    return start, k


def make_windows(
    u_lo: torch.Tensor,
    u_hi: torch.Tensor,
    v_lo: torch.Tensor,
    v_hi: torch.Tensor,
    valid: torch.Tensor,
    image_size: tuple[int, int],
    cull: bool = True,
) -> Windows:
    """Windows covering the pixel boxes ``[u_lo, u_hi] x [v_lo, v_hi]`` (column/row indices).

    Args:
        u_lo, u_hi, v_lo, v_hi: (B, N) box bounds in pixel-index units (margins included).
            Boxes may extend past the image; only their part inside is covered.
        valid: (B, N) bool; invalid primitives get a window anywhere (the caller masks them).
        image_size: (H, W).
        cull: ``False`` gives every primitive the whole image (the dense reference).
    """
    height, width = image_size
    bsz, n = valid.shape
    device = valid.device
    with torch.no_grad():
        if cull:
            u0, ku = _starts(u_lo, u_hi, width, valid)
            v0, kv = _starts(v_lo, v_hi, height, valid)
        else:
            u0 = torch.zeros((bsz, n), dtype=torch.int64, device=device)
            v0 = torch.zeros_like(u0)
            ku, kv = width, height
        cols = (u0[..., None] + torch.arange(ku, device=device))[:, :, None, :]
        rows = (v0[..., None] + torch.arange(kv, device=device))[:, :, :, None]
        base = (torch.arange(bsz, device=device) * (height * width))[:, None, None, None]
        index = (base + rows * width + cols).reshape(-1)
    return Windows(cols=cols, rows=rows, index=index, size=bsz * height * width)


def scatter_sum(values: torch.Tensor, win: Windows) -> torch.Tensor:
    """(size,) per-pixel sum of ``values`` (B, N, kv, ku) over the primitives covering it."""
    out = values.new_zeros(win.size)
    return out.index_add(0, win.index, values.reshape(-1))


def scatter_logsumexp(values: torch.Tensor, win: Windows) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel log-sum-exp of ``values`` (B, N, kv, ku) over the primitives covering it.

    Returns:
        lse (size,): the log-sum-exp, 0 where no primitive covers the pixel;
        covered (size,) bool: some primitive's window covers the pixel.
    """
    flat = values.reshape(-1)
    with torch.no_grad():
        peak = flat.new_full((win.size,), float("-inf"))
        peak = peak.scatter_reduce(0, win.index, flat, reduce="amax", include_self=True)
        covered = torch.isfinite(peak)
        peak = torch.where(covered, peak, torch.zeros_like(peak))
    total = flat.new_zeros(win.size).index_add(0, win.index, torch.exp(flat - peak[win.index]))
    total = torch.where(covered, total, torch.ones_like(total))
    return torch.log(total) + peak, covered
