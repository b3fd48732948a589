"""Grasp and gesture key poses of the synthetic pose sampler, defined by their joint angles.

Each key pose gives the flexion and abduction of the 15 finger bones (chain order, the local
frames of :mod:`handpose.core.biomech.frames`: flexion positive towards the palm, abduction
positive towards the thumb; for the thumb itself "towards the thumb" is radial, away from the
index finger). Fingers are written as ``(MCP flexion, PIP flexion, DIP flexion, MCP
abduction)`` in degrees; a DIP of ``None`` couples it to the PIP as ``DIP = 2/3 PIP`` (the
tendon coupling of a finger moved freely). The thumb is ``(CMC flexion, CMC abduction, MCP
flexion, IP flexion)``: CMC flexion moves the thumb out of the palm plane (palmar abduction),
negative CMC abduction swings it across the palm (towards opposition).

The table is clipped into the hand model's limits by :func:`key_pose_angles`, so a key pose is
feasible for any model whose limits contain these anatomical values.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from ...handmodel import HandModel, load_hand_model

__all__ = ["KEY_POSE_NAMES", "KEY_POSES_DEG", "DIP_PIP_RATIO", "key_pose_angles"]

#: DIP flexion = DIP_PIP_RATIO * PIP flexion when a key pose leaves the DIP coupled.
DIP_PIP_RATIO: Final = 2.0 / 3.0

_Finger = tuple[float, float, float | None, float]
_Thumb = tuple[float, float, float, float]

# Shorthands (degrees). Straight finger, relaxed, curled into the palm (fist), half curled.
_S: Final[_Finger] = (0.0, 5.0, None, 0.0)
_FIST: Final[_Finger] = (80.0, 100.0, 55.0, 0.0)
_FIST_PINKY: Final[_Finger] = (78.0, 100.0, 55.0, -5.0)
_THUMB_OVER_FIST: Final[_Thumb] = (38.0, -35.0, 10.0, 45.0)
_THUMB_HOLDING: Final[_Thumb] = (55.0, -44.0, 10.0, 50.0)


def _entry(thumb: _Thumb, index: _Finger, middle: _Finger, ring: _Finger,
           pinky: _Finger) -> tuple[tuple[float, ...], tuple[float, ...]]:
    cf, ca, mf, ipf = thumb
    flex = [cf, mf, ipf]
    abd = [ca, 0.0, 0.0]
    for mcp, pip, dip, a in (index, middle, ring, pinky):
        flex += [mcp, pip, DIP_PIP_RATIO * pip if dip is None else dip]
        abd += [a, 0.0, 0.0]
    return tuple(flex), tuple(abd)


#: name -> ((15,) flexion degrees, (15,) abduction degrees), chain order.
KEY_POSES_DEG: Final[dict[str, tuple[tuple[float, ...], tuple[float, ...]]]] = {
    "open": _entry((12.0, -5.0, 5.0, 5.0), (3.0, 5.0, None, 2.0), (3.0, 5.0, None, 0.0),
                   (3.0, 5.0, None, -2.0), (3.0, 5.0, None, -4.0)),
    "flat": _entry((5.0, -20.0, 0.0, 0.0), (0.0, 0.0, 0.0, -8.0), (0.0, 0.0, 0.0, -1.0),
                   (0.0, 0.0, 0.0, 6.0), (0.0, 0.0, 0.0, 10.0)),
    "spread": _entry((0.0, 15.0, 0.0, -5.0), (-5.0, 0.0, 0.0, 12.0), (-5.0, 0.0, 0.0, 3.0),
                     (-5.0, 0.0, 0.0, -8.0), (-5.0, 0.0, 0.0, -18.0)),
    "relaxed": _entry((22.0, -18.0, 12.0, 12.0), (20.0, 25.0, None, 0.0),
                      (25.0, 32.0, None, 0.0), (30.0, 38.0, None, -2.0),
                      (35.0, 42.0, None, -5.0)),
    "fist": _entry(_THUMB_OVER_FIST, (82.0, 100.0, 50.0, -3.0), (82.0, 100.0, 55.0, 0.0),
                   (80.0, 100.0, 55.0, 2.0), _FIST_PINKY),
    "point": _entry(_THUMB_OVER_FIST, (0.0, 3.0, None, 0.0), _FIST, _FIST,
                    _FIST_PINKY),
    "pinch": _entry((50.0, -40.0, 8.0, 5.0), (38.0, 50.0, 25.0, 0.0),
                    (35.0, 45.0, None, 0.0), (30.0, 40.0, None, -3.0),
                    (28.0, 35.0, None, -6.0)),
    "ok": _entry((50.0, -40.0, 8.0, 5.0), (38.0, 50.0, 25.0, 0.0), (5.0, 8.0, None, 2.0),
                 (5.0, 8.0, None, -3.0), (5.0, 8.0, None, -10.0)),
    "peace": _entry(_THUMB_HOLDING, (0.0, 3.0, None, 8.0), (0.0, 3.0, None, -6.0),
                    _FIST, _FIST_PINKY),
    "thumbs_up": _entry((0.0, -25.0, -5.0, 0.0), (82.0, 100.0, 50.0, -3.0),
                        (82.0, 100.0, 55.0, 0.0), (80.0, 100.0, 55.0, 2.0), _FIST_PINKY),
    "claw": _entry((30.0, -5.0, 25.0, 35.0), (10.0, 80.0, 60.0, 4.0), (10.0, 80.0, 60.0, 0.0),
                   (10.0, 80.0, 60.0, -4.0), (10.0, 80.0, 60.0, -10.0)),
    "cylinder": _entry((38.0, -15.0, 18.0, 12.0), (48.0, 58.0, 35.0, 0.0),
                       (50.0, 60.0, 38.0, 0.0), (52.0, 62.0, 40.0, 0.0),
                       (55.0, 62.0, 40.0, -2.0)),
    "tripod": _entry((58.0, -42.0, 8.0, 5.0), (45.0, 42.0, 18.0, -2.0),
                     (42.0, 48.0, 22.0, 5.0), (55.0, 70.0, None, 3.0),
                     (58.0, 72.0, None, -2.0)),
    "hook": _entry((15.0, -10.0, 10.0, 10.0), (0.0, 95.0, 70.0, 0.0), (0.0, 95.0, 70.0, 0.0),
                   (0.0, 95.0, 70.0, 0.0), (0.0, 95.0, 70.0, -3.0)),
    "tabletop": _entry((25.0, -25.0, 10.0, 5.0), (75.0, 5.0, 0.0, 0.0), (75.0, 5.0, 0.0, 0.0),
                       (75.0, 5.0, 0.0, 0.0), (75.0, 5.0, 0.0, -3.0)),
    "rock": _entry(_THUMB_OVER_FIST, (0.0, 5.0, None, 5.0), _FIST, _FIST,
                   (0.0, 5.0, None, -12.0)),
    "call": _entry((-5.0, 12.0, -5.0, 0.0), _FIST, _FIST, _FIST, (0.0, 5.0, None, -15.0)),
    "three": _entry(_THUMB_HOLDING, (0.0, 3.0, None, 8.0), (0.0, 3.0, None, 0.0),
                    (0.0, 3.0, None, -8.0), _FIST_PINKY),
    "gun": _entry((0.0, 12.0, 0.0, 0.0), (0.0, 3.0, None, 3.0), (0.0, 3.0, None, -3.0),
                  _FIST, _FIST_PINKY),
    "lateral_pinch": _entry((22.0, -42.0, 12.0, 18.0), (60.0, 85.0, 40.0, 0.0),
                            (65.0, 90.0, 45.0, 0.0), (70.0, 90.0, 45.0, 0.0),
                            (72.0, 90.0, 45.0, -3.0)),
}

#: Key pose names in table order (the sampler's key pose ids index this tuple).
KEY_POSE_NAMES: Final[tuple[str, ...]] = tuple(KEY_POSES_DEG)


def key_pose_angles(
    names: tuple[str, ...] | list[str] | None = None,
    model: HandModel | None = None,
    margin: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """Flexion and abduction of key poses, clipped into the model's joint limits.

    Args:
        names: key pose names (default all, :data:`KEY_POSE_NAMES` order).
        model: hand model whose limits clip the table (default the shipped one).
        margin: radians kept inside each limit (>= 0).

    Returns:
        (flexion, abduction): each (K, 15) float64 radians, chain order.

    Raises:
        ValueError: an unknown name or a negative margin.
    """
    names = KEY_POSE_NAMES if names is None else tuple(names)
    unknown = [n for n in names if n not in KEY_POSES_DEG]
    if unknown:
        raise ValueError(f"names must be key poses of {KEY_POSE_NAMES}; got unknown {unknown}")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0 radians; got {margin}")
    model = model or load_hand_model()
    flex = np.deg2rad(np.array([KEY_POSES_DEG[n][0] for n in names], np.float64))
    abd = np.deg2rad(np.array([KEY_POSES_DEG[n][1] for n in names], np.float64))
    fl, al = model.flexion_limits, model.abduction_limits
    flex = np.clip(flex, fl[:, 0] + margin, fl[:, 1] - margin)
    abd = np.clip(abd, al[:, 0] + margin, al[:, 1] - margin)
    return flex.reshape(len(names), 15), abd.reshape(len(names), 15)
