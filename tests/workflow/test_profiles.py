"""The two profiles, as Snakemake merges them, and dry runs of `paper` under each from the root.

`snakemake --profile slurm` also loads the workflow profile workflow/profiles/default, whose
values win; these tests read the merged settings with Snakemake's own parser (keep-going on
under slurm and off locally, requeue, the time-limit signal of the training chunks) and check
that the dry run of the default target sends every GPU rule to one L40S on the gpu partition,
every other remote rule to the cpu partition, and keeps plot rules local. The commented site
alternatives are run for real in tests/slurm/. GPU rules are discovered from the
workflow (any rule that declares the portable `gpu` resource), never listed here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
import yte

ROOT = Path(__file__).resolve().parents[2]
SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
# What the site block of the slurm profile must say (the paper's cluster: L40S GPUs).
CPU_PARTITION, GPU_PARTITION, GPU_MODEL = "cpu", "gpu", "l40s"
# SIGTERM to the job steps (no `B:`, which would signal only the batch shell), 10 min ahead
TIME_LIMIT_SIGNAL = "--signal=TERM@600"
JOB_HEADER = re.compile(r"^(local)?(?:rule|checkpoint) (\w+):$")


@dataclass
class Job:
    rule: str
    local: bool
    resources: dict[str, str] = field(default_factory=dict)
    threads: int = 1


def parse_jobs(text: str) -> list[Job]:
    """The job blocks Snakemake prints (`rule X:` / `localrule X:` plus indented details)."""
    jobs: list[Job] = []
    for line in text.splitlines():
        header = JOB_HEADER.match(line)
        if header:
            jobs.append(Job(rule=header.group(2), local=header.group(1) is not None))
        elif jobs and line.startswith("    resources: "):
            pairs = line.removeprefix("    resources: ").split(", ")
            jobs[-1].resources = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        elif jobs and line.startswith("    threads: "):
            jobs[-1].threads = int(line.split(":", 1)[1])
    return jobs


def run_snakemake(*args: str, cwd: Path = ROOT, timeout: int = 900) -> str:
    """Run snakemake from ``cwd``; return stdout+stderr, failing the test on a non-zero exit."""
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"snakemake {' '.join(args)} exited {result.returncode}:\n{output[-4000:]}"
    )
    return output


# Rules of the parsed workflow: localrules (Snakemake has no public accessor; a dry run hides
# the local/remote split on purpose, see snakemake/jobs.py `log_info`) and declared resources.
_INTROSPECT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    workflow_api = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(configfiles=[Path(sys.argv[1])]),
        snakefile=Path("workflow/Snakefile"),
    )
    workflow = workflow_api._workflow
    value = lambda resource: getattr(resource, "value", resource)
    print("RULES=" + json.dumps({
        rule.name: {
            "local": rule.name in workflow._localrules or rule.norun,
            "gpu": value(rule.resources.get("gpu")),
            "threads": value(rule.resources.get("_cores")),
        }
        for rule in workflow.rules
    }))
"""


def workflow_rules(configfile: str = "config/paper.yaml") -> dict[str, dict]:
    result = subprocess.run(
        [sys.executable, "-c", _INTROSPECT, configfile],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RULES=")]
    assert result.returncode == 0 and lines, (
        f"could not parse the workflow:\n{result.stderr[-3000:]}"
    )
    return json.loads(lines[-1].removeprefix("RULES="))


def profile_gpu_rules(text: str | None = None) -> dict[str, dict]:
    """The rules the slurm profile sends to the GPU partition, with their resources."""
    profile = yte.process_yaml(text or SLURM_PROFILE.read_text(), require_use_yte=True)
    return {
        rule: resources
        for rule, resources in profile.get("set-resources", {}).items()
        if "gpu_model" in resources or "gres" in resources
    }


@pytest.fixture(scope="module")
def rules() -> dict[str, dict]:
    return workflow_rules()


@pytest.fixture(scope="module")
def slurm_dry_run() -> tuple[str, list[Job]]:
    output = run_snakemake("--profile", "slurm", "-n", "paper")
    return output, parse_jobs(output)


def test_profile_slurm_resolves_from_the_repository_root():
    link = ROOT / "slurm"
    assert link.is_symlink(), (
        "./slurm must be a symlink: Snakemake looks up --profile slurm as ./slurm"
    )
    assert link.resolve() == SLURM_PROFILE.parent.resolve()
    assert (link / "config.yaml").is_file()


def test_merged_settings_under_the_slurm_profile(monkeypatch):
    from snakemake.cli import parse_args

    monkeypatch.chdir(ROOT)
    _, args = parse_args(["--profile", "slurm", "-n", "paper"])
    assert args.executor == "slurm"
    assert args.keep_going is True, "under slurm one failed job must not stop the others"
    assert args.slurm_requeue is True
    assert int(args.jobs) == 100
    assert int(args.retries) >= 1
    assert args.rerun_incomplete is True
    assert int(args.latency_wait) >= 30
    assert [str(path) for path in args.configfile] == ["config/paper.yaml"]
    # values are lazily evaluated Resources here; the dry runs below check what jobs receive
    assert {"slurm_partition", "runtime", "mem_mb"} <= set(args.default_resources)
    for rule in ("elastic_net_chunk", "dropout_chunk", "igr_chunk", "igr_long_horizon"):
        assert {"slurm_partition", "gpu_model"} <= set(args.set_resources.get(rule, {})), rule
    # The workflow profile is merged in and wins. A fixed small `cores` there would cap the
    # threads (so the cpus-per-task) of every SLURM job; `all` caps at the submit host's cores.
    default_profile = yaml.safe_load((ROOT / "workflow/profiles/default/config.yaml").read_text())
    assert default_profile.get("cores", "all") == "all", (
        f"workflow/profiles/default sets cores: {default_profile['cores']}, which also caps the "
        "threads of every SLURM job; use `all` and pass --cores N on the command line"
    )
    assert "jobs" not in default_profile, "a `jobs` in the workflow profile caps SLURM jobs too"
    assert "keep-going" not in default_profile, (
        "a `keep-going` in the workflow profile overrides the slurm profile's keep-going: true"
    )


def test_a_local_run_stops_at_the_first_failure(monkeypatch):
    from snakemake.cli import parse_args

    monkeypatch.chdir(ROOT)
    _, args = parse_args(["-n", "paper"])
    assert args.keep_going is False


def test_training_chunks_get_the_time_limit_signal(rules):
    """The resumable jobs (the GPU chunk rules) get SIGTERM ahead of the limit; nothing else
    does (a job that cannot resume would only lose its last minutes)."""
    resources = profile_gpu_rules()
    for name, rule in rules.items():
        extra = resources.get(name, {}).get("slurm_extra", "")
        if rule["gpu"] and name.endswith("_chunk"):
            assert extra == TIME_LIMIT_SIGNAL, (name, extra)
        else:
            assert "--signal" not in extra, (name, extra)


def test_the_gres_alternative_replaces_the_gpus_request():
    text = SLURM_PROFILE.read_text()
    lines = ("\n    gpu_model: ?GPU_MODEL\n", "\n    # gpu: 0\n", "\n    # gres: ")
    assert all(text.count(line) == 1 for line in lines), "the GRES alternative is not one block"
    text = text.replace(lines[0], "\n").replace(lines[1], "\n    gpu: 0\n")
    text = text.replace(lines[2], "\n    gres: ")
    for rule, resources in profile_gpu_rules(text).items():
        assert resources["gres"] == f"gpu:{GPU_MODEL}:1" and resources["gpu"] == 0, rule
        assert "gpu_model" not in resources, rule


def test_slurm_profile_site_block_sets_the_account():
    text = SLURM_PROFILE.read_text()
    assert text.count("\n  ACCOUNT: null") == 1, "the site block must hold one `ACCOUNT: null` line"
    profile = yte.process_yaml(text.replace("ACCOUNT: null", "ACCOUNT: lab_account"))
    assert profile["default-resources"]["slurm_account"] == "lab_account"
    assert "slurm_account" not in yte.process_yaml(text)["default-resources"]


def test_default_profile_dry_run_of_paper():
    output = run_snakemake("-n", "paper")
    assert "Using workflow specific profile workflow/profiles/default" in output
    jobs = parse_jobs(output)
    assert "paper" in {job.rule for job in jobs}
    assert not [job.rule for job in jobs if "slurm_partition" in job.resources], (
        "a plain local run must not carry SLURM resources"
    )


def test_paper_pulls_every_plot_rule(rules, slurm_dry_run):
    _, jobs = slurm_dry_run
    planned = {job.rule for job in jobs}
    plots = {name for name in rules if name.startswith("plot_")}
    assert plots, "the workflow has no plot_* rules"
    assert plots <= planned, f"plot rules not reached from `paper`: {sorted(plots - planned)}"


def test_plot_aggregate_and_download_rules_are_local(rules):
    prefixes = ("plot_", "aggregate_", "download_")
    remote = [
        name for name, rule in rules.items() if name.startswith(prefixes) and not rule["local"]
    ]
    assert not remote, f"plot, aggregate and download rules must be `localrules:`: {remote}"


def test_every_gpu_rule_is_mapped_by_the_slurm_profile(rules):
    gpu_rules = {name for name, rule in rules.items() if rule["gpu"]}
    unmapped = sorted(gpu_rules - set(profile_gpu_rules()))
    assert not unmapped, (
        f"rules {unmapped} declare gpu but workflow/profiles/slurm/config.yaml does not send them "
        "to the GPU partition; add them to its set-resources"
    )
    local_gpu = sorted(name for name in gpu_rules if rules[name]["local"])
    assert not local_gpu, f"GPU rules must not be local rules: {local_gpu}"


def test_the_slurm_profile_maps_only_gpu_rules_of_the_workflow(rules):
    stale = sorted(set(profile_gpu_rules()) - {name for name, rule in rules.items() if rule["gpu"]})
    assert not stale, f"workflow/profiles/slurm/config.yaml maps {stale}: no such GPU rule"


def test_slurm_dry_run_sends_gpu_rules_to_one_l40s(rules, slurm_dry_run):
    output, jobs = slurm_dry_run
    assert "Using profiles slurm and workflow specific profile workflow/profiles/default" in output
    gpu_jobs = [job for job in jobs if job.resources.get("gpu", "0") not in ("0", "None")]
    if not gpu_jobs:
        pytest.skip("no GPU rule in the `paper` DAG yet: only the CPU/local split is checked")
    for job in gpu_jobs:
        assert job.resources.get("gpu") == "1", f"{job.rule}: gpu={job.resources.get('gpu')}"
        assert job.resources.get("slurm_partition") == GPU_PARTITION, (job.rule, job.resources)
        assert job.resources.get("gpu_model") == GPU_MODEL, (job.rule, job.resources)
        assert "gres" not in job.resources, job.rule
        extra = job.resources.get("slurm_extra", "")
        assert "--gres" not in extra and "--gpus" not in extra, (job.rule, extra)
        if job.rule.endswith("_chunk"):
            assert extra == TIME_LIMIT_SIGNAL, (job.rule, extra)


def test_slurm_dry_run_sends_other_rules_to_the_cpu_partition(rules, slurm_dry_run):
    _, jobs = slurm_dry_run
    remote = [job for job in jobs if not rules[job.rule]["local"] and not rules[job.rule]["gpu"]]
    assert remote, "the `paper` DAG has no remote CPU job"
    for job in remote:
        assert job.resources.get("slurm_partition") == CPU_PARTITION, (job.rule, job.resources)
        assert "gpu_model" not in job.resources, job.rule
        assert int(job.resources["mem_mb"]) > 0 and int(job.resources["runtime"]) > 0, job.rule
