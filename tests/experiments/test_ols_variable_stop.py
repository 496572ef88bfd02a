"""Figure 4D: endpoints early-stopped at their own t_k; Λ̂_m approaches the median Λ^(t_k)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradmatch import config
from gradmatch.core import theory
from gradmatch.experiments import ols_variable_stop
from gradmatch.settings import EarlyStopping

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return ols_variable_stop.run(ols_variable_stop.Settings())


def test_tables_match_their_declarations(tables):
    assert set(tables) == set(ols_variable_stop.TABLES)
    for name, frame in tables.items():
        ols_variable_stop.TABLES[name].check(frame, name)


def test_panel_d_distance_at_100_endpoints_is_below_one_endpoint_in_every_pool(tables):
    distance = tables["distance"].pivot(index="pool", columns="m", values="distance_frobenius")
    assert len(distance) == 10
    assert (distance[100] < distance[1]).all()
    assert (distance[100] < 0.25 * distance[1]).all()


def test_panel_d_stop_steps_vary_around_the_notebook_range(tables):
    steps = tables["endpoints"]["stop_step"]
    assert len(steps) == 1000 and steps.nunique() > 50
    # the authors' notebook (min_delta 1e-3) stopped at t ≈ 440-540
    assert 440 <= steps.median() <= 540 and steps.min() > 300 and steps.max() < 600
    assert tables["endpoints"]["seed"].iloc[0] == 156  # seed 56 + 100 + pool 0 + k 0


def test_each_endpoint_stops_where_its_own_replay_fires():
    settings = ols_variable_stop.Settings(n_endpoints=4, n_pools=1)
    stops, thetas, targets, problems, seeds = ols_variable_stop.pool_endpoints(settings, 0)
    assert seeds == [156, 157, 158, 159]
    for stop, theta, target, data in zip(stops, thetas, targets, problems, strict=True):
        path = theory.gradient_descent_path(data.X, data.y, 2000, 0.01)
        losses = np.mean((data.y[None, :] - path @ data.X.T) ** 2, axis=1)
        assert theory.early_stopping_steps(losses, 5, 1e-3) == stop
        np.testing.assert_allclose(theta, path[stop], atol=1e-10)
        np.testing.assert_allclose(target, theory.linear_mse_target(data.X, data.y, theta))


def test_the_step_cap_is_early_stopping_max_epochs():
    capped = ols_variable_stop.Settings(
        n_endpoints=3, n_pools=1, early_stopping=EarlyStopping(max_epochs=50, patience=5)
    )
    assert set(ols_variable_stop.run(capped)["endpoints"]["stop_step"]) == {50}


def test_bad_settings_name_the_key():
    bad = {"early_stopping": {"min_delta": -1.0}}
    with pytest.raises(config.ConfigError, match=r"ols_variable_stop\.early_stopping\.min_delta"):
        config.build_settings(ols_variable_stop.Settings, bad)
    with pytest.raises(config.ConfigError, match=r"unknown config key 'ols_variable_stop\.max_st"):
        config.build_settings(ols_variable_stop.Settings, {"max_steps": 2000})


def test_presets_overlay_the_defaults():
    def preset(name):
        path = REPO / "config" / name
        return config.section_settings(config.load_yaml(path), "ols_variable_stop")

    assert preset("paper.yaml") == ols_variable_stop.Settings(preset="paper")
    assert preset("config.yaml") == ols_variable_stop.Settings(preset="default")
    smoke = ols_variable_stop.Settings(preset="smoke", n_endpoints=20, n_pools=2)
    assert preset("smoke.yaml") == smoke
    assert smoke.early_stopping == EarlyStopping(max_epochs=2000, patience=5, min_delta=1e-3)


def test_module_imports_and_reads_tables_without_torch():
    code = (
        "import sys; from gradmatch.experiments import ols_variable_stop as m; s = m.Settings(); "
        "print(sorted(m.TABLES), m.RESOURCES.gpu, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['distance',", "'endpoints']", "0", "False"]
