"""Figure 4E: the scalar ridge λ̂_t along one GD trajectory against tr(Λ_t)/p."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradmatch import config
from gradmatch.experiments import ols_ridge_trace
from gradmatch.settings import AdamFit

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trace() -> pd.DataFrame:
    # a partial adam_fit block keeps the paper's lr 0.05 and init 1
    overlay = {"adam_fit": {"max_epochs": 4000, "patience": 500}}
    return ols_ridge_trace.run(config.build_settings(ols_ridge_trace.Settings, overlay))


def test_table_matches_its_declaration(trace):
    ols_ridge_trace.TABLES["ridge_trace"].check(trace)
    assert list(trace["step"]) == list(ols_ridge_trace.PAPER_CHECKPOINTS)


def test_panel_e_lambda_is_about_99_at_t_1(trace):
    first = trace.set_index("step").loc[1]
    assert abs(first["lambda_hat_lstsq"] - 99.0) < 0.1
    assert abs(first["lambda_theory"] - 99.0) < 0.1


def test_panel_e_lstsq_is_the_rayleigh_quotient_and_the_closed_form(trace):
    for column in ("lambda_rayleigh", "lambda_closed_form"):
        ratio = trace["lambda_hat_lstsq"] / trace[column]
        assert np.max(np.abs(ratio - 1)) < 1e-10, column
    # the authors' g(θ_{t−1}) variant differs, by 1 % at t = 1 and less later
    quirk = trace["lambda_closed_form_prev"] / trace["lambda_closed_form"] - 1
    assert 0 < quirk.max() < 0.015


def test_panel_e_tracks_trace_over_p_early_and_drops_below_it_late(trace):
    ratio = (trace["lambda_hat_lstsq"] / trace["lambda_theory"]).to_numpy()
    steps = trace["step"].to_numpy()
    assert np.all(np.abs(ratio[steps <= 300] - 1) < 0.10)
    # late in training Λ_t's eigenvalues spread (Rayleigh quotient ≠ mean eigenvalue)
    assert ratio[steps == 1000][0] < 0.9


def test_panel_e_adam_matches_lstsq_where_it_converges(trace):
    early = trace[trace["step"] <= 200]
    ratio = early["lambda_hat_adam"] / early["lambda_hat_lstsq"]
    assert np.max(np.abs(ratio - 1)) < 0.01


def test_adam_options_carry_the_block_and_its_init():
    options = ols_ridge_trace.adam_options(ols_ridge_trace.Settings())
    assert (options.lr, options.max_epochs, options.patience) == (0.05, 30000, 2000)
    assert options.init == {"lambda": 1.0}
    family_start = ols_ridge_trace.Settings(adam_fit=AdamFit(lr=0.05))
    assert ols_ridge_trace.adam_options(family_start).init is None


def test_bad_settings_name_the_key():
    with pytest.raises(config.ConfigError, match=r"ols_ridge_trace\.checkpoints\.0"):
        config.build_settings(ols_ridge_trace.Settings, {"checkpoints": [0, 5]})
    with pytest.raises(config.ConfigError, match=r"unknown config key 'ols_ridge_trace\.adam_lr"):
        config.build_settings(ols_ridge_trace.Settings, {"adam_lr": 0.1})


def test_presets_overlay_the_defaults():
    def preset(name):
        path = REPO / "config" / name
        return config.section_settings(config.load_yaml(path), "ols_ridge_trace")

    assert preset("paper.yaml") == ols_ridge_trace.Settings(preset="paper")
    assert preset("config.yaml") == ols_ridge_trace.Settings(preset="default")
    smoke = preset("smoke.yaml")
    assert smoke.checkpoints == (1, 10, 100, 1000)
    assert smoke.adam_fit == AdamFit(lr=0.05, max_epochs=1000, patience=100, init=1.0)


def test_module_imports_and_reads_tables_without_torch():
    code = (
        "import sys; from gradmatch.experiments import ols_ridge_trace as m; s = m.Settings(); "
        "print(sorted(m.TABLES), m.RESOURCES.gpu, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['ridge_trace']", "0", "False"]
