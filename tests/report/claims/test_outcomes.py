"""The generic comparisons: each verdict flips when its measured value crosses the tolerance."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gradmatch.report.claims import outcomes


def test_ridge_recovery_flips_when_lambda_is_off_by_more_than_tol():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.standard_normal(50)
    lam, n = 0.3, X.shape[0]
    # minimiser of (1/n)||y - X θ||² + λ||θ||²; −∇L = (2/n) Xᵀ(y − Xθ) = 2λθ there
    theta = np.linalg.solve(X.T @ X / n + lam * np.eye(4), X.T @ y / n)
    target = 2.0 / n * X.T @ (y - X @ theta)
    exact = outcomes.ridge_recovery(theta, target, lam, tol=1e-8)
    assert exact.passed and exact.measured < 1e-10
    shifted = outcomes.ridge_recovery(theta, target, lam * (1 + 1e-6), tol=1e-8)
    assert not shifted.passed and shifted.measured == pytest.approx(1e-6, rel=1e-3)


def test_retrain_equality_flips():
    theta = np.array([1.0, -2.0, 4.0])
    assert outcomes.retrain_equality(theta + 1e-6, theta, tol=1e-4).passed
    moved = outcomes.retrain_equality(theta + np.array([0, 0, 1e-3]), theta, tol=1e-4)
    assert not moved.passed and moved.measured == pytest.approx(1e-3 / 4)


def test_recovery_from_m_uses_only_m_at_least_m_min():
    frame = pd.DataFrame({"m": [1, 5, 6, 10], "relative_error": [0.9, 0.5, 1e-9, 1e-10]})
    ok = outcomes.recovery_from_m(frame, m_min=6, tol=1e-6)
    assert ok.passed and ok.measured == pytest.approx(1e-9) and ok.detail == "m = 6..10"
    frame.loc[frame["m"] == 10, "relative_error"] = 2e-6
    assert not outcomes.recovery_from_m(frame, m_min=6, tol=1e-6).passed
    with pytest.raises(ValueError, match="no row with m >= 20"):
        outcomes.recovery_from_m(frame, m_min=20)


def test_decreases_with_flips_on_a_rising_tail():
    m = np.repeat(np.arange(1, 6), 2)
    falling = pd.DataFrame({"m": m, "distance": 1.0 / m})
    verdict = outcomes.decreases_with(falling, x_col="m", y_col="distance", threshold=-0.8)
    assert verdict.passed and verdict.measured == pytest.approx(-1.0)
    rising = falling.assign(distance=np.where(m >= 3, m, 1.0 / m))
    flipped = outcomes.decreases_with(rising, x_col="m", y_col="distance", threshold=-0.8)
    assert not flipped.passed and flipped.measured > -0.8


def test_tracks_in_log_flips_past_the_decade_tolerance():
    frame = pd.DataFrame({"est": [1.0, 0.1, 0.01], "ref": [1.0, 0.1, 0.0105]})
    assert outcomes.tracks_in_log(frame, estimate_col="est", reference_col="ref").passed
    frame.loc[2, "est"] = 0.0105 * 10**0.11
    moved = outcomes.tracks_in_log(frame, estimate_col="est", reference_col="ref", tol_decades=0.1)
    assert not moved.passed and moved.measured == pytest.approx(0.11)


def test_band_recovery_looks_only_inside_the_band():
    grid = pd.DataFrame(
        {"lambda_true": [1e-4, 1e-2, 1e-2, 1e-1, 1e1], "lambda_hat": [1e-1, 1.2e-2, 0.8e-2, 0.1, 1]}
    )
    kw = {"true_col": "lambda_true", "estimate_col": "lambda_hat", "band": (1e-2, 1e-1)}
    ok = outcomes.band_recovery(grid, tol_decades=0.3, **kw)
    assert ok.passed and ok.measured == pytest.approx(0.0)
    grid.loc[grid["lambda_true"] == 1e-1, "lambda_hat"] = 1.0  # one decade off
    grid.loc[grid["lambda_true"] == 1e-2, "lambda_hat"] = 1e-1
    bad = outcomes.band_recovery(grid, tol_decades=0.3, **kw)
    assert not bad.passed and bad.measured == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"no lambda_true in \[1, 2\]"):
        outcomes.band_recovery(grid, **{**kw, "band": (1.0, 2.0)})


def test_increases_with_flips_when_the_median_trend_breaks():
    rates = np.repeat([0.0, 0.1, 0.2, 0.3], 3)
    frame = pd.DataFrame({"dropout": rates, "lambda_hat": 1 + rates + 0.01 * np.tile([0, 1, 2], 4)})
    ok = outcomes.increases_with(frame, x_col="dropout", y_col="lambda_hat", threshold=0.9)
    assert ok.passed and ok.measured == pytest.approx(1.0)
    broken = frame.assign(lambda_hat=np.where(rates == 0.3, 0.5, frame["lambda_hat"]))
    bad = outcomes.increases_with(broken, x_col="dropout", y_col="lambda_hat", threshold=0.9)
    assert not bad.passed and bad.measured == pytest.approx(-0.2)  # 1 - 6*12/(4*15)
    with pytest.raises(ValueError, match="at least 3"):
        outcomes.increases_with(frame[frame["dropout"] < 0.1], x_col="dropout", y_col="lambda_hat")


def test_loglog_slope_flips_outside_target_band():
    x = np.logspace(-2, 2, 9)
    frame = pd.DataFrame({"theory": x, "estimate": 3.0 * x**1.2})
    ok = outcomes.loglog_slope(frame, x_col="theory", y_col="estimate", target=1.0, tol=0.25)
    assert ok.passed and ok.measured == pytest.approx(1.2)
    steep = frame.assign(estimate=3.0 * x**1.3)
    assert not outcomes.loglog_slope(steep, x_col="theory", y_col="estimate", tol=0.25).passed


def test_beats_baseline_flips_at_one():
    assert outcomes.beats_baseline(0.99, 1.0).passed
    moved = outcomes.beats_baseline(1.01, 1.0)
    assert not moved.passed and moved.measured == pytest.approx(1.01)
    with pytest.raises(ValueError, match="must be > 0"):
        outcomes.beats_baseline(1.0, 0.0)


def test_nan_measurements_fail():
    assert not outcomes.at_most(math.nan, 1.0).passed
    assert not outcomes.at_least(math.nan, 0.0).passed


def test_verdicts_and_not_applicable_rows():
    assert outcomes.at_most(1.0, 1.0).verdict == "pass"
    assert outcomes.below(1.0, 1.0).verdict == "FAIL"
    row = outcomes.not_applicable("no dropout layer")
    assert row.verdict == "n/a" and not row.passed and math.isnan(row.measured)
    assert row.criterion == "n/a" and row.detail == "no dropout layer"


def test_fmt_and_criteria_text():
    assert outcomes.fmt(0.5) == "0.5" and outcomes.fmt(1e-6) == "1.00e-06"
    assert outcomes.at_most(0.1, 1e-8).criterion == "≤ 1.00e-08"
    assert outcomes.at_least(0.1, 0.8, unit=" decades").criterion == "≥ 0.8 decades"
    with pytest.raises(ValueError, match=r"missing column\(s\) \['b'\]"):
        outcomes.require(pd.DataFrame({"a": [1]}), ["a", "b"], "demo")
    with pytest.raises(ValueError, match="no rows"):
        outcomes.require(pd.DataFrame({"a": []}), ["a"], "demo")
