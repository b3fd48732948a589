from __future__ import annotations

import numpy as np
import pytest
import torch

from handpose.core.circles import circles_from_joints2d
from handpose.core.render import render_circle_mask

F64 = torch.float64


def test_a_circle_covers_the_analytic_pixels() -> None:
    c = torch.tensor([[[10.3, 7.6]]], dtype=F64)
    r = torch.tensor([4.2], dtype=F64)
    mask = render_circle_mask(c, r, (20, 24))[0].numpy()
    v, u = np.mgrid[0:20, 0:24]
    dist = np.hypot(u - 10.3, v - 7.6)
    inside = dist < 4.2
    # for one circle the soft minimum is the distance itself: mask > 0.5 exactly inside
    assert np.array_equal(mask > 0.5, inside)
    # the value follows sigmoid(-(|g - c| - r) / sharpness)
    want = 1 / (1 + np.exp((dist - 4.2) / 0.5))
    near = dist < 4.2 + 6.0  # farther pixels lie outside the culling box: exactly 0
    assert np.allclose(mask[near], want[near], atol=1e-12)
    assert np.all(mask[~near] <= 1e-5)


def test_union_of_circles(hand_model) -> None:
    c = torch.tensor([[[5.0, 5.0], [12.0, 5.0]]], dtype=F64)
    r = torch.tensor([3.0, 2.0], dtype=F64)
    mask = render_circle_mask(c, r, (11, 18), sharpness=0.05, temperature=0.05)[0].numpy()
    v, u = np.mgrid[0:11, 0:18]
    d = np.minimum(np.hypot(u - 5, v - 5) - 3, np.hypot(u - 12, v - 5) - 2)
    clear = np.abs(d) > 0.3  # pixels not on an outline
    assert np.array_equal((mask > 0.5)[clear], (d < 0)[clear])


def test_culling_equals_dense(hand_model, rng) -> None:
    uv = torch.tensor(rng.uniform(10, 54, size=(3, 21, 2)))
    uv[0, 4] = torch.tensor([70.0, -3.0])  # a fingertip off the image
    centres, radii = circles_from_joints2d(uv, torch.tensor([8.0, 10.0, 12.0], dtype=F64))
    centres.requires_grad_()
    out = []
    for cull in (True, False):
        m = render_circle_mask(centres, radii, (64, 64), cull=cull)
        (g,) = torch.autograd.grad((m * m).sum(), centres)
        out.append((m.detach(), g))
    (m1, g1), (m2, g2) = out
    assert float((m1 - m2).abs().max()) < 1e-4  # sigmoid(-10) bound of the culling box
    assert torch.allclose(g1, g2, atol=1e-3)
    assert 0.1 < float((m1 > 0.5).double().mean()) < 0.9


def test_gradcheck() -> None:
    c = torch.tensor([[[1.7, 2.2], [3.9, 3.1]]], dtype=F64, requires_grad=True)
    r = torch.tensor([[1.3, 1.1]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda c, r: render_circle_mask(c, r, (6, 6), sharpness=0.7, temperature=0.6), (c, r))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"centres must have shape \(B, N, 2\)"):
        render_circle_mask(torch.zeros(1, 3, 3), torch.ones(3), (8, 8))
    with pytest.raises(ValueError, match=r"radii must have shape \(1, 3\) or \(3,\)"):
        render_circle_mask(torch.zeros(1, 3, 2), torch.ones(2), (8, 8))
    with pytest.raises(ValueError, match="radii must be positive"):
        render_circle_mask(torch.zeros(1, 1, 2), torch.zeros(1), (8, 8))
    with pytest.raises(ValueError, match="sharpness and temperature must be positive"):
        render_circle_mask(torch.zeros(1, 1, 2), torch.ones(1), (8, 8), sharpness=0)
