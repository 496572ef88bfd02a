"""Figures 1 and 2: the closed forms, the stationarity condition, the flow and SGD tables."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, Ridge

from gradmatch import io
from gradmatch.experiments import ridge_stationarity, sgd_vs_flow


@pytest.fixture(scope="module")
def ridge_tables():
    return ridge_stationarity.run(ridge_stationarity.Settings(preset="smoke"))


@pytest.fixture(scope="module")
def flow_tables():
    return sgd_vs_flow.run(sgd_vs_flow.Settings(preset="smoke"))


def test_fig1_arrows_equal_and_opposite_from_parquet(ridge_tables, tmp_path):
    path = io.write_parquet(ridge_tables["arrows"], tmp_path / "arrows.parquet")
    arrows = io.read_parquet(path).set_index("arrow")
    grad_penalty = arrows.loc["grad_penalty", "slope"]
    grad_mse = arrows.loc["grad_mse", "slope"]
    assert abs(grad_penalty + grad_mse) < 1e-12
    assert grad_penalty > 0.5  # a real slope, not two zeros
    assert arrows.loc["grad_penalty", "theta"] == arrows.loc["grad_mse", "theta"]


def test_fig1_ridge_slope_matches_the_authors_value(ridge_tables):
    # The authors' code comments the slope 2λθ_ridge at θ_ridge as ≈ 1.728 for these settings.
    slope = ridge_tables["arrows"].set_index("arrow").loc["grad_penalty", "slope"]
    assert slope == pytest.approx(1.728, abs=5e-4)


def test_fig1_minima_are_the_closed_forms(ridge_tables):
    settings = ridge_stationarity.Settings()
    x, y = ridge_stationarity.sample_data(settings)
    n, lam = settings.n_samples, settings.penalty_strength
    ols = LinearRegression(fit_intercept=False).fit(x[:, None], y).coef_[0]
    # (1/n)‖y − θx‖² + λθ² has the minimiser of ‖y − θx‖² + nλθ², sklearn's Ridge(alpha = nλ).
    ridge = Ridge(alpha=n * lam, fit_intercept=False).fit(x[:, None], y).coef_[0]
    points = ridge_tables["points"].set_index("minimum")
    assert points.loc["ols", "theta"] == pytest.approx(ols, abs=1e-12)
    assert points.loc["ridge", "theta"] == pytest.approx(ridge, abs=1e-12)
    assert points.loc["penalty", "theta"] == 0.0
    assert points.loc["ridge", "theta"] < points.loc["ols", "theta"]  # shrinkage


def test_fig1_curve_minima_agree_with_points(ridge_tables):
    curves, points = ridge_tables["curves"], ridge_tables["points"].set_index("curve")
    step = 4.0 / 599
    for curve in ("mse", "penalty", "total"):
        rows = curves[curves["curve"] == curve]
        best = rows.loc[rows["value"].idxmin()]
        assert abs(best["theta"] - points.loc[curve, "theta"]) <= step
        assert best["value"] >= points.loc[curve, "value"] - 1e-12
    assert set(curves["preset"]) == {"smoke"}
    assert len(curves) == 3 * 600


def test_fig2_flow_path_ends_near_theta_star(flow_tables):
    markers = flow_tables["markers"].set_index("marker")
    star = markers.loc["theta_star", ["theta_1", "theta_2"]].to_numpy(dtype=float)
    start = markers.loc["theta_0", ["theta_1", "theta_2"]].to_numpy(dtype=float)
    flow = flow_tables["path"].query("path == 'gradient_flow'").sort_values("step")
    end = flow[["theta_1", "theta_2"]].to_numpy()[-1]
    assert np.linalg.norm(start - star) == pytest.approx(0.40, abs=1e-12)
    assert np.linalg.norm(end - star) < 0.05 * 0.40
    assert markers.loc["theta_star", "grad_norm"] < 1e-8
    assert len(flow) == 3001
    assert np.all(np.diff(flow["loss"].to_numpy()) <= 1e-15)  # small-step GD never goes uphill


def test_fig2_sgd_iterates_follow_the_minibatch_steps(flow_tables):
    steps = flow_tables["sgd_steps"].sort_values("step")
    sgd = flow_tables["path"].query("path == 'sgd'").sort_values("step")
    start = steps[["theta_1", "theta_2"]].to_numpy()
    moved = start + steps[["batch_step_1", "batch_step_2"]].to_numpy()
    np.testing.assert_allclose(moved, sgd[["theta_1", "theta_2"]].to_numpy()[1:], atol=1e-12)
    full = steps[["full_step_1", "full_step_2"]].to_numpy()
    gap = np.linalg.norm(full - (moved - start), axis=1)
    assert len(steps) == 6 and gap.min() > 1e-3  # minibatch noise is visible at every step
    assert all(len(set(map(int, s.split()))) == 8 for s in steps["batch_indices"])


def test_fig2_loss_grid_covers_visited_points_with_padding(flow_tables):
    grid = flow_tables["loss_grid"]
    assert len(grid) == 320 * 320
    visited = flow_tables["path"].query("path == 'sgd'")
    for column in ("theta_1", "theta_2"):
        assert grid[column].min() <= visited[column].min() - 0.1 + 1e-12
        assert grid[column].max() >= visited[column].max() + 0.1 - 1e-12
    star = flow_tables["markers"].set_index("marker").loc["theta_star", "loss"]
    assert grid["loss"].min() == pytest.approx(star, abs=1e-3)


@pytest.mark.parametrize(
    ("module", "changes"),
    [
        (ridge_stationarity, {}),
        (sgd_vs_flow, {"flow_steps": 200, "reference_steps": 300, "grid_points": 24}),
    ],
)
def test_same_settings_give_byte_identical_parquet(module, changes, tmp_path):
    settings = dataclasses.replace(module.Settings(), **changes)
    for attempt in ("a", "b"):
        for name, frame in module.run(settings).items():
            io.write_parquet(frame, tmp_path / attempt / f"{name}.parquet")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names and names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_sgd_vs_flow_leaves_the_global_torch_seed_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    sgd_vs_flow.run(sgd_vs_flow.Settings(flow_steps=5, reference_steps=5, grid_points=4))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("module", "changes", "message"),
    [
        (ridge_stationarity, {"penalty_strength": 0.0}, "penalty_strength"),
        (ridge_stationarity, {"theta_min": 4.0}, "theta_min < theta_max"),
        (sgd_vs_flow, {"batch_size": 97}, "batch_size"),
        (sgd_vs_flow, {"reference_start": (0.8,)}, "reference_start"),
    ],
)
def test_invalid_settings_raise_with_the_key(module, changes, message):
    with pytest.raises(ValueError, match=message):
        module.Settings(**changes)
