"""Provenance records (gradmatch.provenance) in every table: analysis, aggregate, claims, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gradmatch import config as config_lib
from gradmatch import io, provenance
from gradmatch.cli import main

REPO = Path(__file__).resolve().parents[1]
FIELDS = {
    "analysis", "chunk", "commit", "config_hash", "cuda", "device", "dirty", "gradmatch", "host",
    "preset", "python", "slurm_array_job_id", "slurm_array_task_id", "slurm_job_id", "torch",
}  # fmt: skip


def head_commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def test_a_record_names_code_settings_versions_device_host_and_job(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    settings = config_lib.section_settings({"preset": "smoke"}, "ridge_stationarity")
    record = provenance.record(settings, analysis="ridge_stationarity")
    assert set(record) == FIELDS
    assert record["config_hash"] == provenance.config_hash(settings)
    assert len(record["config_hash"]) == 64 and record["preset"] == "smoke"
    assert record["device"] == "cpu" and record["analysis"] == "ridge_stationarity"
    assert (record["slurm_job_id"], record["slurm_array_task_id"]) == ("4242", "3")
    assert record["slurm_array_job_id"] is None
    import gradmatch

    assert record["gradmatch"] == gradmatch.__version__
    if head_commit() is not None:  # a checkout (CI, this machine); the tree may be dirty or not
        assert record["commit"] == head_commit()
        assert isinstance(record["dirty"], bool)
    assert list(record) == sorted(record)  # stable bytes


def test_the_config_hash_follows_the_settings_and_ignores_wandb():
    smoke = config_lib.section_settings({"preset": "smoke"}, "elastic_net")
    again = config_lib.section_settings({"preset": "smoke"}, "elastic_net")
    tracked = config_lib.section_settings(
        {"preset": "smoke", "wandb": {"mode": "offline"}}, "elastic_net"
    )
    other = config_lib.section_settings({"preset": "default"}, "elastic_net")
    assert provenance.config_hash(smoke) == provenance.config_hash(again)
    assert provenance.config_hash(smoke) == provenance.config_hash(tracked)
    assert provenance.config_hash(smoke) != provenance.config_hash(other)


def test_outside_a_git_checkout_the_commit_is_unknown(tmp_path, monkeypatch):
    package = tmp_path / "lonely" / "src" / "gradmatch"
    package.mkdir(parents=True)
    assert provenance.git_state.__wrapped__(package) == {"commit": "unknown", "dirty": "unknown"}
    # a checkout that does not hold the package under src/ (e.g. a venv inside another repo)
    subprocess.run(["git", "init", "-q", str(tmp_path / "other")], check=True)
    inside = tmp_path / "other" / "venv" / "site-packages" / "gradmatch"
    inside.mkdir(parents=True)
    assert provenance.git_state.__wrapped__(inside)["commit"] == "unknown"
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))  # git itself missing
    assert provenance.git_state.__wrapped__(provenance.PACKAGE_DIR)["commit"] == "unknown"


def test_dirty_means_an_edit_to_the_code_not_a_log_beside_it(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    package = tmp_path / "src" / "gradmatch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-q", "-m", "c")
    state = provenance.git_state.__wrapped__(package.resolve())
    assert state["dirty"] is False and len(state["commit"]) == 40
    (tmp_path / "data" / "logs").mkdir(parents=True)
    (tmp_path / "data" / "logs" / "job.log").write_text("a job ran here")
    assert provenance.git_state.__wrapped__(package.resolve())["dirty"] is False
    (package / "__init__.py").write_text("x = 1\n")
    assert provenance.git_state.__wrapped__(package.resolve())["dirty"] is True


def test_torch_versions_are_read_without_importing_torch():
    code = (
        "import sys, json; from gradmatch import provenance as p; "
        "v = p.torch_versions(); assert 'torch' not in sys.modules; print(json.dumps(v))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import torch

    assert json.loads(done.stdout) == {"torch": torch.__version__, "cuda": torch.version.cuda}
    assert provenance.torch_versions() == json.loads(done.stdout)


def test_merge_keeps_agreeing_fields_once_lists_the_others_and_every_part():
    first = {"commit": "a" * 40, "dirty": False, "device": "cpu", "chunk": 0, "host": "n1"}
    second = {**first, "chunk": 1, "device": "NVIDIA H200", "host": "n2"}
    merged = provenance.merge([first, second])
    assert merged["commit"] == "a" * 40 and merged["dirty"] is False
    assert merged["device"] == ["NVIDIA H200", "cpu"] and merged["chunk"] == [0, 1]
    assert merged["parts"] == [first, second]
    assert provenance.leaf_values(merged, "host") == ["n1", "n2"]
    with_old = provenance.merge([first, None])
    assert with_old["unrecorded_parts"] == 1
    assert provenance.commit_label(with_old) == f"{'a' * 40},unrecorded"
    dirty = provenance.merge([first, {**second, "commit": "b" * 40, "dirty": True}])
    assert dirty["commit"] == ["a" * 40, "b" * 40]
    assert provenance.commit_label(dirty) == f"{'a' * 40},{'b' * 40}-dirty"
    assert provenance.commit_label(provenance.merge([dirty, first])) == provenance.commit_label(
        dirty
    )  # nested merges reach the jobs


def _ridge_outputs(tmp_path: Path, name: str, *extra: str) -> dict[str, Path]:
    from gradmatch.experiments import ridge_stationarity

    outs = {table: tmp_path / name / f"{table}.parquet" for table in ridge_stationarity.TABLES}
    flags = [f"--out={table}={path}" for table, path in outs.items()]
    assert main(["ridge-stationarity", "--globals", '{"preset": "smoke"}', *flags, *extra]) == 0
    return outs


def test_an_analysis_table_shows_commit_config_hash_and_device_in_pandas_attrs(tmp_path):
    outs = _ridge_outputs(tmp_path, "a")
    settings = config_lib.section_settings({"preset": "smoke"}, "ridge_stationarity")
    for path in outs.values():
        attrs = pd.read_parquet(path).attrs["gradmatch"]
        assert attrs["commit"] == provenance.git_state()["commit"]
        assert attrs["config_hash"] == provenance.config_hash(settings)
        assert attrs["device"] == "cpu" and attrs["analysis"] == "ridge_stationarity"
        assert io.read_provenance(path) == attrs
    again = _ridge_outputs(tmp_path, "b")  # no timestamp: the same run gives the same bytes
    for table, path in outs.items():
        assert path.read_bytes() == again[table].read_bytes()


def test_an_aggregated_table_merges_its_chunks_provenance(tmp_path, monkeypatch):
    from gradmatch.experiments import ridge_stationarity

    outs = _ridge_outputs(tmp_path, "whole")
    flags = []
    for table, path in outs.items():
        frame = pd.read_parquet(path)
        halves = (frame.iloc[len(frame) // 2 :], frame.iloc[: len(frame) // 2])
        for part, rows in enumerate(halves):
            chunk = tmp_path / f"{table}_{part}.parquet"
            origin = {**io.read_provenance(path), "chunk": part, "slurm_job_id": str(100 + part)}
            io.write_parquet(rows, chunk, provenance=origin)
            flags += ["--input", f"{table}={chunk}"]
    result = {table: tmp_path / f"all_{table}.parquet" for table in ridge_stationarity.TABLES}
    outs_flags = [f"--out={table}={path}" for table, path in result.items()]
    assert main(["aggregate", "ridge_stationarity", *flags, *outs_flags]) == 0
    for path in result.values():
        merged = pd.read_parquet(path).attrs["gradmatch"]
        assert merged["commit"] == provenance.git_state()["commit"]  # one commit: once
        assert merged["chunk"] == [0, 1] and merged["slurm_job_id"] == ["100", "101"]
        assert [part["slurm_job_id"] for part in merged["parts"]] == ["100", "101"]
        assert isinstance(merged["config_hash"], str) and merged["device"] == "cpu"


def test_the_claims_commit_column_and_the_provenance_appendix(tmp_path):
    from gradmatch.report import provenance as report_provenance
    from gradmatch.report.claims.outcomes import at_most
    from gradmatch.report.claims.registry import Claim, evaluate_claims

    paths = {}
    for table_id, commit, dirty, device in (
        ("demo.a", "a" * 40, False, "cpu"),
        ("demo.b", "b" * 40, True, "NVIDIA H200"),
    ):
        origin = {**provenance.record(), "commit": commit, "dirty": dirty, "device": device}
        origin["preset"], origin["slurm_job_id"] = "smoke", "77"
        path = tmp_path / f"{table_id}.parquet"
        io.write_parquet(pd.DataFrame({"x": [1.0], "preset": ["smoke"]}), path, provenance=origin)
        paths[table_id] = str(path)
    source = "Sec. 0: a demo sentence."
    claims = [
        Claim("one", "Fig. 0", "a", ("demo.a",), lambda t: at_most(0, 1), source=source),
        Claim(
            "two", "Fig. 0", "b", ("demo.a", "demo.b"), lambda a, b: at_most(0, 1), source=source
        ),
    ]
    table = evaluate_claims(claims, paths=paths, check=False)
    table, origin = report_provenance.with_commits(table, paths, claims)
    by_claim = table.set_index("claim_id")
    assert by_claim.loc["one", "commit"] == "a" * 40
    assert by_claim.loc["two", "commit"] == f"{'a' * 40},{'b' * 40}-dirty"
    assert list(table.columns).index("commit") == list(table.columns).index("preset") + 1
    assert origin["analysis"] == "claims" and origin["commit"] == ["a" * 40, "b" * 40]
    tex = report_provenance.provenance_tex(report_provenance.read_records(paths))
    assert r"\texttt{aaaaaaaaaaaa} & smoke & cpu" in tex
    assert r"\texttt{bbbbbbbbbbbb-dirty} & smoke & NVIDIA H200" in tex
    assert "77" in tex and r"\section{Provenance of the tables}" in tex


def test_a_table_without_provenance_reads_as_unrecorded(tmp_path):
    from gradmatch.report import provenance as report_provenance

    path = tmp_path / "old.parquet"
    pd.DataFrame({"x": [1.0]}).to_parquet(path)  # as written before provenance was recorded
    assert io.read_provenance(path) is None
    (row,) = report_provenance.provenance_rows({"demo.old": None})
    assert row["commit"] == "unrecorded" and row["device"] == "unrecorded"


@pytest.mark.slow
def test_every_table_of_a_smoke_run_carries_commit_config_hash_and_device(
    workflow_copy, run_snakemake
):
    """fig6 on the smoke preset: two igr chunk jobs and their aggregate."""
    workdir = workflow_copy("provenance")
    run_snakemake(workdir, "--cores", "2", "--configfile", "config/smoke.yaml", "--", "fig6")
    tables = sorted((workdir / "data" / "generated").rglob("*.parquet"))
    assert len(tables) >= 3
    for path in tables:
        attrs = pd.read_parquet(path).attrs["gradmatch"]
        assert attrs["commit"] == provenance.git_state()["commit"], path
        assert isinstance(attrs["config_hash"], str) and attrs["device"] == "cpu", path
    runs = io.read_provenance(workdir / "data" / "generated" / "igr" / "runs.parquet")
    assert runs["chunk"] == [0, 1] and len(runs["parts"]) == 2
