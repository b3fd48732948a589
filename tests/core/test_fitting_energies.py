from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from handpose.core.losses import (
    bone_length_band,
    circles_to_mask,
    collision,
    data_to_model,
    mask_to_circles,
    model_to_data,
    multiview_consistency,
)
from handpose.core.render import render_circle_mask
from handpose.core.skeleton import BONES
from handpose.core.spheres import sphere_parts

F64 = torch.float64
gradcheck = torch.autograd.gradcheck


def unit_vectors(rng: np.random.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    v = rng.normal(size=(*shape, 3))
    return torch.tensor(v / np.linalg.norm(v, axis=-1, keepdims=True))


# --- L_m2d -------------------------------------------------------------------------------


def test_model_to_data_is_l1_over_valid_pixels(rng) -> None:
    observed = torch.tensor(rng.uniform(0.3, 0.6, (2, 5, 7)))
    observed[0, :2] = 0.0  # holes
    rendered = observed + 0.01
    rendered[0, :2] = 5.0  # wrong only where there is no reading
    assert model_to_data(rendered, observed).item() == pytest.approx(0.01)
    valid = torch.ones(2, 5, 7, dtype=torch.bool)
    valid[1] = False  # an image without valid pixels costs 0
    per = model_to_data(rendered, observed, valid, reduction="none")
    assert per[1].item() == 0.0 and per[0].item() > 1.0
    r = rendered.clone().requires_grad_()
    assert gradcheck(lambda x: model_to_data(x, observed), (r,))


# --- L_d2m -------------------------------------------------------------------------------


def test_data_to_model_distance_to_the_nearest_surface(rng) -> None:
    centres = torch.tensor([[[0.0, 0.0, 0.5], [0.05, 0.0, 0.5]]], dtype=F64)
    radii = torch.tensor([0.02, 0.01], dtype=F64)
    # points on the surfaces cost nothing
    on = centres[0, 0] + 0.02 * unit_vectors(rng, (1, 30))
    assert data_to_model(on, centres, radii).item() == pytest.approx(0.0, abs=1e-12)
    # a point 3 mm outside sphere 1 and one 4 mm inside sphere 0: the mean of 3 and 4 mm
    pts = torch.tensor([[[0.063, 0.0, 0.5], [0.0, 0.016, 0.5]]], dtype=F64)
    assert data_to_model(pts, centres, radii).item() == pytest.approx(0.0035)
    # a far point is clamped; a masked point does not count
    far = torch.tensor([[[0.063, 0.0, 0.5], [0.0, 0.5, 0.5]]], dtype=F64)
    assert data_to_model(far, centres, radii, max_distance=0.03).item() == pytest.approx(0.0165)
    mask = torch.tensor([[True, False]])
    assert data_to_model(far, centres, radii, mask).item() == pytest.approx(0.003)
    c = centres.clone().requires_grad_()
    r = radii.clone().requires_grad_()
    p = torch.tensor(rng.uniform(-0.01, 0.06, (1, 6, 3))) + torch.tensor([0, 0, 0.5])
    assert gradcheck(lambda c, r: data_to_model(p, c, r), (c, r))


# --- collision ---------------------------------------------------------------------------


def test_collision_apart_and_overlapping() -> None:
    parts = sphere_parts()
    centres = torch.zeros(1, 41, 3, dtype=F64)
    centres[0, :, 0] = torch.arange(41, dtype=F64)  # 1 m apart: no collision
    radii = torch.full((41,), 0.01, dtype=F64)
    assert collision(centres, radii).item() == 0.0
    # two spheres of different fingers overlapping by 5 mm
    a = parts.index(2)  # an index-finger sphere
    b = parts.index(3)  # a middle-finger sphere
    centres[0, b] = centres[0, a] + torch.tensor([0.015, 0.0, 0.0], dtype=F64)
    assert collision(centres, radii).item() == pytest.approx(0.005)
    assert collision(centres, radii, margin=0.002).item() == pytest.approx(0.003)
    # the same overlap within one finger is not a collision
    assert parts[a + 1] == parts[a]
    centres[0, :, 0] = torch.arange(41, dtype=F64)
    centres[0, a + 1] = centres[0, a] + torch.tensor([0.015, 0.0, 0.0], dtype=F64)
    assert collision(centres, radii).item() == 0.0
    # explicit pairs, per-sample values, gradients
    c = torch.tensor([[[0.0, 0.0, 0.0], [0.012, 0.003, 0.0]]], dtype=F64, requires_grad=True)
    r = torch.tensor([0.01, 0.008], dtype=F64, requires_grad=True)
    pairs = torch.tensor([[0, 1]])
    want = 0.018 - math.hypot(0.012, 0.003)
    assert collision(c, r, pairs, reduction="none").tolist() == pytest.approx([want])
    assert gradcheck(lambda c, r: collision(c, r, pairs), (c, r))


# --- bone length -------------------------------------------------------------------------


def test_bone_length_band(hand_model, rng) -> None:
    lengths = torch.tensor(hand_model.bone_lengths)
    joints = torch.zeros(2, 21, 3, dtype=F64)
    dirs = unit_vectors(rng, (2, 20))
    for i, (p, c) in enumerate(BONES):
        joints[:, c] = joints[:, p] + lengths[i] * dirs[:, i]
    assert bone_length_band(joints, lengths).item() == pytest.approx(0.0, abs=1e-15)
    # stretch bone 9 (middle MCP -> PIP) to 1.2x and shrink bone 4 (index root) to 0.5x
    j = joints.clone()
    j[:, 10:13] += 0.2 * lengths[9] * dirs[:, 9:10]
    j[:, 5:9] -= 0.5 * lengths[4] * dirs[:, 4:5]
    want = (0.15 * lengths[9]) ** 2 + (0.3 * lengths[4]) ** 2
    assert bone_length_band(j, lengths).item() == pytest.approx(float(want))
    # sphere centres with explicit edges
    pts = torch.tensor([[[0.0, 0, 0], [0.03, 0, 0], [0.03, 0.02, 0]]], dtype=F64)
    edges = torch.tensor([[0, 1], [1, 2]])
    ref = torch.tensor([0.025, 0.02], dtype=F64)
    assert bone_length_band(pts, ref, edges).item() == pytest.approx((0.03 - 0.02625) ** 2)
    x = j[:1].clone().requires_grad_()
    assert gradcheck(lambda x: bone_length_band(x, lengths), (x,))


# --- multi-view --------------------------------------------------------------------------


def rigid(rng: np.random.Generator) -> torch.Tensor:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = q, rng.normal(size=3)
    return torch.tensor(t)


def test_multiview_consistency(rng) -> None:
    canonical = torch.tensor(rng.normal(size=(2, 41, 3)))
    views = canonical.expand(3, 2, 41, 3).clone()
    assert multiview_consistency(views).item() == 0.0
    # views seen from their own cameras, with view -> canonical extrinsics: still consistent
    ext = torch.stack([rigid(rng) for _ in range(3)])
    own = torch.stack([(canonical - e[:3, 3]) @ e[:3, :3] for e in ext])  # R^T (x - t)
    assert multiview_consistency(own, ext).item() == pytest.approx(0.0, abs=1e-20)
    # one view off by 1 cm on one sphere: the median is the other two, the energy 1e-4 m^2
    off = views.clone()
    off[1, 0, 5, 0] += 0.01
    per = multiview_consistency(off, reduction="none")
    assert per.tolist() == pytest.approx([1e-4, 0.0])
    x = off[:, :1, :3].clone().requires_grad_()
    assert gradcheck(lambda x: multiview_consistency(x), (x,))
    with pytest.raises(ValueError, match="at least 2 views"):
        multiview_consistency(views[:1])


# --- SemiHand cross-modal ----------------------------------------------------------------


def test_mask_to_circles(rng) -> None:
    c = torch.tensor([[[4.2, 5.1], [9.3, 6.0]]], dtype=F64, requires_grad=True)
    r = torch.tensor([[2.5, 1.8]], dtype=F64)
    rendered = render_circle_mask(c, r, (12, 14)).detach()
    assert mask_to_circles(c, r, rendered).item() == pytest.approx(0.0, abs=1e-15)
    target = torch.zeros(1, 12, 14, dtype=F64, requires_grad=True)
    loss = mask_to_circles(c, r, target)
    assert loss.item() == pytest.approx(float(rendered.mean()))
    loss.backward()
    assert target.grad is None  # stop-gradient into the mask
    assert c.grad is not None and float(c.grad.abs().sum()) > 0
    m = (rendered > 0.5).double()
    assert gradcheck(lambda c: mask_to_circles(c, r, m), (c.detach().requires_grad_(),))


def test_circles_to_mask_analytic() -> None:
    c = torch.tensor([[[5.0, 5.0]]], dtype=F64)
    r = torch.tensor([3.0], dtype=F64)
    v, u = np.mgrid[0:11, 0:11]
    dist = np.hypot(u - 5.0, v - 5.0)
    ones = torch.ones(1, 11, 11, dtype=F64)
    # all mask: each pixel outside the circle costs its distance to it
    assert circles_to_mask(c, r, ones).item() == pytest.approx(np.maximum(dist - 3, 0).mean())
    # all background: each pixel inside costs its depth inside
    assert circles_to_mask(c, r, 0 * ones).item() == pytest.approx(np.maximum(3 - dist, 0).mean())
    # the mask of the circle itself: no cost
    disc = torch.tensor(dist < 3.0)[None].double()
    assert circles_to_mask(c, r, disc).item() == pytest.approx(0.0, abs=1e-6)
    # two circles: a background pixel costs its depth in the deeper one (max_i r_i - |g - c_i|)
    c2 = torch.tensor([[[5.0, 5.0], [6.0, 5.0]]], dtype=F64)
    r2 = torch.tensor([3.0, 1.5], dtype=F64)
    per_px = circles_to_mask(c2, r2, 0 * ones) * 121
    deep = np.maximum(np.maximum(3 - dist, 1.5 - np.hypot(u - 6.0, v - 5.0)), 0)
    assert per_px.item() == pytest.approx(deep.sum())
    cc = torch.tensor([[[4.3, 5.2], [7.1, 6.4]]], dtype=F64, requires_grad=True)
    rr = torch.tensor([2.2, 1.7], dtype=F64, requires_grad=True)
    half = (torch.rand(1, 11, 11, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    assert gradcheck(lambda c, r: circles_to_mask(c, r, half), (cc, rr))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="observed_depth must have the shape"):
        model_to_data(torch.zeros(1, 4, 4), torch.zeros(1, 4, 5))
    with pytest.raises(ValueError, match=r"points must have shape \(B, M, 3\)"):
        data_to_model(torch.zeros(4, 3), torch.zeros(1, 41, 3), torch.ones(41))
    with pytest.raises(ValueError, match=r"radii must have shape \(1, 41\) or \(41,\)"):
        collision(torch.zeros(1, 41, 3), torch.ones(40))
    with pytest.raises(ValueError, match="pairs are required"):
        bone_length_band(torch.zeros(1, 41, 3), torch.ones(20))
    with pytest.raises(ValueError, match="reduction must be"):
        collision(torch.zeros(1, 41, 3), torch.ones(41), reduction="sum")
    with pytest.raises(ValueError, match=r"mask must have shape \(1, H, W\)"):
        circles_to_mask(torch.zeros(1, 55, 2), torch.ones(55), torch.zeros(2, 4, 4))
