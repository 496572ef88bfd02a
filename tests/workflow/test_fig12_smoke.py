"""Smoke run of the fig1 and fig2 targets in a temporary copy of the workflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gradmatch import experiments

ANALYSES = ("ridge_stationarity", "sgd_vs_flow")
FIGURES = ("fig1", "fig2")


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
def test_fig1_fig2_tables_match_their_declarations(smoke_run):
    for analysis in ANALYSES:
        declared = experiments.module(analysis).TABLES
        folder = smoke_run / "data" / "generated" / analysis
        assert sorted(p.stem for p in folder.glob("*.parquet")) == sorted(declared)
        for name, table in declared.items():
            frame = pd.read_parquet(folder / f"{name}.parquet")
            table.check(frame, f"{analysis}.{name}")
            assert len(frame) > 0 and set(frame["preset"]) == {"smoke"}, name


@pytest.mark.slow
def test_fig1_fig2_up_to_date_and_report_has_captions(smoke_run, run_snakemake):
    smoke = ("--configfile", "config/smoke.yaml")
    assert "Nothing to be done" in run_snakemake(smoke_run, "-n", "fig1", "fig2", *smoke)
    run_snakemake(smoke_run, "fig1", "fig2", "--report", "report.html", *smoke)
    html = (smoke_run / "report.html").read_text()
    assert "stationarity condition behind gradient matching" in html
    assert "crameri" in html and "YlGnBu" in html
