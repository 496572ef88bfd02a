"""Figure 3 workflow: a smoke run of target fig3 in a temporary copy, and the slurm dry run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke_run(smoke_workflow) -> Path:
    return smoke_workflow("fig3", "fig3")


@pytest.mark.slow
def test_fig3_smoke_writes_figure_and_summary(smoke_run, assert_figure):
    assert_figure(smoke_run, "fig3")
    generated = smoke_run / "data" / "generated" / "elastic_net"
    assert sorted(p.name for p in (generated / "chunks").glob("*.parquet")) == [
        "summary_0.parquet",
        "summary_1.parquet",
    ]
    summary = pd.read_parquet(generated / "summary.parquet")
    assert len(summary) == 4 and set(summary["preset"]) == {"smoke"}
    cells = list(zip(summary["lambda_true_l1"], summary["lambda_true_l2"], strict=True))
    assert cells == [(1e-3, 1e-3), (1e-3, 1e-1), (1e-1, 1e-3), (1e-1, 1e-1)]
    assert {"lambda_hat_l1_lstsq", "lambda_hat_l2_adam", "fit_residual_ratio_nnls"} <= set(
        summary.columns
    )


@pytest.mark.slow
def test_elastic_net_chunk_requests_one_l40s_under_the_slurm_profile(tmp_path, run_snakemake):
    shutil.copytree(REPO / "config", tmp_path / "config")
    log = run_snakemake(
        tmp_path, "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(tmp_path),
        "--profile", str(REPO / "workflow" / "profiles" / "slurm"), "-n", "fig3",
    )  # fmt: skip
    chunk_jobs = re.findall(r"rule elastic_net_chunk:.*?resources: ([^\n]*)", log, re.S)
    assert len(chunk_jobs) == 10  # paper preset: 6 × 6 × 10 cells, 36 per chunk
    for resources in chunk_jobs:
        assert "gpu=1" in resources and "gpu_model=l40s" in resources
        assert "slurm_partition=gpu" in resources
    for rule in ("aggregate_elastic_net", "plot_fig3"):  # the job table lists each once
        assert re.search(rf"^{rule}\s+1$", log, re.M), rule
