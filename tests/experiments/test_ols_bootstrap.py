"""Figure 7: bootstrap endpoints, the stacked fit and the σ sweep, in numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradmatch.core.theory import early_stopping_penalty, gradient_descent_path
from gradmatch.data.synthetic import bootstrap_indices, sample_ols
from gradmatch.experiments import _ols, ols_bootstrap, ols_bootstrap_sigma


@pytest.fixture(scope="module")
def bootstrap() -> dict[str, pd.DataFrame]:
    return ols_bootstrap.run(ols_bootstrap.Settings())


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return ols_bootstrap_sigma.run(ols_bootstrap_sigma.Settings())


def test_batched_bootstrap_gd_equals_gd_on_the_resampled_rows():
    problem = sample_ols(56, 1000, 10, 10.0)
    seeds = [142, 143]
    thetas, targets = ols_bootstrap.bootstrap_endpoints(problem, seeds, 200, 0.01)
    for seed, theta, target in zip(seeds, thetas, targets, strict=True):
        rows = bootstrap_indices(seed, 1000)
        X_b, y_b = problem.X[rows], problem.y[rows]
        expected = gradient_descent_path(X_b, y_b, 200, 0.01)[-1]
        np.testing.assert_allclose(theta, expected, rtol=0, atol=1e-11)
        np.testing.assert_allclose(target, 2 / 1000 * X_b.T @ (y_b - X_b @ expected), atol=1e-11)


def test_theory_is_lambda_500_of_the_original_design(bootstrap):
    theory = bootstrap["theory"]
    assert set(theory["stop_step"]) == {500} and set(theory["noise_std"]) == {10.0}
    expected = early_stopping_penalty(sample_ols(56, 1000, 10, 10.0).X, 500, 0.01)
    np.testing.assert_allclose(theory["value"].to_numpy(), expected.ravel(), atol=1e-15)


def test_m1_estimate_is_the_minimum_norm_solution_of_the_canonical_equation(bootstrap):
    estimates = bootstrap["estimates"]
    assert sorted(estimates["m"].unique()) == [1, 50, 100]
    q_hat = estimates[estimates["m"] == 1]["value"].to_numpy().reshape(10, 10)
    endpoint = _ols.canonical_endpoint(ols_bootstrap.Settings(), 10.0)
    target = _ols.target(endpoint.problem, endpoint.theta)
    np.testing.assert_allclose(2 * q_hat @ endpoint.theta, target, rtol=0, atol=1e-12)
    np.testing.assert_allclose(q_hat, q_hat.T, atol=1e-15)


def test_distance_curve_starts_at_the_heatmaps_and_keeps_the_zero_baseline(bootstrap):
    distance = bootstrap["distance"].set_index("m")
    assert list(distance.index) == list(range(1, 101))
    theory = bootstrap["theory"]["value"].to_numpy().reshape(10, 10)
    baseline = distance["zero_baseline_frobenius"].unique()
    np.testing.assert_allclose(baseline, [np.linalg.norm(theory)], rtol=1e-12)
    for m in (1, 50, 100):
        rows = bootstrap["estimates"][bootstrap["estimates"]["m"] == m]
        estimate = rows["value"].to_numpy().reshape(10, 10)
        assert distance.loc[m, "distance_frobenius"] == pytest.approx(
            np.linalg.norm(estimate - theory), rel=1e-12
        )


def test_panel_f_beats_the_zero_baseline_at_sigma_20_and_not_at_sigma_half(sweep):
    means = sweep.groupby("noise_std")["distance_frobenius"].mean()
    baseline = float(sweep["zero_baseline_frobenius"].iloc[0])
    assert means[20.0] < baseline
    assert means[0.5] > baseline
    per_pool = sweep.pivot(index="pool", columns="noise_std", values="distance_frobenius")
    assert len(per_pool) == 5
    assert (per_pool[20.0] < baseline).all() and (per_pool[0.5] > baseline).all()


def test_panel_f_theta_spread_grows_linearly_with_sigma(sweep):
    spread = sweep[sweep["pool"] == 0].set_index("noise_std")["theta_std"]
    assert spread[20.0] / spread[1.0] == pytest.approx(20.0, rel=0.05)
    assert spread.is_monotonic_increasing
