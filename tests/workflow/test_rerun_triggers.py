"""Rules depend only on what they use: after a finished smoke run, switching `wandb.mode` plans
no job, switching `device` plans only the jobs of analyses that declare a device, and the W&B
settings still reach the training jobs (through $GRADMATCH_WANDB, not through params)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

# fig6 reads igr (tracked by W&B, declares a device); fig1 reads ridge_stationarity (neither)
TARGETS = ("fig6", "fig1")
DEVICE_JOBS = {"igr_chunk": 2, "aggregate_igr": 1, "plot_fig6": 1, "fig6": 1}


def planned(log: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of `snakemake -n` ({} when nothing to do)."""
    if "Nothing to be done" in log:
        return {}
    table = log.split("Job stats:", 1)[1].split("total", 1)[0]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


@pytest.fixture(scope="module")
def finished(smoke_workflow) -> Path:
    return smoke_workflow("rerun_triggers", *TARGETS)


def variant(workdir: Path, name: str, **changes) -> str:
    """A copy of the smoke preset with top-level keys changed; returns its file name."""
    preset = yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())
    preset.update(changes)
    (workdir / name).write_text(yaml.safe_dump(preset, sort_keys=False))
    return name


@pytest.fixture
def dry_run(finished, run_snakemake):
    def run(configfile: str, *targets: str) -> dict[str, int]:
        log = run_snakemake(finished, "-n", "--cores", "1", *(targets or TARGETS),
                            "--configfile", configfile)  # fmt: skip
        return planned(log)

    return run


@pytest.mark.slow
def test_a_finished_run_plans_nothing(dry_run):
    assert dry_run("config/smoke.yaml") == {}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["offline", "online"])
def test_switching_wandb_mode_plans_no_job(finished, dry_run, mode):
    configfile = variant(finished, f"wandb_{mode}.yaml", wandb={"mode": mode})
    assert dry_run(configfile) == {}


@pytest.mark.slow
def test_switching_device_plans_only_the_rules_that_use_one(finished, dry_run):
    configfile = variant(finished, "device_cpu.yaml", device="cpu")
    assert dry_run(configfile) == DEVICE_JOBS


@pytest.mark.slow
def test_wandb_settings_still_reach_the_training_job(
    finished, run_snakemake, monkeypatch, tmp_path
):
    """A forced rerun of one igr chunk under wandb offline writes a W&B run folder and the same
    bytes as before: the setting travels in $GRADMATCH_WANDB, not in the rule's params. (In a
    copy of the finished run, so the other tests see it untouched.)"""
    finished = Path(shutil.copytree(finished, tmp_path / "copy", symlinks=True))
    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(finished / "wandb-home" / name.lower()))
    monkeypatch.delenv("GRADMATCH_WANDB_DIR", raising=False)
    monkeypatch.delenv("GRADMATCH_WANDB", raising=False)
    chunk = finished / "data" / "generated" / "igr" / "chunks" / "runs_0.parquet"
    before = chunk.read_bytes()
    configfile = variant(finished, "wandb_track.yaml", wandb={"mode": "offline"})
    run_snakemake(finished, "--cores", "1", "--forcerun", "igr_chunk", "--configfile",
                  configfile, "--", str(chunk.relative_to(finished)))  # fmt: skip
    runs = list((finished / "data" / "generated" / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    assert chunk.read_bytes() == before
