"""Fault injection on the smoke preset, in temporary copies of the workflow (cheap targets).

- kill -9 of a running training job (an igr chunk job), then a rerun;
- kill -9 of Snakemake itself while a chunk job runs, then unlock and a rerun;
  both give parquet tables byte-identical (sha256) to an uninterrupted run;
- a full disk (a small tmpfs over data/, as root) leaves no partial output under a final name;
- a corrupt chunk table makes the aggregate step fail, naming the file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

SMOKE = ("--configfile", "config/smoke.yaml")
TARGET = "fig6"  # igr: two chunk jobs (training), an aggregate, a plot
CHUNK_JOB = ("igr", "--chunk")  # words of a chunk job's command line
WAIT_S = 300  # bound on every wait below (a hung job fails the test instead of CI)


def digests(workdir: Path) -> dict[str, str]:
    """sha256 of every parquet table under data/generated, by path relative to workdir."""
    return {
        str(path.relative_to(workdir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((workdir / "data" / "generated").rglob("*.parquet"))
    }


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run Snakemake to the end in workdir (the result is returned, not checked)."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=workdir, env=_env(),
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def start_snakemake(workdir: Path, *args: str) -> subprocess.Popen:
    log = open(workdir / "interrupted.log", "w")  # noqa: SIM115 - closed by the OS at exit
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args], cwd=workdir, env=_env(),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def running_chunk_job(workdir: Path, snakemake_run: subprocess.Popen) -> psutil.Process:
    """The Python process of a chunk job that Snakemake started in workdir, once it has run
    for a while (past its imports, into training); fails if Snakemake ends first."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if snakemake_run.poll() is not None:
            pytest.fail(f"snakemake ended before a chunk job ran:\n{_tail(workdir)}")
        for process in _jobs(workdir):
            try:
                if process.cpu_times().user > 2.5:
                    return process
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.2)
    pytest.fail(f"no chunk job ran within {WAIT_S} s:\n{_tail(workdir)}")


def _jobs(workdir: Path) -> list[psutil.Process]:
    """Chunk-job Python processes (not their /bin/sh wrappers) whose working folder is workdir."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd", "name"]):
        cmdline = process.info["cmdline"] or []
        if (
            process.info["cwd"] == str(workdir)
            and all(word in cmdline for word in CHUNK_JOB)
            and not (process.info["name"] or "").endswith("sh")
        ):
            found.append(process)
    return found


def _tail(workdir: Path) -> str:
    return (workdir / "interrupted.log").read_text()[-3000:]


@pytest.fixture(scope="module")
def reference(workflow_copy, run_snakemake) -> tuple[Path, dict[str, str]]:
    """An uninterrupted smoke run of the target, and the sha256 of its tables."""
    workdir = workflow_copy("faults_reference")
    run_snakemake(workdir, "--cores", "2", TARGET, *SMOKE)
    tables = digests(workdir)
    assert len(tables) == 6, tables  # 2 tables x (2 chunks + the aggregate)
    return workdir, tables


@pytest.mark.slow
def test_kill_9_of_a_training_job_then_a_rerun_gives_identical_tables(reference, workflow_copy):
    workdir = workflow_copy("faults_kill_job")
    run = start_snakemake(workdir, "--cores", "1", TARGET, *SMOKE)
    job = running_chunk_job(workdir, run)
    job.send_signal(signal.SIGKILL)
    assert run.wait(timeout=WAIT_S) != 0, _tail(workdir)
    assert "Error in rule igr_chunk" in _tail(workdir)
    assert not list((workdir / "data" / "generated").rglob("*.tmp"))  # no temp file left
    rerun = snakemake(workdir, "--cores", "2", TARGET, *SMOKE)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert digests(workdir) == reference[1]


@pytest.mark.slow
def test_kill_9_of_snakemake_then_unlock_and_rerun_gives_identical_tables(reference, workflow_copy):
    workdir = workflow_copy("faults_kill_snakemake")
    run = start_snakemake(workdir, "--cores", "1", TARGET, *SMOKE)
    job = running_chunk_job(workdir, run)
    os.kill(run.pid, signal.SIGKILL)  # Snakemake only: its running job is orphaned
    run.wait(timeout=WAIT_S)
    psutil.wait_procs([job], timeout=WAIT_S)  # let the orphan end on its own
    assert (workdir / ".snakemake" / "locks").is_dir() and any(
        (workdir / ".snakemake" / "locks").iterdir()
    ), "a killed Snakemake leaves its lock"
    refused = snakemake(workdir, "--cores", "2", TARGET, *SMOKE)
    assert refused.returncode != 0 and "cannot be locked" in refused.stdout + refused.stderr
    unlocked = snakemake(workdir, "--unlock", TARGET, *SMOKE)
    assert unlocked.returncode == 0, unlocked.stderr[-3000:]
    rerun = snakemake(workdir, "--cores", "2", "--rerun-incomplete", TARGET, *SMOKE)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert digests(workdir) == reference[1]


@pytest.fixture
def full_disk(workflow_copy):
    """A copy whose data/ is a 16 KiB tmpfs: too small for the ridge_stationarity tables."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    workdir = workflow_copy("faults_full_disk")
    data = workdir / "data"
    data.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(data)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield workdir
    finally:
        subprocess.run(["umount", str(data)], check=True)


@pytest.mark.slow
def test_a_full_disk_leaves_no_partial_output_under_a_final_name(full_disk):
    tables = [f"data/generated/ridge_stationarity/{name}.parquet" for name in
              ("arrows", "curves", "points")]  # fmt: skip
    result = snakemake(full_disk, "--cores", "1", *tables, *SMOKE)
    assert result.returncode != 0
    assert "Error in rule ridge_stationarity" in result.stdout + result.stderr
    log = full_disk / "data" / "logs" / "ridge_stationarity" / "ridge_stationarity.log"
    lines = log.read_text().strip().splitlines()
    assert lines[-1].startswith("gradmatch ridge-stationarity: error: the disk is full (")
    assert "No space left on device" in lines[-1] and "Traceback" not in log.read_text()
    # the job failed: none of its tables is left under its final name, nor a temporary file
    generated = full_disk / "data" / "generated"
    assert [str(path) for path in generated.rglob("*") if path.is_file()] == []


@pytest.mark.slow
def test_a_corrupt_chunk_table_fails_the_aggregate_naming_the_file(reference, tmp_path):
    workdir = Path(shutil.copytree(reference[0], tmp_path / "copy", symlinks=True))
    chunk = workdir / "data" / "generated" / "igr" / "chunks" / "runs_0.parquet"
    chunk.write_bytes(chunk.read_bytes()[:3000])  # truncated: the footer is gone
    result = snakemake(workdir, "--cores", "1", "data/generated/igr/runs.parquet", *SMOKE)
    assert result.returncode != 0
    assert "Error in rule aggregate_igr" in result.stdout + result.stderr
    log = (workdir / "data" / "logs" / "igr" / "aggregate.log").read_text().strip()
    assert log.startswith("gradmatch aggregate: error: ") and len(log.splitlines()) == 1
    assert "'data/generated/igr/chunks/runs_0.parquet'" in log
    # the aggregate failed, so no table of it is left under its final name
    assert not (workdir / "data" / "generated" / "igr" / "runs.parquet").exists()
    assert not (workdir / "data" / "generated" / "igr" / "epochs.parquet").exists()
