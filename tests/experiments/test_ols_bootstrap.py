"""Figure 7A-E: bootstrap endpoints of one noisy OLS dataset and the stacked fit against Λ_t."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradmatch import config
from gradmatch.core import theory
from gradmatch.data.synthetic import bootstrap_indices, sample_ols
from gradmatch.experiments import _ols, ols_bootstrap
from gradmatch.settings import OLSProblem

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return ols_bootstrap.run(ols_bootstrap.Settings())


def test_tables_match_their_declarations(tables):
    assert set(tables) == set(ols_bootstrap.TABLES)
    for name, frame in tables.items():
        ols_bootstrap.TABLES[name].check(frame, name)


def test_batched_bootstrap_gd_equals_gd_on_the_resampled_rows():
    data = sample_ols(OLSProblem(), 10.0)
    seeds = [142, 143]
    thetas, targets = ols_bootstrap.bootstrap_endpoints(data, seeds, 200, 0.01)
    for seed, theta, target in zip(seeds, thetas, targets, strict=True):
        rows = bootstrap_indices(seed, 1000)
        X_b, y_b = data.X[rows], data.y[rows]
        expected = theory.gradient_descent_path(X_b, y_b, 200, 0.01)[-1]
        np.testing.assert_allclose(theta, expected, rtol=0, atol=1e-11)
        np.testing.assert_allclose(target, 2 / 1000 * X_b.T @ (y_b - X_b @ expected), atol=1e-11)


def test_theory_is_lambda_500_of_the_original_design(tables):
    frame = tables["theory"]
    assert set(frame["stop_step"]) == {500} and set(frame["noise_std"]) == {10.0}
    expected = theory.early_stopping_penalty(sample_ols(OLSProblem(), 10.0).X, 500, 0.01)
    np.testing.assert_allclose(frame["value"].to_numpy(), expected.ravel(), atol=1e-15)


def test_m1_estimate_is_the_minimum_norm_solution_of_the_canonical_equation(tables):
    estimates = tables["estimates"]
    assert sorted(estimates["m"].unique()) == [1, 50, 100]
    q_hat = estimates[estimates["m"] == 1]["value"].to_numpy().reshape(10, 10)
    settings = ols_bootstrap.Settings()
    endpoint = _ols.canonical_endpoint(settings.ols_problem, 10.0, settings.early_stopping)
    target = _ols.target(endpoint.problem, endpoint.theta)
    np.testing.assert_allclose(2 * q_hat @ endpoint.theta, target, rtol=0, atol=1e-12)
    np.testing.assert_allclose(q_hat, q_hat.T, atol=1e-15)


def test_distance_curve_starts_at_the_heatmaps_and_keeps_the_zero_baseline(tables):
    distance = tables["distance"].set_index("m")
    assert list(distance.index) == list(range(1, 101))
    lam = tables["theory"]["value"].to_numpy().reshape(10, 10)
    baseline = distance["zero_baseline_frobenius"].unique()
    np.testing.assert_allclose(baseline, [np.linalg.norm(lam)], rtol=1e-12)
    for m in (1, 50, 100):
        rows = tables["estimates"][tables["estimates"]["m"] == m]
        estimate = rows["value"].to_numpy().reshape(10, 10)
        assert distance.loc[m, "distance_frobenius"] == pytest.approx(
            np.linalg.norm(estimate - lam), rel=1e-12
        )


def test_a_fixed_stop_step_replaces_the_canonical_one():
    frames = ols_bootstrap.run(ols_bootstrap.Settings(stop_step=100, n_endpoints=3, heatmap_m=(1,)))
    assert set(frames["distance"]["stop_step"]) == {100}
    assert list(frames["distance"]["m"]) == [1, 2, 3]


def test_bad_settings_name_the_key():
    message = r"'ols_bootstrap\.heatmap_m' = \[1, 500\]: lists \[500\] above n_endpoints = 100"
    with pytest.raises(config.ConfigError, match=message):
        config.build_settings(ols_bootstrap.Settings, {"heatmap_m": [1, 500]})
    with pytest.raises(config.ConfigError, match=r"ols_bootstrap\.heatmap_m"):
        config.build_settings(ols_bootstrap.Settings, {"heatmap_m": []})
    with pytest.raises(config.ConfigError, match=r"ols_bootstrap\.early_stopping\.patience"):
        config.build_settings(ols_bootstrap.Settings, {"early_stopping": {"patience": 0}})


def test_presets_overlay_the_defaults():
    def preset(name):
        return config.section_settings(config.load_yaml(REPO / "config" / name), "ols_bootstrap")

    assert preset("paper.yaml") == ols_bootstrap.Settings(preset="paper")
    assert preset("config.yaml") == ols_bootstrap.Settings(preset="default")
    smoke = ols_bootstrap.Settings(preset="smoke", n_endpoints=20, heatmap_m=(1, 10, 20))
    assert preset("smoke.yaml") == smoke


def test_module_imports_and_reads_tables_without_torch():
    code = (
        "import sys; from gradmatch.experiments import ols_bootstrap as m; s = m.Settings(); "
        "print(sorted(m.TABLES), m.RESOURCES.gpu, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['distance',", "'estimates',", "'theory']", "0", "False"]
