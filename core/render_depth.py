"""Differentiable soft depth renderer of spheres (Wan et al. 2019, METHODS §6).

Per pixel and sphere ``j`` the renderer computes, along the ray through the pixel centre,

* ``rho_j``: the distance (metres) from the sphere centre to the ray;
* ``z_j``: the depth (camera z, metres) of the first ray-sphere intersection, exact inside the
  silhouette (perspective: ray ``t * d``, ``d = K^-1 [u, v, 1]``, ``z_j = t0 - sqrt(r^2 -
  rho^2) / |d|`` with ``t0`` the depth of the ray point nearest the centre; orthographic:
  ``z_c - sqrt(r^2 - rho^2)``). Outside the silhouette the square root is clamped, so ``z_j``
  continues as the depth of the ray point nearest the centre;
* ``s_j``: the signed distance in pixels to the silhouette edge, positive inside:
  ``(r - rho) * f / z_c`` (perspective, ``f`` the mean focal length: exact in pixels for a
  sphere on the optical axis, and ``s_j = 0`` is always the exact silhouette) or ``(r - rho) /
  pixel size`` (orthographic).

Softening. The silhouette weight ``a_j = smoothstep(s_j)`` (:func:`coverage`) rises from 0 to 1
over ``-sigma <= s_j <= sigma`` pixels (C1, exactly 0 / 1 beyond), so the pixels of a band
``2 sigma`` wide around each silhouette carry gradients, and a sphere has no effect at all
beyond ``sigma`` pixels outside its silhouette. The image is

* mask ``M = 1 - prod_j (1 - a_j)``, the soft union of the silhouettes;
* foreground depth ``D_fg = sum_j p_j z_j`` with ``p = softmax_j(log a_j - z_j / tau)`` over
  the spheres covering the pixel: a soft minimum (the Boltzmann operator) weighted by the
  coverage. Where one sphere is nearer by several ``tau`` it takes the pixel; spheres at
  equal depth render that depth exactly. (The log-sum-exp soft minimum ``-tau log sum_j
  exp(-z_j / tau)`` would read ``tau log n`` too near where ``n`` spheres overlap at one depth,
  up to 6 mm on the palm; normalising it by ``sum a_j`` moves the same bias to pixels where one
  sphere is clearly in front.) Since the weights vanish ``sigma`` pixels outside a silhouette,
  a nearer sphere never bleeds over a farther surface beyond its edge band;
* depth ``D = M * D_fg + (1 - M) * far``: background pixels read ``far``.

As ``tau, sigma -> 0`` the image becomes the hard z-buffer ``min_j z_j`` over the hit spheres
(``far`` elsewhere). Defaults: ``tau = 4 mm`` (the crease where two spheres of a finger
intersect is smoothed over a few mm; where depths differ by more than a few ``tau`` the nearer
wins), ``sigma = 1 px``.

Culling (:mod:`.render_windows`): a sphere is evaluated only on the exact screen bounding box
(tangent lines) of the sphere grown by its edge band (radius ``r + sigma * z_c / f``, resp.
``r + sigma * pixel size``) plus one pixel, outside which its weight is exactly 0: the culled
image equals the dense one up to rounding. Spheres not entirely in front of the camera
(``z - r <= 1 mm``) are not rendered. Gradients flow to the centres and radii (and ``far``).
"""

from __future__ import annotations

import math

import torch

from .render_windows import Windows, make_windows, scatter_sum

__all__ = ["render_depth_perspective", "render_depth_orthographic", "coverage"]

_NEAR = 1e-3  # metres: a sphere must lie beyond z = _NEAR to be rendered
_EPS_ROOT = 1e-4  # metres: sqrt(max(r^2 - rho^2, eps^2)) keeps the edge slope finite
_EPS_RHO = 1e-6  # metres: rho = sqrt(rho^2 + eps^2) keeps the gradient finite on the axis
_HIDDEN = -1e4  # pixels: signed edge distance given to spheres that are not rendered
_TINY = 1e-30  # 1 - a is clamped here before its log (a = 1 in a silhouette's core)


def _check_spheres(centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    if not isinstance(centres, torch.Tensor) or not centres.is_floating_point():
        raise ValueError(f"centres must be a floating tensor (B, N, 3); got {type(centres)}")
    if centres.ndim != 3 or centres.shape[-1] != 3:
        raise ValueError(f"centres must have shape (B, N, 3) metres; got {tuple(centres.shape)}")
    if not isinstance(radii, torch.Tensor):
        raise ValueError(f"radii must be a tensor (B, N) or (N,); got {type(radii).__name__}")
    bsz, n, _ = centres.shape
    if tuple(radii.shape) not in ((n,), (bsz, n)):
        raise ValueError(
            f"radii must have shape ({bsz}, {n}) or ({n},) metres; got {tuple(radii.shape)}"
        )
    if not torch.jit.is_tracing() and not bool(torch.all(radii > 0)):
        raise ValueError("radii must be positive")
    return radii.to(centres.dtype).expand(bsz, n)


def _check_size(image_size: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = (int(x) for x in image_size)
    except (TypeError, ValueError) as e:
        raise ValueError(f"image_size must be (H, W); got {image_size!r}") from e
    if h < 1 or w < 1:
        raise ValueError(f"image_size must be positive (H, W); got {image_size!r}")
    return h, w


def _per_image(x: torch.Tensor | float, bsz: int, like: torch.Tensor, name: str,
               last: tuple[int, ...] = ()) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if tuple(t.shape) == last:
        t = t.expand(bsz, *last)
    if tuple(t.shape) != (bsz, *last):
        want = ", ".join(str(d) for d in (bsz, *last))
        raise ValueError(f"{name} must have shape ({want}) or {last}; got {tuple(t.shape)}")
    return t


def _check_soft(tau: float, sigma: float) -> None:
    if not tau > 0 or not sigma > 0:
        raise ValueError(f"tau and sigma must be positive; got tau={tau}, sigma={sigma}")


def coverage(edge: torch.Tensor, sigma: float) -> torch.Tensor:
    """Soft silhouette weight of a signed edge distance ``edge`` (pixels, positive inside).

    A C1 smoothstep over ``[-sigma, sigma]``: 0 at or beyond ``sigma`` outside, 1 at or beyond
    ``sigma`` inside, ``t^2 (3 - 2 t)`` with ``t = (edge + sigma) / (2 sigma)`` between.
    """
    t = ((edge + sigma) * (0.5 / sigma)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _compose(z: torch.Tensor, s: torch.Tensor, far: torch.Tensor, win: Windows,
             shape: tuple[int, int, int], tau: float, sigma: float
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft z-buffer of per-window depths ``z`` and edge distances ``s`` (B, N, kv, ku)."""
    alpha = coverage(s, sigma)
    hit = alpha > 0
    log_a = torch.log(torch.where(hit, alpha, torch.ones_like(alpha)))
    logits = torch.where(hit, log_a - z / tau, torch.full_like(alpha, float("-inf")))
    flat = logits.reshape(-1)
    with torch.no_grad():
        peak = flat.new_full((win.size,), float("-inf"))
        peak = peak.scatter_reduce(0, win.index, flat, reduce="amax", include_self=True)
        covered = torch.isfinite(peak)
        peak = torch.where(covered, peak, torch.zeros_like(peak))
    weight = torch.exp(logits - peak[win.index].reshape(logits.shape))
    den = scatter_sum(weight, win)  # >= 1 where covered (the peak's own weight is 1)
    num = scatter_sum(weight * z, win)
    log_empty = scatter_sum(torch.log((1.0 - alpha).clamp(min=_TINY)), win)
    mask = -torch.expm1(log_empty)
    far_px = far[:, None, None].expand(shape).reshape(-1)
    fg = torch.where(covered, num / torch.where(covered, den, torch.ones_like(den)), far_px)
    depth = far_px + mask * (fg - far_px)
    return depth.reshape(shape), mask.reshape(shape)


def render_depth_perspective(
    centres: torch.Tensor,
    radii: torch.Tensor,
    K: torch.Tensor,
    image_size: tuple[int, int],
    *,
    far: torch.Tensor | float = 2.0,
    tau: float = 0.004,
    sigma: float = 1.0,
    cull: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render spheres as a soft depth map through a pinhole camera.

    Pixel ``(row i, col j)`` is sampled at its centre ``(u, v) = (j, i)`` (OpenCV convention:
    integer coordinates are pixel centres); the ray is ``t * K^-1 [u, v, 1]``.

    Args:
        centres: (B, N, 3) metres, camera frame (x right, y down, z forward).
        radii: (B, N) or (N,) metres, positive.
        K: (B, 3, 3) or (3, 3) intrinsics in pixels (``K[2] = [0, 0, 1]``; skew allowed).
        image_size: (H, W) pixels.
        far: background depth in metres, a float or (B,). Use the value the observed depth
            holds on its background (e.g. the far plane of the crop) so L1 compares alike.
        tau: depth soft-min temperature, metres.
        sigma: half-width of the soft silhouette edge, pixels.
        cull: evaluate each sphere on its screen box only (``False``: on every pixel).
    Returns:
        depth (B, H, W) metres and mask (B, H, W) in [0, 1].
    Raises:
        ValueError: wrong shapes, non-positive radii, ``tau`` or ``sigma``.
    """
    radii = _check_spheres(centres, radii)
    h, w = _check_size(image_size)
    _check_soft(tau, sigma)
    bsz, n, _ = centres.shape
    K = _per_image(K, bsz, centres, "K", (3, 3))
    farb = _per_image(far, bsz, centres, "far")
    fx, fy, skew = K[:, 0, 0, None], K[:, 1, 1, None], K[:, 0, 1, None]
    cx, cy = K[:, 0, 2, None], K[:, 1, 2, None]
    x, y, z = centres.unbind(-1)
    valid = z - radii > _NEAR
    focal = 0.5 * (fx + fy)
    with torch.no_grad():
        zs = torch.where(valid, z, torch.ones_like(z))
        reach = radii + sigma * zs / focal  # the sphere grown by its edge band, metres

        def tangent_range(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # normalised-coordinate range of the two planes through the camera's other axis
            # that touch the sphere: angles atan2(a, z) -/+ asin(r / |(a, z)|)
            dist = torch.sqrt(a * a + zs * zs)
            half = torch.asin((reach / dist).clamp(max=1.0))
            centre = torch.atan2(a, zs)
            lim = math.pi / 2 - 1e-3
            lo = torch.tan((centre - half).clamp(-lim, lim))
            hi = torch.tan((centre + half).clamp(-lim, lim))
            return lo, hi

        xn_lo, xn_hi = tangent_range(x)
        yn_lo, yn_hi = tangent_range(y)
        sk_lo = torch.minimum(skew * yn_lo, skew * yn_hi)
        sk_hi = torch.maximum(skew * yn_lo, skew * yn_hi)
        u_lo, u_hi = fx * xn_lo + sk_lo + cx - 1.0, fx * xn_hi + sk_hi + cx + 1.0
        v_lo, v_hi = fy * yn_lo + cy - 1.0, fy * yn_hi + cy + 1.0
    win = make_windows(u_lo, u_hi, v_lo, v_hi, valid, (h, w), cull)
    dtype = centres.dtype
    # ray directions d = (xn, yn, 1) of the window pixels; separable in rows and columns
    # unless the camera has skew, so most terms stay (B, N, kv, 1) or (B, N, 1, ku)
    yn = (win.rows.to(dtype) - cy[..., None, None]) / fy[..., None, None]
    xn = (win.cols.to(dtype) - cx[..., None, None]) / fx[..., None, None]
    if bool(torch.any(skew != 0)):
        xn = xn - (skew / fx)[..., None, None] * yn
    cxe, cye, cze = (c[..., None, None] for c in (x, y, z))
    re = radii[..., None, None]
    dd = (xn * xn + 1.0) + yn * yn  # |d|^2
    dot = xn * cxe + (yn * cye + cze)  # d . c
    inv = torch.reciprocal(dd)
    t0 = dot * inv  # z of the ray point nearest the centre
    rho2 = ((cxe * cxe + cye * cye + cze * cze) - dot * t0).clamp(min=0.0)
    root = torch.sqrt((re * re - rho2).clamp(min=_EPS_ROOT**2))
    depth_j = t0 - root * torch.sqrt(inv)
    scale = focal[..., None, None] / torch.where(valid, z, torch.ones_like(z))[..., None, None]
    edge = (re - torch.sqrt(rho2 + _EPS_RHO**2)) * scale
    if not bool(torch.all(valid)):
        edge = torch.where(valid[..., None, None], edge, torch.full_like(edge, _HIDDEN))
    return _compose(depth_j, edge, farb, win, (bsz, h, w), tau, sigma)


def render_depth_orthographic(
    centres: torch.Tensor,
    radii: torch.Tensor,
    image_size: tuple[int, int],
    cube_centre: torch.Tensor,
    cube_side: torch.Tensor | float,
    *,
    far: torch.Tensor | float | None = None,
    tau: float = 0.004,
    sigma: float = 1.0,
    cull: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render spheres as a soft depth map with rays parallel to z, inside a crop cube.

    The cube (centre ``c``, side ``a``) maps its x-y face onto the image: pixel ``(row i,
    col j)`` is the ray ``x = c_x + ((j + 0.5) / W - 0.5) a``, ``y = c_y + ((i + 0.5) / H -
    0.5) a``; sphere ``j`` renders ``z_j - sqrt(r_j^2 - d^2)`` (METHODS §6).

    Args:
        centres: (B, N, 3) metres, camera frame.
        radii: (B, N) or (N,) metres, positive.
        image_size: (H, W) pixels.
        cube_centre: (B, 3) or (3,) metres.
        cube_side: float or (B,) metres.
        far: background depth, metres, float or (B,); default the cube's back face
            ``c_z + a / 2``.
        tau, sigma, cull: as in :func:`render_depth_perspective`.
    Returns:
        depth (B, H, W) metres (camera z) and mask (B, H, W) in [0, 1].
    Raises:
        ValueError: wrong shapes, non-positive radii, cube side, ``tau`` or ``sigma``.
    """
    radii = _check_spheres(centres, radii)
    h, w = _check_size(image_size)
    _check_soft(tau, sigma)
    bsz, n, _ = centres.shape
    cube = _per_image(cube_centre, bsz, centres, "cube_centre", (3,))
    side = _per_image(cube_side, bsz, centres, "cube_side")
    if not torch.jit.is_tracing() and not bool(torch.all(side > 0)):
        raise ValueError("cube_side must be positive")
    farb = cube[:, 2] + side / 2 if far is None else _per_image(far, bsz, centres, "far")
    px_w, px_h = (side / w)[:, None], (side / h)[:, None]
    x0 = (cube[:, 0] - side / 2)[:, None]
    y0 = (cube[:, 1] - side / 2)[:, None]
    x, y, z = centres.unbind(-1)
    valid = torch.ones_like(z, dtype=torch.bool)
    px = torch.sqrt(px_w * px_h)
    with torch.no_grad():
        reach = radii + sigma * px  # the sphere grown by its edge band, metres
        u_lo = (x - reach - x0) / px_w - 1.5
        u_hi = (x + reach - x0) / px_w + 0.5
        v_lo = (y - reach - y0) / px_h - 1.5
        v_hi = (y + reach - y0) / px_h + 0.5
    win = make_windows(u_lo, u_hi, v_lo, v_hi, valid, (h, w), cull)
    dtype = centres.dtype
    gx = x0[..., None, None] + (win.cols.to(dtype) + 0.5) * px_w[..., None, None]
    gy = y0[..., None, None] + (win.rows.to(dtype) + 0.5) * px_h[..., None, None]
    dx = gx - x[..., None, None]
    dy = gy - y[..., None, None]
    rho2 = dx * dx + dy * dy
    re = radii[..., None, None]
    depth_j = z[..., None, None] - torch.sqrt((re * re - rho2).clamp(min=_EPS_ROOT**2))
    edge = (re - torch.sqrt(rho2 + _EPS_RHO**2)) / px[..., None, None]
    return _compose(depth_j, edge, farb, win, (bsz, h, w), tau, sigma)
