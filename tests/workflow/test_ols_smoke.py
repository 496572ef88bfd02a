"""Figures 4 and 7 workflow: a smoke run of targets fig4 and fig7 from a clean temporary copy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def smoke_run(smoke_workflow) -> Path:
    return smoke_workflow("ols", "fig4", "fig7")


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["fig4", "fig7"])
def test_smoke_writes_both_figures(smoke_run, stem, assert_figure):
    assert_figure(smoke_run, stem)


@pytest.mark.slow
def test_smoke_tables_carry_the_preset_and_the_exact_claims(smoke_run):
    generated = smoke_run / "data" / "generated"
    endpoint = pd.read_parquet(generated / "ols_endpoint" / "endpoint.parquet")
    assert set(endpoint["preset"]) == {"smoke"} and set(endpoint["stop_step"]) == {500}
    error = pd.read_parquet(generated / "ols_fixed_stop" / "error.parquet")
    assert error[error["m"] >= 10]["relative_frobenius_error"].max() < 1e-6
    sweep = pd.read_parquet(generated / "ols_bootstrap_sigma" / "sigma_sweep.parquet")
    means = sweep.groupby("noise_std")["distance_frobenius"].mean()
    baseline = sweep["zero_baseline_frobenius"].iloc[0]
    assert means[20.0] < baseline < means[0.5]
