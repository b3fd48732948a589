"""The hand model loaded from ``assets/hand_model.json``: the single source of truth for bone
lengths, per-bone length ranges, joint limits, the 41-sphere model and the 55-circle model.

Everything that needs hand proportions or limits (the synthetic pose sampler, the
biomechanical losses, :func:`handpose.core.biomech.correct_pose`, the sphere and circle
models) reads them from :func:`load_hand_model`, never from literals in code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .skeleton import BONES, NUM_BONES, NUM_JOINTS, PARENTS, REFERENCE_BONE

__all__ = ["HandModel", "HandModelError", "load_hand_model", "default_hand_model_path"]

NUM_SPHERES = 41
NUM_CIRCLES = 55
NUM_FINGER_BONES = 15


class HandModelError(ValueError):
    """The hand model file is missing, malformed or inconsistent."""


def default_hand_model_path() -> Path:
    """Path of the shipped ``hand_model.json`` (inside the ``handpose.assets`` package)."""
    from handpose.assets import ASSETS_DIR

    return Path(ASSETS_DIR) / "hand_model.json"


@dataclass(frozen=True)
class HandModel:
    """Immutable arrays of the hand model. Angles in radians, lengths in metres.

    Attributes:
        joint_names: 21 names in joint order.
        bone_lengths: (20,) metres, mean adult bone lengths in ``BONES`` order.
        bone_length_range: (20, 2) [min, max] of bone length / reference bone length.
        flexion_limits: (15, 2) radians, [lo, hi] per finger bone in chain order
            (thumb CMC->MCP, MCP->IP, IP->TIP, index MCP->PIP, ...).
        abduction_limits: (15, 2) radians, same order.
        root_angle_limits: (4, 2) radians, angle between neighbouring root bones
            (thumb-index, index-middle, middle-ring, ring-pinky).
        root_curvature_limits: (4, 2) unitless, METHODS §3 curvature between neighbours.
        root_normal_angle_limits: (3, 2) radians, angle between consecutive palm normals
            (at the index, middle and ring root bones); keeps the palm from folding over.
        rest_pose: (21, 3) metres, a canonical feasible right hand in the hand frame (wrist
            at the origin, +y towards the middle finger, +x towards the thumb, +z volar) whose
            bones have exactly ``bone_lengths``; its palm is the correction's template.
        sphere_weights: (41, 21) centre of sphere i = sphere_weights[i] @ joints.
        sphere_radii: (41,) metres for the default hand (published radii x radius_scale).
        sphere_names: 41 names.
        circle_weights: (55, 21) centre of circle i = circle_weights[i] @ joints_2d.
        circle_radii_rel: (55,) radius / reference bone length (both in pixels).
        circle_names: 55 names.
        source: the file it was loaded from.
    """

    joint_names: tuple[str, ...]
    bone_lengths: np.ndarray
    bone_length_range: np.ndarray
    flexion_limits: np.ndarray
    abduction_limits: np.ndarray
    root_angle_limits: np.ndarray
    root_curvature_limits: np.ndarray
    root_normal_angle_limits: np.ndarray
    rest_pose: np.ndarray
    sphere_weights: np.ndarray
    sphere_radii: np.ndarray
    sphere_names: tuple[str, ...]
    circle_weights: np.ndarray
    circle_radii_rel: np.ndarray
    circle_names: tuple[str, ...]
    source: str

    @property
    def reference_bone_length(self) -> float:
        """Length in metres of the reference bone (middle MCP -> PIP) of the default hand."""
        return float(self.bone_lengths[REFERENCE_BONE[1] - 1])

    def template_bone_lengths(self, hand_scale: float = 1.0) -> np.ndarray:
        """(20,) metres: the default bone lengths scaled by ``hand_scale`` (1.0 = adult)."""
        if not np.isfinite(hand_scale) or hand_scale <= 0:
            raise ValueError(f"hand_scale must be a positive number; got {hand_scale}")
        return self.bone_lengths * float(hand_scale)


def _arr(obj: object, shape: tuple[int, ...], what: str, path: str) -> np.ndarray:
    try:
        a = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise HandModelError(f"{path}: {what} is not numeric ({e})") from e
    if a.shape != shape:
        raise HandModelError(f"{path}: {what} must have shape {shape}; got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise HandModelError(f"{path}: {what} contains NaN or infinity")
    return a


def _anchor_weights(entries: list, n: int, what: str, path: str) -> tuple[np.ndarray, tuple]:
    if not isinstance(entries, list) or len(entries) != n:
        got = len(entries) if isinstance(entries, list) else type(entries).__name__
        raise HandModelError(f"{path}: {what} must list {n} entries; got {got}")
    w = np.zeros((n, NUM_JOINTS))
    names = []
    for i, e in enumerate(entries):
        try:
            for joint, weight in e["anchors"]:
                if not 0 <= int(joint) < NUM_JOINTS:
                    raise HandModelError(f"{path}: {what}[{i}] anchors joint {joint}")
                w[i, int(joint)] += float(weight)
            names.append(str(e.get("name", f"{what}_{i}")))
        except (KeyError, TypeError, ValueError) as err:
            raise HandModelError(f"{path}: {what}[{i}] is malformed ({err})") from err
        if abs(w[i].sum() - 1.0) > 1e-4:
            raise HandModelError(
                f"{path}: {what}[{i}] anchor weights must sum to 1; got {w[i].sum():.6f}"
            )
    return w, tuple(names)


def _check_angle_ranges(
    flex: np.ndarray, abd: np.ndarray, root_angle: np.ndarray, normal_angle: np.ndarray, path: str
) -> None:
    # The local frames and the correction need: flexion inside (-180, 180) deg, abduction
    # inside (-90, 90) deg, root angles inside (0, 180) deg (planes defined), normal angles
    # below 180 deg (edge normals defined).
    half = np.pi / 2
    for what, a, lo, hi in [
        ("joint_limits flexion_deg", flex, -np.pi, np.pi),
        ("joint_limits abduction_deg", abd, -half, half),
        ("root_limits.angle_deg", root_angle, 0.0, np.pi),
        ("root_limits.normal_angle_deg", normal_angle, -np.inf, np.pi),
    ]:
        if np.any(a <= lo) or np.any(a >= hi):
            raise HandModelError(
                f"{path}: {what} must lie strictly inside ({np.rad2deg(lo):g}, "
                f"{np.rad2deg(hi):g}) deg; got [{np.rad2deg(a.min()):g}, {np.rad2deg(a.max()):g}]"
            )


def _check_rest_pose(rest: np.ndarray, lengths: np.ndarray, path: str) -> None:
    if np.abs(rest[0]).max() > 1e-9:
        raise HandModelError(f"{path}: rest_pose must have the wrist at the origin; got {rest[0]}")
    got = np.linalg.norm(rest[1:] - rest[list(PARENTS[1:])], axis=-1)
    worst = int(np.argmax(np.abs(got - lengths)))
    if abs(got[worst] - lengths[worst]) > 1e-5:
        raise HandModelError(
            f"{path}: rest_pose bone {BONES[worst]} is {got[worst]:.6f} m long; "
            f"bone_lengths_m says {lengths[worst]:.6f} m"
        )


def _parse(data: dict, path: str) -> HandModel:
    try:
        if int(data.get("format_version", 0)) != 1:
            raise HandModelError(
                f"{path}: format_version {data.get('format_version')!r} is not supported (1)"
            )
        if list(data["parents"]) != list(PARENTS):
            raise HandModelError(f"{path}: parents differ from handpose.core.skeleton.PARENTS")
        if list(data["reference_bone"]) != list(REFERENCE_BONE):
            raise HandModelError(f"{path}: reference_bone must be {list(REFERENCE_BONE)}")
        names = tuple(str(n) for n in data["joint_names"])
        if len(names) != NUM_JOINTS:
            raise HandModelError(f"{path}: joint_names must list 21 names; got {len(names)}")
        lengths = _arr(data["bone_lengths_m"]["values"], (NUM_BONES,), "bone_lengths_m", path)
        if np.any(lengths <= 0):
            raise HandModelError(f"{path}: bone_lengths_m must be positive")
        ranges = _arr(
            data["bone_length_range"]["values"], (NUM_BONES, 2), "bone_length_range", path
        )
        limits = data["joint_limits"]["values"]
        if len(limits) != NUM_FINGER_BONES:
            raise HandModelError(f"{path}: joint_limits must list 15 finger bones")
        expected_bones = [b for b in BONES if b[0] != 0]
        for i, lim in enumerate(limits):
            if tuple(lim["bone"]) != expected_bones[i]:
                raise HandModelError(
                    f"{path}: joint_limits[{i}] is bone {lim['bone']}, expected "
                    f"{list(expected_bones[i])} (chain order)"
                )
        flex = np.deg2rad(
            _arr([lim["flexion_deg"] for lim in limits], (15, 2), "flexion_deg", path)
        )
        abd = np.deg2rad(
            _arr([lim["abduction_deg"] for lim in limits], (15, 2), "abduction_deg", path)
        )
        root = data["root_limits"]
        root_angle = np.deg2rad(_arr(root["angle_deg"], (4, 2), "root_limits.angle_deg", path))
        root_curv = _arr(root["curvature"], (4, 2), "root_limits.curvature", path)
        normal_angle = np.deg2rad(
            _arr(root["normal_angle_deg"], (3, 2), "root_limits.normal_angle_deg", path)
        )
        for what, a in [
            ("bone_length_range", ranges), ("flexion", flex), ("abduction", abd),
            ("root angle", root_angle), ("root curvature", root_curv),
            ("palm normal angle", normal_angle),
        ]:
            if np.any(a[:, 0] > a[:, 1]):
                raise HandModelError(f"{path}: {what} has a range with min > max")
        _check_angle_ranges(flex, abd, root_angle, normal_angle, path)
        rest = _arr(data["rest_pose"]["values"], (NUM_JOINTS, 3), "rest_pose", path)
        _check_rest_pose(rest, lengths, path)
        sph = data["spheres"]
        sw, snames = _anchor_weights(sph["values"], NUM_SPHERES, "spheres", path)
        radii_mm = _arr([s["radius_mm"] for s in sph["values"]], (NUM_SPHERES,), "radius_mm", path)
        scale = float(sph["radius_scale"])
        if not scale > 0 or np.any(radii_mm <= 0):
            raise HandModelError(f"{path}: sphere radii and radius_scale must be positive")
        cw, cnames = _anchor_weights(data["circles"]["values"], NUM_CIRCLES, "circles", path)
        crel = _arr(
            [c["radius_rel"] for c in data["circles"]["values"]], (NUM_CIRCLES,), "radius_rel", path
        )
    except KeyError as e:
        raise HandModelError(f"{path}: missing key {e}") from e
    for a in (lengths, ranges, flex, abd, root_angle, root_curv, normal_angle, rest, sw, cw, crel):
        a.setflags(write=False)
    radii = radii_mm * scale / 1000.0
    radii.setflags(write=False)
    return HandModel(
        joint_names=names, bone_lengths=lengths, bone_length_range=ranges,
        flexion_limits=flex, abduction_limits=abd, root_angle_limits=root_angle,
        root_curvature_limits=root_curv, root_normal_angle_limits=normal_angle,
        rest_pose=rest, sphere_weights=sw, sphere_radii=radii,
        sphere_names=snames, circle_weights=cw, circle_radii_rel=crel, circle_names=cnames,
        source=path,
    )


@lru_cache(maxsize=8)
def _load_cached(path: str) -> HandModel:
    p = Path(path)
    if not p.is_file():
        raise HandModelError(f"hand model file not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HandModelError(f"{p}: cannot read the hand model as JSON ({e})") from e
    if not isinstance(data, dict):
        raise HandModelError(f"{p}: the hand model must be a JSON object")
    return _parse(data, str(p))


def load_hand_model(path: str | Path | None = None) -> HandModel:
    """Load (and cache) the hand model.

    Args:
        path: a ``hand_model.json``; ``None`` loads the shipped one.

    Raises:
        HandModelError: the file is missing, not JSON, or any field has the wrong shape,
            a non-finite value, an empty range or inconsistent joint indices.
    """
    return _load_cached(str(Path(path).resolve()) if path else str(default_hand_model_path()))
