"""The global orientation distribution of synthetic hands: what cameras see.

The finger direction (hand +y, wrist -> middle MCP) is drawn around "up in the image" (camera
-y) from a von Mises-Fisher distribution with probability ``p_upright``, otherwise uniformly on
the sphere, so the wrist is below the fingers more often than above but every direction
occurs. The roll about that direction places the palm normal (hand +z) anywhere on the circle,
pulled towards the palm-to-camera and back-to-camera views by ``roll_bias``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

__all__ = ["ORIENTATION_UNIFORMS", "vmf_up", "camera_orientations"]

#: Uniforms per orientation (mixture, vMF 2, uniform direction 3, roll, spare).
ORIENTATION_UNIFORMS = 8


def vmf_up(u1: np.ndarray, u2: np.ndarray, kappa: float) -> np.ndarray:
    """(N,) x2 uniforms -> (N, 3) unit von Mises-Fisher directions around camera -y with
    concentration ``kappa`` > 0 (inverse-CDF sampling of the cosine, uniform azimuth)."""
    w = 1.0 + np.log(u1 + (1.0 - u1) * np.exp(-2.0 * kappa)) / kappa
    r = np.sqrt(np.clip(1.0 - w * w, 0.0, 1.0))
    phi = 2.0 * np.pi * u2
    return np.stack([r * np.cos(phi), -w, r * np.sin(phi)], -1)


def camera_orientations(u: np.ndarray, p_upright: float = 0.75, kappa: float = 2.0,
                        roll_bias: float = 0.35) -> np.ndarray:
    """Hand -> camera rotations from uniforms.

    Args:
        u: (N, :data:`ORIENTATION_UNIFORMS`) uniforms in [0, 1].
        p_upright: probability of the upright (vMF) finger direction.
        kappa: its concentration (> 0).
        roll_bias: in [0, 0.5): pull of the roll towards palm/back views (0 = uniform).

    Returns:
        (N, 3, 3) rotations whose columns are the hand's x (thumb side of a right hand), y
        (fingers) and z (out of the palm) axes in camera coordinates.
    """
    u = np.asarray(u, np.float64)
    if u.ndim != 2 or u.shape[1] != ORIENTATION_UNIFORMS:
        raise ValueError(f"u must have shape (N, {ORIENTATION_UNIFORMS}); got {u.shape}")
    if not (0 <= p_upright <= 1 and kappa > 0 and 0 <= roll_bias < 0.5):
        raise ValueError(f"need 0 <= p_upright <= 1, kappa > 0, 0 <= roll_bias < 0.5; got "
                         f"{p_upright}, {kappa}, {roll_bias}")
    up = vmf_up(u[:, 1], u[:, 2], kappa)
    g = ndtri(np.clip(u[:, 3:6], 1e-12, 1.0 - 1e-12))
    anyd = g / np.maximum(np.linalg.norm(g, axis=-1, keepdims=True), 1e-12)
    d = np.where((u[:, 0] < p_upright)[:, None], up, anyd)  # finger direction
    # roll: the palm normal turns about d; phi = 0 faces the palm to the camera
    toward = np.array([0.0, 0.0, -1.0]) + d * d[:, 2:3]  # towards the camera, minus its d part
    alt = np.cross(d, np.array([1.0, 0.0, 0.0]))
    small = np.linalg.norm(toward, axis=-1, keepdims=True) < 1e-6
    a = np.where(small, alt, toward)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = np.cross(d, a)
    phi = 2.0 * np.pi * u[:, 6]
    phi = phi - roll_bias * np.sin(2.0 * phi)  # monotone for roll_bias < 0.5
    nrm = np.cos(phi)[:, None] * a + np.sin(phi)[:, None] * b  # volar normal (hand +z)
    x = np.cross(d, nrm)
    return np.stack([x, d, nrm], -1)
