"""Figure 1: the closed forms, the stationarity condition, tables, settings, torch-free import."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sklearn.linear_model import LinearRegression, Ridge

from gradmatch import io
from gradmatch.experiments import ridge_stationarity


@pytest.fixture(scope="module")
def ridge_tables():
    return ridge_stationarity.run(ridge_stationarity.Settings(preset="smoke"))


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


def test_tables_match_their_declaration(ridge_tables):
    assert set(ridge_tables) == set(ridge_stationarity.TABLES)
    for name, table in ridge_stationarity.TABLES.items():
        table.check(ridge_tables[name], name)


def test_same_settings_give_byte_identical_parquet(tmp_path):
    settings = ridge_stationarity.Settings()
    for attempt in ("a", "b"):
        for name, frame in ridge_stationarity.run(settings).items():
            io.write_parquet(frame, tmp_path / attempt / f"{name}.parquet")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(f"{name}.parquet" for name in ridge_stationarity.TABLES)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"penalty_strength": 0.0}, "penalty_strength"),
        ({"theta_min": 4.0}, "theta_min"),
        ({"grid_points": 1}, "grid_points"),
    ],
)
def test_invalid_settings_raise_with_the_key(changes, message):
    with pytest.raises(ValueError, match=message):
        ridge_stationarity.Settings(**changes)


def test_module_imports_and_reads_tables_without_torch():
    code = (
        "import sys; from gradmatch.experiments import ridge_stationarity as m; s = m.Settings(); "
        "print(sorted(m.TABLES), m.RESOURCES.gpu, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["0", "False"]
    assert "['arrows', 'curves', 'points']" in result.stdout
