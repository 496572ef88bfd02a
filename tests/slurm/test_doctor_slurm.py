"""`gradmatch doctor --profile` against the local SLURM, in both accounting modes.

The repository's slurm profile, adapted to the cluster as its comments say, passes; a wrong
partition, GPU model or account each fails, and the report names the key, the value and the
values that exist. Without accounting, a profile that still polls with sacct, or names an
account, fails with the fix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm]

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
GRADMATCH = Path(sys.executable).parent / "gradmatch"


def doctor(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    folder = tmp_path / "slurm"
    folder.mkdir(exist_ok=True)
    (folder / "config.yaml").write_text(text)
    return subprocess.run(
        [str(GRADMATCH), "doctor", "--profile", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def site_line(text: str, key: str, value: str) -> str:
    old = next(line for line in text.splitlines() if line.startswith(f"  {key}: "))
    return text.replace(old, f"  {key}: {value}", 1)


def failures(result: subprocess.CompletedProcess) -> list[str]:
    lines = result.stdout.splitlines()
    return [f"{line}\n{lines[i + 1]}" for i, line in enumerate(lines) if line.startswith("[FAIL]")]


def test_the_adapted_profile_passes(cluster, tmp_path):
    result = doctor(tmp_path, cluster.adapt(PROFILE.read_text()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CPU_PARTITION: partition 'cpu' exists" in result.stdout
    assert "GPU_MODEL: 'l40s' is in the GRES of 'gpu'" in result.stdout


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("CPU_PARTITION", "bigmem", ["'bigmem' is not a partition", "one of: cpu, gpu"]),
        ("GPU_PARTITION", "gpu_a100", ["'gpu_a100' is not a partition", "one of: cpu, gpu"]),
        ("GPU_MODEL", "h100", ["'h100' is not a GPU type of partition 'gpu'", "one of: l40s"]),
    ],
)
def test_a_wrong_site_value_is_named_with_the_values_that_exist(
    cluster, tmp_path, key, value, named
):
    result = doctor(tmp_path, site_line(cluster.adapt(PROFILE.read_text()), key, value))
    assert result.returncode == 1, result.stdout
    (failure,) = [f for f in failures(result) if f.startswith(f"[FAIL] {key}:")]
    for text in [f"set {key} in the site block", *named]:
        assert text in failure, failure


def test_a_wrong_account_is_named(cluster, tmp_path):
    if not cluster.has_accounting:
        pytest.skip("accounts exist only with accounting (the no-accounting case is below)")
    result = doctor(tmp_path, site_line(cluster.adapt(PROFILE.read_text()), "ACCOUNT", "lab42"))
    assert result.returncode == 1, result.stdout
    (failure,) = [f for f in failures(result) if f.startswith("[FAIL] ACCOUNT:")]
    assert "'lab42' is not an account of user" in failure, failure
    assert "set ACCOUNT in the site block" in failure and "one of: default" in failure, failure


def test_without_accounting_an_account_and_sacct_status_fail(cluster, tmp_path):
    if cluster.has_accounting:
        pytest.skip("checks the cluster without accounting")
    # the profile as shipped, with an account filled in: both need accounting
    result = doctor(tmp_path, site_line(PROFILE.read_text(), "ACCOUNT", "default"))
    assert result.returncode == 1, result.stdout
    found = {f.split(":")[0]: f for f in failures(result)}
    assert set(found) == {"[FAIL] ACCOUNT", "[FAIL] status command"}, result.stdout
    assert "sacctmgr failed" in found["[FAIL] ACCOUNT"] and "to null" in found["[FAIL] ACCOUNT"]
    assert "uncomment `slurm-status-command: squeue`" in found["[FAIL] status command"]
