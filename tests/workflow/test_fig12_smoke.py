"""Smoke run of the fig1 and fig2 targets in a temporary copy of the workflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

TABLES = {
    "ridge_stationarity_curves": ["curve", "theta", "value", "penalty_strength", "preset"],
    "ridge_stationarity_points": [
        "minimum",
        "curve",
        "theta",
        "value",
        "penalty_strength",
        "preset",
    ],
    "ridge_stationarity_arrows": [
        "arrow",
        "curve",
        "theta",
        "value",
        "slope",
        "penalty_strength",
        "preset",
    ],
    "sgd_vs_flow_path": ["path", "step", "theta_1", "theta_2", "loss", "preset"],
    "sgd_vs_flow_sgd_steps": [
        "step",
        "theta_1",
        "theta_2",
        "full_step_1",
        "full_step_2",
        "batch_step_1",
        "batch_step_2",
        "learning_rate",
        "batch_indices",
        "preset",
    ],
    "sgd_vs_flow_markers": ["marker", "theta_1", "theta_2", "loss", "grad_norm", "preset"],
    "sgd_vs_flow_loss_grid": ["grid_row", "grid_col", "theta_1", "theta_2", "loss", "preset"],
}
FIGURES = ("fig1_ridge_stationarity", "fig2_sgd_vs_flow")


@pytest.fixture(scope="module")
def smoke_run(smoke_workflow) -> Path:
    return smoke_workflow("fig12", "fig1", "fig2")


@pytest.mark.slow
def test_fig1_fig2_write_pdf_and_png(smoke_run):
    for stem in FIGURES:
        pdf = (smoke_run / "figures" / f"{stem}.pdf").read_bytes()
        png = (smoke_run / "figures" / f"{stem}.png").read_bytes()
        assert pdf.startswith(b"%PDF") and len(pdf) > 5000
        assert png.startswith(b"\x89PNG") and len(png) > 20000
    leftovers = [p.name for p in (smoke_run / "figures").iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.slow
def test_fig1_fig2_parquet_columns(smoke_run):
    folder = smoke_run / "data" / "generated" / "illustrations"
    assert sorted(p.stem for p in folder.glob("*.parquet")) == sorted(TABLES)
    for stem, columns in TABLES.items():
        frame = pd.read_parquet(folder / f"{stem}.parquet")
        assert list(frame.columns) == columns, stem
        assert len(frame) > 0 and set(frame["preset"]) == {"smoke"}, stem


@pytest.mark.slow
def test_fig1_fig2_up_to_date_and_report_has_captions(smoke_run, run_snakemake):
    smoke = ("--configfile", "config/smoke.yaml")
    assert "Nothing to be done" in run_snakemake(smoke_run, "-n", "fig1", "fig2", *smoke)
    run_snakemake(smoke_run, "fig1", "fig2", "--report", "report.html", *smoke)
    html = (smoke_run / "report.html").read_text()
    assert "stationarity condition behind gradient matching" in html
    assert "crameri" in html and "YlGnBu" in html
