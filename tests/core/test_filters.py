from __future__ import annotations

import math

import numpy as np
import pytest

from handpose.core.inference.filters import OneEuroFilter, OneEuroParams


def _reference(xs, ts, min_cutoff, beta, d_cutoff):
    """Scalar One Euro filter written straight from the paper's equations."""

    def alpha(fc, dt):
        tau = 1 / (2 * math.pi * fc)
        return 1 / (1 + tau / dt)

    out, x_prev, dx_prev, t_prev = [], None, 0.0, None
    for x, t in zip(xs, ts):
        if x_prev is None:
            x_prev, t_prev = x, t
            out.append(x)
            continue
        dt = t - t_prev
        dx = (x - x_prev) / dt
        dx_hat = alpha(d_cutoff, dt) * dx + (1 - alpha(d_cutoff, dt)) * dx_prev
        fc = min_cutoff + beta * abs(dx_hat)
        x_hat = alpha(fc, dt) * x + (1 - alpha(fc, dt)) * x_prev
        out.append(x_hat)
        x_prev, dx_prev, t_prev = x_hat, dx_hat, t
    return np.array(out)


@pytest.mark.parametrize("beta", [0.0, 0.5, 20.0])
def test_step_response_matches_the_reference_equations(beta: float) -> None:
    ts = np.arange(60) / 30.0
    xs = np.where(ts < 0.5, 0.0, 1.0)
    f = OneEuroFilter(OneEuroParams(min_cutoff=1.5, beta=beta, d_cutoff=1.0))
    got = np.array([f(np.array([x, -2 * x]), t) for x, t in zip(xs, ts)])
    # Each element is filtered on its own (the speed term makes the filter non-linear).
    np.testing.assert_allclose(got[:, 0], _reference(xs, ts, 1.5, beta, 1.0), atol=1e-12)
    np.testing.assert_allclose(got[:, 1], _reference(-2 * xs, ts, 1.5, beta, 1.0), atol=1e-12)


def test_without_beta_the_step_response_is_exponential() -> None:
    dt, fc = 1 / 30, 2.0
    a = 1 / (1 + 1 / (2 * math.pi * fc) / dt)
    f = OneEuroFilter(OneEuroParams(min_cutoff=fc, beta=0.0))
    f(np.zeros(1), 0.0)
    for n in range(1, 10):
        y = f(np.ones(1), n * dt)
        assert y[0] == pytest.approx(1 - (1 - a) ** n, abs=1e-12)


def test_speed_raises_the_cutoff_so_lag_shrinks() -> None:
    ts = np.arange(30) / 30.0
    ramp = ts * 0.5  # 0.5 m/s
    lag = {}
    for beta in (0.0, 50.0):
        f = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=beta))
        ys = [f(np.array([x]), t)[0] for x, t in zip(ramp, ts)]
        lag[beta] = ramp[-1] - ys[-1]
    assert lag[50.0] < 0.25 * lag[0.0]


def test_reset_repeated_timestamps_and_bad_input() -> None:
    f = OneEuroFilter(OneEuroParams(min_cutoff=1.0))
    f(np.zeros((21, 3)), 0.0)
    y1 = f(np.ones((21, 3)), 0.1)
    assert np.array_equal(f(np.full((21, 3), 5.0), 0.1), y1)  # same time: no update
    with pytest.raises(ValueError, match=r"shape \(2,\).*\(21, 3\)"):
        f(np.zeros(2), 0.2)
    with pytest.raises(ValueError, match="NaN"):
        f(np.full((21, 3), np.nan), 0.3)
    f.reset()
    assert np.array_equal(f(np.full((21, 3), 7.0), 1.0), np.full((21, 3), 7.0))
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroParams(min_cutoff=0.0)
    with pytest.raises(ValueError, match="beta"):
        OneEuroParams(beta=-1.0)


def test_speed_scale_equals_filtering_the_scaled_signal() -> None:
    # With speed scale s, the cutoff sees the speed of s * x: the output is that of filtering
    # s * x, divided by s (the filter is otherwise linear in x).
    rng = np.random.default_rng(3)
    ts = np.arange(40) / 30.0
    xs = np.cumsum(rng.normal(0, 0.01, (40, 4)), 0)
    p = OneEuroParams(min_cutoff=1.0, beta=7.0, d_cutoff=1.0)
    scaled, plain = OneEuroFilter(p), OneEuroFilter(p)
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(scaled(x, t, speed_scale=25.0), plain(25.0 * x, t) / 25.0,
                                   atol=1e-12)


def test_vector_speed_makes_the_filter_rotation_invariant() -> None:
    # One cutoff per point from the norm of its velocity: a rotated trajectory gives the
    # rotated output. Per-coordinate speeds do not (diagonal motion is filtered differently).
    rng = np.random.default_rng(4)
    ts = np.arange(30) / 30.0
    xs = np.cumsum(rng.normal(0, 0.02, (30, 5, 2)), 0)
    c, s = math.cos(0.7), math.sin(0.7)
    R = np.array([[c, -s], [s, c]])
    p = OneEuroParams(min_cutoff=1.0, beta=20.0)
    for axis, invariant in ((-1, True), (None, False)):
        f, g = OneEuroFilter(p, vector_axis=axis), OneEuroFilter(p, vector_axis=axis)
        out = np.array([f(x, t) for x, t in zip(xs, ts)])
        rot = np.array([g(x @ R.T, t) for x, t in zip(xs, ts)])
        assert np.allclose(out @ R.T, rot, atol=1e-12) == invariant


def test_vector_speed_matches_the_scalar_filter_along_one_axis() -> None:
    ts = np.arange(30) / 30.0
    xs = np.where(ts < 0.4, 0.0, 1.0)
    f = OneEuroFilter(OneEuroParams(1.5, 5.0, 1.0), vector_axis=-1)
    got = np.array([f(np.array([[0.0, x, 0.0]]), t)[0, 1] for x, t in zip(xs, ts)])
    np.testing.assert_allclose(got, _reference(xs, ts, 1.5, 5.0, 1.0), atol=1e-12)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_speed_scale_is_rejected(bad: float) -> None:
    f = OneEuroFilter()
    with pytest.raises(ValueError, match="speed_scale"):
        f(np.zeros(3), 0.0, speed_scale=bad)
