"""Sensor-like depth noise: identity without noise, noise statistics, dropout rates, edges,
quantisation, determinism, bad input."""

from __future__ import annotations

import pytest
import torch

from handpose.core.data.depth_noise import DepthNoise, add_depth_noise

NONE = DepthNoise(sigma=0.0, sigma_quadratic=0.0, wobble=0.0, dropout=0.0, edge_dropout=0.0,
                  blob_dropout=0.0, quantization=0.0)


def _plane(z: float = 0.5, n: int = 2, h: int = 64, w: int = 64) -> torch.Tensor:
    d = torch.full((n, h, w), z, dtype=torch.float64)
    d[:, :, :4] = 0.0  # no reading on the left: stays 0
    return d


def test_no_noise_is_the_identity():
    d = _plane()
    torch.testing.assert_close(add_depth_noise(d, NONE), d)


def test_axial_noise_std_grows_with_depth():
    g = torch.Generator().manual_seed(0)
    noise = DepthNoise(sigma=0.001, sigma_quadratic=0.004, wobble=0.0, dropout=0.0,
                       edge_dropout=0.0, blob_dropout=0.0, quantization=0.0)
    for z in (0.5, 1.0):
        out = add_depth_noise(_plane(z, 4), noise, g)
        res = (out - z)[:, :, 4:]
        assert float(res.std()) == pytest.approx(0.001 + 0.004 * z * z, rel=0.05)
        assert float(res.mean().abs()) < 2e-4
        assert bool((out[:, :, :4] == 0).all())


def test_dropout_rates_and_quantisation():
    g = torch.Generator().manual_seed(1)
    out = add_depth_noise(_plane(0.5, 8), DepthNoise(
        sigma=0.0, sigma_quadratic=0.0, wobble=0.0, dropout=0.1, edge_dropout=0.0,
        blob_dropout=0.0, quantization=0.0), g)
    assert float((out[:, :, 4:] == 0).double().mean()) == pytest.approx(0.1, abs=0.01)
    out = add_depth_noise(_plane(0.5, 8), DepthNoise(
        sigma=0.0, sigma_quadratic=0.0, wobble=0.0, dropout=0.0, edge_dropout=0.0,
        blob_dropout=0.2, quantization=0.0), g)
    assert float((out[:, :, 4:] == 0).double().mean()) == pytest.approx(0.2, abs=0.05)
    q = add_depth_noise(_plane(0.5123), DepthNoise(
        sigma=0.002, sigma_quadratic=0.0, wobble=0.0, dropout=0.0, edge_dropout=0.0,
        blob_dropout=0.0, quantization=0.001), g)
    mm = q[q > 0] * 1000
    torch.testing.assert_close(mm, mm.round())


def test_edge_dropout_only_at_depth_jumps():
    d = torch.full((1, 32, 32), 0.6, dtype=torch.float64)
    d[:, :, 16:] = 0.4  # a 20 cm step between columns 15 and 16
    out = add_depth_noise(d, DepthNoise(sigma=0.0, sigma_quadratic=0.0, wobble=0.0,
                                        dropout=0.0, edge_dropout=1.0, edge_jump=0.02,
                                        blob_dropout=0.0, quantization=0.0))
    lost = out == 0
    assert bool(lost[:, :, 15:17].all())
    assert not bool(lost[:, :, :15].any()) and not bool(lost[:, :, 17:].any())


def test_seeded_generator_is_deterministic():
    d = _plane()
    a = add_depth_noise(d, DepthNoise(), torch.Generator().manual_seed(3))
    b = add_depth_noise(d, DepthNoise(), torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, d)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        add_depth_noise(torch.zeros(4, 4), DepthNoise())
    with pytest.raises(ValueError, match="dropout"):
        DepthNoise(dropout=1.5)
    with pytest.raises(ValueError, match="sigma"):
        DepthNoise(sigma=-1.0)
