"""Figure 4A/C and the Fig. 7 baseline: one early-stopped OLS endpoint, Λ_t and the diagonal fit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradmatch import config
from gradmatch.core import theory
from gradmatch.data.synthetic import sample_ols
from gradmatch.experiments import ols_endpoint
from gradmatch.settings import AdamFit, OLSProblem

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return ols_endpoint.run(ols_endpoint.Settings())


def test_tables_match_their_declarations(tables):
    assert set(tables) == set(ols_endpoint.TABLES)
    for name, frame in tables.items():
        ols_endpoint.TABLES[name].check(frame, name)
    assert len(tables["endpoint"]) == 2 * 10 and len(tables["theory"]) == 2 * 100


def test_canonical_stop_step_is_the_cap_in_float64_for_both_sigmas(tables):
    steps = tables["endpoint"].groupby("noise_std")["stop_step"].unique()
    assert {sigma: list(values) for sigma, values in steps.items()} == {1.0: [500], 10.0: [500]}
    data = sample_ols(OLSProblem(), 1.0)
    path = theory.gd_path(data.gram, data.moment[None, :], 500, 0.01)
    losses = theory.mse_path(path, data.X, data.y[None, :])[:, 0]
    assert np.all(np.diff(losses) < 0)  # strictly decreasing: min_delta 0 never fires
    assert theory.early_stopping_steps(losses, 5, 1e-3) < 500  # the code's Panel D min_delta does


def test_panel_a_theory_is_eq5_at_the_stop_step(tables):
    rows = tables["theory"][tables["theory"]["noise_std"] == 1.0]
    matrix = np.zeros((10, 10))
    matrix[rows["row"], rows["col"]] = rows["value"]
    expected = theory.early_stopping_penalty(sample_ols(OLSProblem(), 1.0).X, 500, 0.01)
    np.testing.assert_allclose(matrix, expected, rtol=0, atol=1e-15)
    assert np.all(np.linalg.eigvalsh(matrix) > 0)


@pytest.mark.parametrize("sigma", [1.0, 10.0])
def test_panel_c_retrained_weights_equal_the_early_stopped_weights(tables, sigma):
    rows = tables["endpoint"][tables["endpoint"]["noise_std"] == sigma]
    theta = rows["theta_hat"].to_numpy()
    for column, tolerance in (("theta_retrained_lstsq", 1e-8), ("theta_retrained_adam", 1e-6)):
        error = np.linalg.norm(rows[column].to_numpy() - theta) / np.linalg.norm(theta)
        assert error < tolerance, (column, error)
    # ...although diag(q̂) is not the diagonal of Λ_t
    q_hat, lam_diag = rows["q_hat_lstsq"].to_numpy(), rows["lambda_theory_diag"].to_numpy()
    assert np.max(np.abs(q_hat - lam_diag) / lam_diag) > 1.0


def test_adam_fit_block_reaches_the_fit():
    short = ols_endpoint.Settings(noise_stds=(1.0,), adam_fit=AdamFit(max_epochs=3, patience=50))
    assert set(ols_endpoint.run(short)["endpoint"]["adam_epochs"]) == {3}


@pytest.mark.parametrize(
    ("values", "key"),
    [({"noise_stds": ()}, "noise_stds"), ({"noise_stds": (1.0, -1.0)}, "noise_stds")],
)
def test_bad_settings_name_the_key(values, key):
    with pytest.raises(config.ConfigError, match=rf"ols_endpoint\.{key}"):
        config.build_settings(ols_endpoint.Settings, values)


def test_presets_overlay_the_defaults():
    def preset(name):
        return config.section_settings(config.load_yaml(REPO / "config" / name), "ols_endpoint")

    assert preset("paper.yaml") == ols_endpoint.Settings(preset="paper")
    assert preset("config.yaml") == ols_endpoint.Settings(preset="default")
    smoke = AdamFit(lr=1e-2, max_epochs=500, patience=50)
    assert preset("smoke.yaml") == ols_endpoint.Settings(preset="smoke", adam_fit=smoke)


def test_module_imports_and_reads_tables_without_torch():
    code = (
        "import sys; from gradmatch.experiments import ols_endpoint as m; s = m.Settings(); "
        "print(sorted(m.TABLES), m.RESOURCES.gpu, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['endpoint',", "'theory']", "0", "False"]
