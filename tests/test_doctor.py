"""`gradmatch doctor` with fake SLURM clients: what it parses, what it reports, its exit status.

The fakes print what real sinfo/sacctmgr/sacct/scontrol print on a site (GRES with socket
affinity, several partitions, untyped GPUs, no accounting); the same checks run against the
real local SLURM in tests/slurm/test_doctor_slurm.py.
"""

from __future__ import annotations

import argparse
import getpass
import os
import stat
from pathlib import Path

import pytest

from gradmatch.cli import doctor

SINFO = """\
cpu|(null)
gpu|gpu:a100:4(S:0-1),shard:8
gpu|gpu:l40s:2(S:0)
debug|gpu:2
"""
USER = getpass.getuser()


def profile(tmp_path: Path, **site) -> Path:
    values = {"ACCOUNT": "null", "CPU_PARTITION": "cpu", "GPU_PARTITION": "gpu"}
    values |= {"GPU_MODEL": "l40s"} | site
    body = "".join(f"  {key}: {value}\n" for key, value in values.items())
    path = tmp_path / "profile" / "config.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"__use_yte__: true\n__variables__:\n{body}executor: slurm\n")
    return path


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """Put fake SLURM clients first on PATH; ``fake_slurm(name, script)`` replaces one."""
    folder = tmp_path / "bin"
    folder.mkdir()

    def install(name: str, script: str) -> None:
        path = folder / name
        path.write_text(f"#!/bin/sh\n{script}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)

    install("sinfo", f"cat <<'EOF'\n{SINFO}EOF")
    install("sacctmgr", f'[ "$5" = "user={USER}" ] && printf "lab1\\nlab2\\n"')
    install("sacct", "echo 12")
    install("scontrol", 'echo "MinJobAge               = 300 sec"')
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return install


def by_name(checks) -> dict[str, doctor.Check]:
    return {check.name: check for check in checks}


def test_partition_gres_reads_affinity_shards_and_null():
    gres = doctor.partition_gres(SINFO)
    assert gres == {
        "cpu": set(),
        "gpu": {"gpu:a100:4", "shard:8", "gpu:l40s:2"},
        "debug": {"gpu:2"},
    }
    assert doctor.gpu_types(gres["gpu"]) == {"a100", "l40s"}
    assert doctor.gpu_types(gres["debug"]) == set()


def test_a_matching_site_passes(fake_slurm, tmp_path):
    checks = doctor.site_checks(profile(tmp_path, ACCOUNT="lab2"))
    assert [check.status for check in checks] == [doctor.OK] * 5, checks
    assert by_name(checks)["ACCOUNT"].found == f"'lab2' is an account of user {USER}"


@pytest.mark.parametrize(
    ("site", "key", "found", "fix"),
    [
        (
            {"CPU_PARTITION": "standard"},
            "CPU_PARTITION",
            "'standard' is not a partition of this cluster (partitions: cpu, debug, gpu)",
            "set CPU_PARTITION in the site block of",
        ),
        (
            {"GPU_MODEL": "h100"},
            "GPU_MODEL",
            "'h100' is not a GPU type of partition 'gpu'",
            "one of: a100, l40s",
        ),
        (
            {"GPU_PARTITION": "debug"},
            "GPU_MODEL",
            "'l40s' is not a GPU type of partition 'debug' (its GRES: gpu:2)",
            "the GPUs of 'debug' have no type: set GPU_MODEL",
        ),
        (
            {"GPU_PARTITION": "cpu"},
            "GPU_MODEL",
            "the nodes of partition 'cpu' have no gpu GRES",
            "set GPU_PARTITION in the site block of",
        ),
        (
            {"ACCOUNT": "lab3"},
            "ACCOUNT",
            f"'lab3' is not an account of user {USER} (their accounts: lab1, lab2)",
            "one of: lab1, lab2, or to null",
        ),
    ],
)
def test_a_wrong_site_value_names_key_value_and_choices(
    fake_slurm, tmp_path, site, key, found, fix
):
    checks = by_name(doctor.site_checks(profile(tmp_path, **site)))
    assert checks[key].status == doctor.FAIL
    assert found in checks[key].found
    assert fix in checks[key].fix
    others = [check for name, check in checks.items() if name != key]
    assert all(check.status == doctor.OK for check in others), others


def test_without_accounting_sacct_status_and_an_account_fail(fake_slurm, tmp_path):
    fake_slurm("sacct", 'echo "Slurm accounting storage is disabled" >&2; exit 1')
    fake_slurm(
        "sacctmgr", 'echo "You are not running a supported accounting_storage plugin" >&2; exit 1'
    )
    checks = by_name(doctor.site_checks(profile(tmp_path, ACCOUNT="lab1")))
    assert checks["status command"].status == doctor.FAIL
    assert "Slurm accounting storage is disabled" in checks["status command"].found
    assert "uncomment `slurm-status-command: squeue`" in checks["status command"].fix
    assert checks["ACCOUNT"].status == doctor.FAIL
    assert (
        "set ACCOUNT in the site block" in checks["ACCOUNT"].fix
        and "to null" in checks["ACCOUNT"].fix
    )


def test_squeue_status_needs_min_job_age(fake_slurm, tmp_path):
    path = profile(tmp_path)
    path.write_text(path.read_text() + "slurm-status-command: squeue\n")
    assert by_name(doctor.site_checks(path))["status command"].status == doctor.OK
    fake_slurm("scontrol", 'echo "MinJobAge               = 60 sec"')
    check = by_name(doctor.site_checks(path))["status command"]
    assert check.status == doctor.WARN and "MinJobAge is 60 s (< 120 s)" in check.found


def test_no_sinfo_says_where_to_run(fake_slurm, tmp_path):
    fake_slurm("sinfo", 'echo "sinfo: error: Unable to contact slurm controller" >&2; exit 1')
    (check,) = doctor.site_checks(profile(tmp_path))
    assert check.status == doctor.FAIL and "Unable to contact slurm controller" in check.found
    assert "login node" in check.fix


def test_exit_status_follows_failures_not_warnings(fake_slurm, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(doctor, "machine_checks", lambda require_gpu: [])
    args = argparse.Namespace(profile=str(profile(tmp_path).parent), require_gpu=False)
    assert doctor.command(args) == 0
    args.profile = str(profile(tmp_path, GPU_MODEL="h100").parent)
    assert doctor.command(args) == 1
    out = capsys.readouterr().out
    assert "[FAIL] GPU_MODEL: 'h100' is not a GPU type" in out
    assert out.rstrip().endswith("gradmatch doctor: 1 failed, 0 warning(s), 4 ok")


def test_profile_lookup_and_site_block_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"slurm/config.yaml, workflow/profiles/slurm"):
        doctor.resolve_profile("slurm")
    path = profile(tmp_path)
    path.write_text(path.read_text().replace("  GPU_MODEL: l40s\n", ""))
    assert doctor.resolve_profile(str(path.parent)) == path
    with pytest.raises(ValueError, match=r"lacks \['GPU_MODEL'\]"):
        doctor.read_site(path)


def test_package_versions_against_gradmatch_requirements(monkeypatch):
    assert doctor.package_check("snakemake").status == doctor.OK
    monkeypatch.setattr(doctor, "_requirement_specifiers", lambda: {"snakemake": ">=99"})
    check = doctor.package_check("snakemake")
    assert check.status == doctor.FAIL and "gradmatch needs >=99" in check.found
    assert check.fix == 'pip install "snakemake>=99"'
    missing = doctor.package_check("snakemake-executor-plugin-nonexistent")
    assert missing.status == doctor.FAIL and missing.found == "not installed"


def test_python_and_torch_lines():
    assert doctor.python_check().status == doctor.OK  # this environment installed fine
    torch_line, cuda_line = doctor.torch_checks(require_gpu=True)
    import torch

    if torch.version.cuda is None:
        assert torch_line.status == doctor.WARN and "download.pytorch.org/whl/cu" in torch_line.fix
        assert cuda_line.status == doctor.FAIL  # --require-gpu without a CUDA build
    elif torch.cuda.is_available():
        assert cuda_line.status == doctor.OK and torch.cuda.get_device_name(0) in cuda_line.found
