"""Self-collision depth of hand poses on the 41-sphere model (numpy, vectorised).

Two spheres of different parts (palm, thumb, ..., pinky; the pairs of
:func:`handpose.core.spheres.collision_pairs`) overlap by ``r_a + r_b - |c_a - c_b|``; the
*penetration* of a pose is the largest overlap divided by the smaller radius (below 0: no
contact; 1: the overlap equals the smaller sphere's radius; 2: the centres coincide).
"""

from __future__ import annotations

import numpy as np

from ...handmodel import HandModel, load_hand_model
from ...spheres import collision_pairs

__all__ = ["SphereCollisions"]


class SphereCollisions:
    """Penetration depth of poses (see the module docstring).

    Args:
        model: hand model (sphere anchors and radii; default the shipped one).
    """

    def __init__(self, model: HandModel | None = None) -> None:
        self.model = model or load_hand_model()
        m = self.model
        pairs = collision_pairs(m).numpy()
        self._ns = len(m.sphere_radii)
        self._flat = pairs[:, 0] * self._ns + pairs[:, 1]
        self._rsum = m.sphere_radii[pairs].sum(1)
        self._rmin = m.sphere_radii[pairs].min(1)

    def penetration(self, joints: np.ndarray, hand_scale: np.ndarray) -> np.ndarray:
        """(N, 21, 3) metres (either hand), (N,) hand scale (sphere radii factor) -> (N,)
        deepest overlap / smaller radius (``-inf`` for N = 0 pairs)."""
        j = np.asarray(joints, np.float64)
        if j.ndim != 3 or j.shape[1:] != (21, 3):
            raise ValueError(f"joints must have shape (N, 21, 3); got {j.shape}")
        c = np.matmul(self.model.sphere_weights, j)  # (N, S, 3)
        sq = (c * c).sum(-1)
        d2 = sq[:, :, None] + sq[:, None, :] - 2.0 * np.matmul(c, c.transpose(0, 2, 1))
        d = np.sqrt(np.maximum(d2.reshape(len(c), self._ns * self._ns)[:, self._flat], 0.0))
        s = np.broadcast_to(np.asarray(hand_scale, np.float64), (len(c),))[:, None]
        return ((self._rsum * s - d) / (self._rmin * s)).max(1, initial=-np.inf)
