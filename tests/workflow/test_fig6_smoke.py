"""Figure 6 workflow: a smoke run of targets fig6 and figS1 in a temporary copy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def smoke_run(smoke_workflow) -> Path:
    return smoke_workflow("igr", "fig6", "figS1")


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["fig6", "figS1"])
def test_smoke_writes_both_figures(smoke_run, stem, assert_figure):
    assert_figure(smoke_run, stem)


@pytest.mark.slow
def test_smoke_runs_table_keeps_every_run_and_flags_exclusions(smoke_run):
    runs = pd.read_parquet(smoke_run / "data" / "generated" / "igr" / "runs.parquet")
    assert len(runs) == 4 and set(runs["preset"]) == {"smoke"}
    assert sorted(runs["width"].unique()) == [8, 16]
    kept = runs[~runs["excluded"]]
    assert len(kept) >= 1 and (kept["lambda_hat"] > 0).all()
    assert runs[runs["excluded"]]["lambda_hat"].isna().all()
    epochs = pd.read_parquet(smoke_run / "data" / "generated" / "igr" / "epochs.parquet")
    assert len(epochs) == 4 * 2


@pytest.mark.slow
def test_smoke_long_horizon_ratio_below_one_on_the_regression(smoke_run):
    generated = smoke_run / "data" / "generated"
    drift = pd.read_parquet(generated / "igr_long_horizon" / "drift.parquet")
    linear = drift[(drift["model"] == "linear") & (drift["step"] > 0)]
    assert len(linear) == 2 * 10 and (linear["drift_ratio"] < 1).all()
