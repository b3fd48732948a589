"""Metrics of the FreiHAND protocol: hand-computed values, invariances, input handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from handpose.core.metrics import (
    auc_pck,
    epe,
    epe_2d,
    joint_errors,
    pa_epe,
    pck,
    pck_2d,
    pck_curve,
    summarize,
)


def test_epe_of_a_known_offset(rng: np.random.Generator) -> None:
    gt = rng.normal(0, 0.05, (10, 21, 3))
    pred = gt + np.array([0.003, 0.004, 0.0])  # 5 mm everywhere
    assert epe(pred, gt) == pytest.approx(0.005)
    assert epe(torch.tensor(pred), torch.tensor(gt)) == pytest.approx(0.005)
    pred2 = gt.copy()
    pred2[:, 4] += [0.0, 0.0, 0.021]  # only the thumb tip is off, by 21 mm
    per_joint = epe(pred2, gt, per_joint=True)
    assert per_joint.shape == (21,)
    np.testing.assert_allclose(per_joint, np.where(np.arange(21) == 4, 0.021, 0.0), atol=1e-15)
    assert epe(pred2, gt) == pytest.approx(0.001)
    np.testing.assert_allclose(joint_errors(pred2, gt)[:, 4], 0.021)


def test_pa_epe_is_invariant_to_similarity_transforms(rng: np.random.Generator) -> None:
    gt = rng.normal(0, 0.05, (8, 21, 3))
    R = Rotation.random(8, rng=rng).as_matrix()
    pred = 1.7 * np.einsum("nij,nkj->nki", R, gt) + rng.normal(0, 1, (8, 1, 3))
    assert pa_epe(pred, gt) < 1e-9
    assert epe(pred, gt) > 0.01
    # A non-rigid error survives the alignment: PA-EPE > 0, and never above EPE of a
    # prediction that is already aligned (the identity is one of the candidates).
    noisy = gt + rng.normal(0, 0.004, gt.shape)
    assert 0.001 < pa_epe(noisy, gt) <= epe(noisy, gt)
    assert pa_epe(noisy, gt, per_joint=True).shape == (21,)


def test_pck_of_a_known_set() -> None:
    errors = np.array([0.0, 0.01, 0.02, 0.02, 0.03, 0.06])
    assert pck(errors, 0.02) == pytest.approx(4 / 6)  # <= counts, as FreiHAND
    assert pck(errors, 0.0) == pytest.approx(1 / 6)
    np.testing.assert_allclose(pck(errors, np.array([0.005, 0.05, 1.0])), [1 / 6, 5 / 6, 1.0])


def test_auc_hand_computed_values() -> None:
    assert auc_pck(np.zeros(21)) == pytest.approx(1.0)
    assert auc_pck(np.full(21, 0.2)) == 0.0
    # All errors 25 mm: PCK is 0 up to threshold 49 (24.75 mm) and 1 from threshold 50
    # (25.25 mm) of linspace(0, 0.05, 100); the trapezoid gives (0.5 + 49) / 99 = 0.5.
    assert auc_pck(np.full(100, 0.025)) == pytest.approx(0.5, abs=1e-12)
    # Errors 0.05 * i / 99 (exactly the thresholds): PCK(t_j) = (j + 1) / 100 ...
    t = np.linspace(0, 0.05, 100)
    curve = (np.arange(100) + 1) / 100
    expected = np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(t)) / 0.05
    assert auc_pck(t) == pytest.approx(expected, abs=1e-12)
    # ... which is 0.505 in closed form: mean of (j + 1.5) / 100 over j = 0..98.
    assert auc_pck(t) == pytest.approx(0.505, abs=1e-12)
    # Uniform errors on [0, 50 mm]: PCK(t) ~ t / 0.05, AUC ~ 0.5.
    u = np.random.default_rng(0).uniform(0, 0.05, 200000)
    assert auc_pck(u) == pytest.approx(0.5, abs=3e-3)
    ts, curve = pck_curve(u)
    assert ts.shape == (100,) and ts[0] == 0.0 and ts[-1] == 0.05
    assert np.all(np.diff(curve) >= 0)


def test_2d_metrics() -> None:
    gt = np.zeros((2, 21, 2))
    gt[:, :, 0] = np.linspace(0, 100, 21)  # box 100 x 0 px: reference 100 px
    gt[:, :, 1] = np.linspace(0, 50, 21)
    pred = gt.copy()
    pred[0, :10, 0] += 25.0  # 10 joints off by 25 px > 0.2 * 100
    pred[1, :5, 1] += 20.0  # 5 joints off by exactly 20 px: correct (<=)
    assert pck_2d(pred, gt) == pytest.approx((11 + 21) / 42)
    assert epe_2d(pred, gt) == pytest.approx((10 * 25 + 5 * 20) / 42)
    # An explicit reference length in pixels.
    assert pck_2d(pred, gt, reference=200.0) == pytest.approx(1.0)
    assert pck_2d(pred, gt, threshold=0.1, reference=np.array([100.0, 400.0])) == \
        pytest.approx((11 + 21) / 42)


def test_summarize_keys_and_values(rng: np.random.Generator) -> None:
    gt = rng.normal(0, 0.05, (4, 21, 3))
    pred = gt + np.array([0.0, 0.0, 0.01])  # a 10 mm depth offset
    uv = rng.uniform(0, 200, (4, 21, 2))
    out = summarize(torch.tensor(pred), torch.tensor(gt), uv + 2.0, uv)
    assert set(out) == {"epe_mm", "pa_epe_mm", "auc", "pa_auc", "epe_2d_px", "pck_2d@0.2"}
    assert out["epe_mm"] == pytest.approx(10.0)
    assert out["pa_epe_mm"] == pytest.approx(0.0, abs=1e-9)
    # Aligned errors are ~1e-17 m, not 0: PCK(0) = 0, so the first trapezoid is halved.
    assert out["pa_auc"] == pytest.approx(1.0 - 0.5 / 99)
    assert out["auc"] == pytest.approx(auc_pck(np.full(84, 0.01)))
    assert out["epe_2d_px"] == pytest.approx(2.0 * np.sqrt(2.0))
    assert out["pck_2d@0.2"] == 1.0
    assert all(isinstance(v, float) for v in out.values())
    assert set(summarize(pred, gt)) == {"epe_mm", "pa_epe_mm", "auc", "pa_auc"}


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="pred and gt must have the same shape"):
        epe(np.zeros((21, 3)), np.zeros((20, 3)))
    with pytest.raises(ValueError, match=r"pred must have shape \(\.\.\., N, 3\)"):
        epe(np.zeros((21, 2)), np.zeros((21, 2)))
    with pytest.raises(ValueError, match="gt must be finite"):
        pa_epe(np.zeros((21, 3)), np.full((21, 3), np.nan))
    with pytest.raises(ValueError, match="reference lengths must be > 0"):
        pck_2d(np.zeros((21, 2)), np.zeros((21, 2)))
    with pytest.raises(ValueError, match="steps"):
        auc_pck(np.zeros(3), steps=1)
    with pytest.raises(ValueError, match="pred_uv and gt_uv"):
        summarize(np.zeros((21, 3)), np.zeros((21, 3)), pred_uv=np.zeros((21, 2)))
