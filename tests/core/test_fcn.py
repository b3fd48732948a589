"""Depth FCN: integral regression against analytic values and the renderer's cell grid,
shapes, stacks, checkpoint round trip, bad input."""

from __future__ import annotations

import pytest
import torch

from handpose.core.checkpoint import load_checkpoint, save_checkpoint
from handpose.core.models import build_model
from handpose.core.models.fcn import DepthFCN, integral_points
from handpose.core.render import render_depth_orthographic


def test_integral_points_of_a_peaked_heatmap_is_the_cell_centre():
    h = w = 8
    heat = torch.zeros(1, 2, h, w)
    heat[0, 0, 2, 5] = 10.0  # beta * 10 = 100: a one-hot softmax
    heat[0, 1, 7, 0] = 10.0
    depth = torch.full((1, 2, h, w), 0.25)
    depth[0, 1] = torch.linspace(-1, 1, h * w).reshape(h, w)
    pts, prob = integral_points(heat, depth, beta=10.0)
    assert prob.shape == (1, 2, h, w)
    torch.testing.assert_close(prob.sum((2, 3)), torch.ones(1, 2))
    # cell (i, j) sits at x = 2 (j + 0.5) / w - 1, y = 2 (i + 0.5) / h - 1
    torch.testing.assert_close(pts[0, 0], torch.tensor([0.375, -0.375, 0.25]), atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(pts[0, 1], torch.tensor([-0.875, 0.875, float(depth[0, 1, 7, 0])]),
                               atol=1e-5, rtol=0)


def test_integral_points_of_flat_heatmaps_is_the_centre_and_mean_depth():
    depth = torch.rand(2, 3, 4, 6)
    pts, _ = integral_points(torch.zeros(2, 3, 4, 6), depth, beta=10.0)
    torch.testing.assert_close(pts[..., :2], torch.zeros(2, 3, 2), atol=1e-6, rtol=0)
    torch.testing.assert_close(pts[..., 2], depth.mean((2, 3)))


def test_integral_grid_matches_the_orthographic_renderer():
    """A sphere rendered at (x, y) of the cube: the soft-argmax of its silhouette is (x, y)."""
    side, size = 0.3, 32
    centre = torch.tensor([[0.01, -0.02, 0.5]])
    sphere = torch.tensor([[[0.04, 0.03, 0.5]]])  # cube coords (0.2667, 0.3333)
    _, mask = render_depth_orthographic(sphere, torch.tensor([0.02]), (size, size), centre,
                                        side)
    pts, _ = integral_points(torch.log(mask.clamp(min=1e-12))[:, None] / 10.0,
                             torch.zeros(1, 1, size, size), beta=10.0)
    expected = (sphere[0, 0, :2] - centre[0, :2]) / (side / 2)
    torch.testing.assert_close(pts[0, 0, :2], expected, atol=2e-3, rtol=0)


def test_integral_points_gradcheck():
    heat = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    depth = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: integral_points(a, b, beta=2.0)[0].double(), (heat, depth))


@pytest.mark.parametrize(("k", "stacks"), [(21, 1), (41, 2)])
def test_fcn_shapes_and_start(k, stacks):
    torch.manual_seed(0)
    net = DepthFCN(k, width=8, stacks=stacks, depth=2, input_size=32).eval()
    with torch.no_grad():
        out = net(torch.rand(3, 1, 32, 32) * 2 - 1)
    assert out["points"].shape == (3, k, 3)
    assert out["stack_points"].shape == (stacks, 3, k, 3)
    assert out["heatmaps"].shape == (3, k, 16, 16)
    torch.testing.assert_close(out["stack_points"][-1], out["points"])
    # the heads start near-flat: every point near the cube centre
    assert float(out["points"].abs().max()) < 0.05


def test_fcn_learns_to_move_a_point():
    """One point, one image: a few Adam steps bring the integral output to a target."""
    torch.manual_seed(0)
    net = DepthFCN(21, width=4, depth=1, input_size=16)
    x = torch.rand(2, 1, 16, 16)
    target = torch.tensor([0.5, -0.4, 0.3])
    opt = torch.optim.Adam(net.parameters(), lr=3e-2)
    first = None
    for _ in range(20):
        loss = (net(x)["points"][:, 0] - target).abs().mean()
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first


def test_checkpoint_round_trip(tmp_path):
    net = build_model("depth_fcn", width=8, depth=2, input_size=32, num_points=41)
    path = save_checkpoint(tmp_path / "fcn.pt", net, input_size=32,
                           normalization={"mean": (0, 0, 0), "std": (1, 1, 1)})
    loaded, meta = load_checkpoint(path)
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(loaded(x)["points"], net.eval()(x)["points"])
    assert meta.arch["kwargs"]["num_points"] == 41


def test_bad_inputs():
    net = DepthFCN(21, width=8, depth=2, input_size=32)
    with pytest.raises(ValueError, match=r"\(B, 1, 32, 32\)"):
        net(torch.zeros(2, 32, 32))
    with pytest.raises(ValueError, match="divisible"):
        DepthFCN(21, depth=3, input_size=40)
    with pytest.raises(ValueError, match="num_points"):
        DepthFCN(20)
    with pytest.raises(ValueError, match="same shape|one shape"):
        integral_points(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4), 10.0)
