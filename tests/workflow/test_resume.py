"""Training-chunk jobs survive their wall clock: a job stopped by SIGTERM or SIGUSR1 (what SLURM
sends at a time limit or a preemption) saves its state and exits 75; a job killed outright
(SIGKILL) loses only the work since its last periodic save; each rerun resumes and writes a
parquet with the same sha256 as an uninterrupted run. A truncated or foreign state file is
ignored with a message naming it. A job that asks for CUDA where there is none stops at once.

The CLI runs in a subprocess; the signal comes from the test hook of gradmatch.train.checkpoint
($GRADMATCH_SIGNAL_AT), at a known epoch or member."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from gradmatch.train import checkpoint as ck

# a small chunk of Figure 5: two members, 4 epochs, a 10-epoch Adam fit (seconds per run)
SETTINGS = {
    "depths": [2], "widths": [16], "rates": [0.0, 0.5], "seeds": [123], "batch_size": 64,
    "early_stopping": {"max_epochs": 4}, "adam_fit": {"max_epochs": 10},
}  # fmt: skip
GLOBALS = {"preset": "smoke", "device": "cpu", "dataset": "digits"}


def gradmatch(tmp: Path, out: str, *, state: bool = True, env=None, settings=None, globals_=None):
    """Run ``gradmatch dropout`` on chunk 0 in ``tmp``; return the completed process."""
    command = [
        str(Path(sys.executable).parent / "gradmatch"), "dropout",
        "--settings", json.dumps(settings or SETTINGS),
        "--globals", json.dumps(globals_ or GLOBALS), "--chunk", "0", "--out", out,
    ]  # fmt: skip
    if state:
        command += ["--state", "state/chunk_0.pt"]
    environ = {k: v for k, v in os.environ.items() if k not in (ck.TEST_HOOK, "GRADMATCH_WANDB")}
    environ.update(env or {})
    return subprocess.run(
        command, cwd=tmp, env=environ, capture_output=True, text=True, timeout=600
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def header(path: Path) -> dict:
    return json.loads(path.read_bytes().partition(b"\n")[0])


def resumed(tmp: Path, expected_sha: str) -> str:
    """Rerun the job; check rc 0, the sha256 and that the state file is gone; return stderr."""
    done = gradmatch(tmp, "out.parquet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert sha256(tmp / "out.parquet") == expected_sha
    assert not (tmp / "state" / "chunk_0.pt").exists()
    return done.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> str:
    """The sha256 of an uninterrupted run without a state file."""
    tmp = tmp_path_factory.mktemp("reference")
    done = gradmatch(tmp, "ref.parquet", state=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return sha256(tmp / "ref.parquet")


@pytest.fixture(scope="module")
def stopped_in_training(tmp_path_factory) -> bytes:
    """The state file of a job stopped by SIGTERM during epoch 2 (saved after it)."""
    tmp = tmp_path_factory.mktemp("stopped")
    done = gradmatch(tmp, "out.parquet", env={ck.TEST_HOOK: "SIGTERM:train:2"})
    assert done.returncode == ck.EXIT_PREEMPTED, done.stderr[-3000:]
    assert "stopped by SIGTERM; state saved to state/chunk_0.pt" in done.stderr
    assert not (tmp / "out.parquet").exists()
    assert header(tmp / "state" / "chunk_0.pt")["where"] == "training, 3 of 4 epochs"
    return (tmp / "state" / "chunk_0.pt").read_bytes()


def with_state(tmp: Path, raw: bytes) -> Path:
    (tmp / "state").mkdir()
    (tmp / "state" / "chunk_0.pt").write_bytes(raw)
    return tmp / "state" / "chunk_0.pt"


@pytest.mark.slow
def test_sigterm_during_training_then_rerun_gives_the_same_sha256(
    tmp_path, reference, stopped_in_training
):
    with_state(tmp_path, stopped_in_training)
    log = resumed(tmp_path, reference)
    assert "resuming from the state file state/chunk_0.pt (training, 3 of 4 epochs)" in log


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
def test_a_signal_during_the_fits_then_rerun_gives_the_same_sha256(tmp_path, reference, name):
    done = gradmatch(tmp_path, "out.parquet", env={ck.TEST_HOOK: f"{name}:fits:1"})
    assert done.returncode == ck.EXIT_PREEMPTED, done.stderr[-3000:]
    assert f"stopped by {name}" in done.stderr and "interrupted a member's fit" in done.stderr
    log = resumed(tmp_path, reference)
    assert "(fits: 1 of 2 members done)" in log


@pytest.mark.slow
def test_sigkill_after_a_periodic_save_then_rerun_gives_the_same_sha256(tmp_path, reference):
    every_epoch = {"GRADMATCH_CHECKPOINT_MINUTES": "1e-9", ck.TEST_HOOK: "SIGKILL:train:3"}
    done = gradmatch(tmp_path, "out.parquet", env=every_epoch)
    assert done.returncode == -9, done.stderr[-3000:]
    assert header(tmp_path / "state" / "chunk_0.pt")["where"] == "training, 3 of 4 epochs"
    log = resumed(tmp_path, reference)
    assert "resuming from the state file" in log


@pytest.mark.slow
def test_a_truncated_state_file_is_ignored_with_its_name(tmp_path, reference, stopped_in_training):
    with_state(tmp_path, stopped_in_training[:-1000])
    log = resumed(tmp_path, reference)
    assert "ignoring the state file state/chunk_0.pt: truncated" in log
    assert "resuming" not in log


@pytest.mark.slow
def test_a_foreign_state_file_is_ignored_with_its_name(tmp_path, reference, stopped_in_training):
    line, _, payload = stopped_in_training.partition(b"\n")
    other = {**json.loads(line), "settings_sha256": hashlib.sha256(b"other").hexdigest()}
    with_state(tmp_path, json.dumps(other).encode() + b"\n" + payload)
    log = resumed(tmp_path, reference)
    assert "ignoring the state file state/chunk_0.pt: written for another job" in log
    assert "settings_sha256" in log and "resuming" not in log


IGR = {
    "widths": [8], "learning_rates": [0.001, 0.5], "epochs": 3, "n_train": 400, "n_val": 100,
    "n_test": 100, "min_train_accuracy": 0.15, "probe_size": 128, "probe_steps": 2,
    "rk4_substeps": 2,
}  # fmt: skip


@pytest.mark.slow
def test_igr_stopped_during_its_probes_resumes_both_tables_exactly(tmp_path):
    """igr: two tables, and its own member loop (the IGR probes, section ``probes``)."""

    def igr(out: str, state: bool, env=None):
        command = [
            str(Path(sys.executable).parent / "gradmatch"), "igr", "--settings", json.dumps(IGR),
            "--globals", json.dumps(GLOBALS), "--chunk", "0",
            "--out", f"runs={out}_runs.parquet", "--out", f"epochs={out}_epochs.parquet",
        ] + (["--state", "state/chunk_0.pt"] if state else [])  # fmt: skip
        environ = {k: v for k, v in os.environ.items() if k != ck.TEST_HOOK}
        return subprocess.run(command, cwd=tmp_path, env={**environ, **(env or {})},
                              capture_output=True, text=True, timeout=600)  # fmt: skip

    assert igr("ref", state=False).returncode == 0
    stopped = igr("out", state=True, env={ck.TEST_HOOK: "SIGTERM:probes:1"})
    assert stopped.returncode == ck.EXIT_PREEMPTED, stopped.stderr[-3000:]
    done = igr("out", state=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(probes: 1 of 2 members done)" in done.stderr
    for table in ("runs", "epochs"):
        assert sha256(tmp_path / f"out_{table}.parquet") == sha256(
            tmp_path / f"ref_{table}.parquet"
        )
    assert not (tmp_path / "state" / "chunk_0.pt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_one_stops_before_reading_data(tmp_path):
    # MNIST from an empty folder: reaching the data would fail with a missing-file error
    asks_cuda = {**GLOBALS, "device": "cuda", "dataset": "mnist", "mnist_dir": str(tmp_path)}
    done = gradmatch(tmp_path, "out.parquet", globals_=asks_cuda)
    assert done.returncode == 1
    assert "no CUDA device" in done.stderr
    assert "asks for device 'cuda'" in done.stderr and "`device: cpu`" in done.stderr
    assert "Traceback" not in done.stderr and "MNIST" not in done.stderr
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "state").exists()


@pytest.mark.slow
def test_the_workflow_passes_a_state_file_outside_the_outputs(workflow_copy, run_snakemake):
    workdir = workflow_copy("resume_dry_run")
    log = run_snakemake(
        workdir, "-n", "-p", "--cores", "1", "data/generated/dropout/chunks/members_0.parquet",
        "--configfile", "config/smoke.yaml",
    )  # fmt: skip
    assert "--state data/state/dropout/chunk_0.pt" in log


@pytest.mark.slow
def test_a_job_stopped_under_snakemake_resumes_on_the_rerun(workflow_copy, run_snakemake):
    """Snakemake deletes the failed job's outputs; the state survives and the rerun resumes.
    The reference is an uninterrupted run of the same job under Snakemake, which sets the
    job's thread count (float sums depend on it)."""
    workdir = workflow_copy("resume_workflow")
    config = yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())
    config["dropout"] = SETTINGS
    config["device"] = "cpu"
    (workdir / "small.yaml").write_text(yaml.safe_dump(config))
    target = "data/generated/dropout/chunks/members_0.parquet"
    args = ("--cores", "1", target, "--configfile", "small.yaml")
    env = {**os.environ, ck.TEST_HOOK: "SIGTERM:train:2"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    failed = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert failed.returncode != 0
    log = (workdir / "data" / "logs" / "dropout" / "chunk_0.log").read_text()
    assert "stopped by SIGTERM" in log
    assert (workdir / "data" / "state" / "dropout" / "chunk_0.pt").exists()
    assert not (workdir / target).exists()
    run_snakemake(workdir, *args)
    assert "resuming from the state file" in (workdir / "data/logs/dropout/chunk_0.log").read_text()
    assert not (workdir / "data" / "state" / "dropout" / "chunk_0.pt").exists()
    resumed_sha = sha256(workdir / target)
    run_snakemake(workdir, "--forcerun", "dropout_chunk", *args)
    assert sha256(workdir / target) == resumed_sha
