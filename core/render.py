"""Differentiable renderers of the hand models (the front door of the two renderer modules).

* :func:`render_depth_perspective`, :func:`render_depth_orthographic`: soft depth maps and
  masks of spheres (Wan et al. 2019, METHODS §6), in :mod:`.render_depth`.
* :func:`render_circle_mask`: soft masks of 2D circles (SemiHand, METHODS §4), in
  :mod:`.render_mask`.

Both evaluate each primitive on its screen box only (:mod:`.render_windows`); pass
``cull=False`` for the dense computation.
"""

from __future__ import annotations

from .render_depth import coverage, render_depth_orthographic, render_depth_perspective
from .render_mask import render_circle_mask

__all__ = [
    "render_depth_perspective",
    "render_depth_orthographic",
    "render_circle_mask",
    "coverage",
]
