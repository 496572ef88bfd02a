"""`snakemake --profile slurm` on a real single-node SLURM, checked from SLURM's own records.

tests/slurm/setup_local_slurm.sh starts the cluster (partitions cpu and gpu, two fake l40s
GPUs, slurmdbd accounting). The test copies the repository to a temporary folder, runs the
slurm profile on the smoke preset, then reads `sacct`: every remote job of the run is there,
GPU rules ran on the gpu partition with one l40s, other rules on cpu, and plot rules never
went through SLURM. The GPU rules and the targets to run are discovered from the workflow.

Where SLURM is not installed or cannot start, the tests skip and say why; with
GRADMATCH_REQUIRE_SLURM=1 (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SETUP = Path(__file__).with_name("setup_local_slurm.sh")
PROFILE = Path("workflow/profiles/slurm/config.yaml")
ACCOUNT = "default"  # made by setup_local_slurm.sh
CPU_PARTITION, GPU_PARTITION, GPU_MODEL = "cpu", "gpu", "l40s"
RUN_LIMIT_S = 420  # one bounded snakemake run (SIGKILL after this); typical: 2-3 min
# local-test overrides of values that suit a real cluster
FAST = ["--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "10"]
JOB_HEADER = re.compile(r"^(local)?(?:rule|checkpoint) (\w+):$")


def unavailable(reason: str) -> None:
    if os.environ.get("GRADMATCH_REQUIRE_SLURM") == "1":
        pytest.fail(f"GRADMATCH_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


def tool_env() -> dict[str, str]:
    """The environment for snakemake and its SLURM jobs (sbatch --export=ALL passes it on)."""
    return os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def snakemake(workdir: Path, *args: str, limit: int = 300) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir``, killed with SIGKILL after ``limit`` seconds.

    SIGKILL, not SIGTERM: on SIGTERM Snakemake waits for running jobs. Output goes to a file,
    not a pipe, so that nothing a job leaves behind can hold the test up.
    """
    with tempfile.TemporaryFile("w+") as out:
        result = subprocess.run(
            ["timeout", "-s", "KILL", str(limit), sys.executable, "-m", "snakemake", *args],
            cwd=workdir,
            env=tool_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.seek(0)
        return subprocess.CompletedProcess(result.args, result.returncode, out.read(), "")


def checked(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (
        f"{' '.join(result.args[4:])} exited {result.returncode}"
        f"{' (killed at the time limit)' if result.returncode in (124, 137) else ''}:\n"
        f"{result.stdout[-5000:]}"
    )
    return result.stdout


def parse_jobs(text: str) -> list[tuple[str, bool, dict[str, str]]]:
    """(rule, printed as localrule, resources) for each job block Snakemake printed."""
    jobs: list[tuple[str, bool, dict[str, str]]] = []
    for line in text.splitlines():
        header = JOB_HEADER.match(line)
        if header:
            jobs.append((header.group(2), header.group(1) is not None, {}))
        elif jobs and line.startswith("    resources: "):
            pairs = line.removeprefix("    resources: ").split(", ")
            jobs[-1][2].update(pair.split("=", 1) for pair in pairs if "=" in pair)
    return jobs


def is_gpu_job(resources: dict[str, str]) -> bool:
    return resources.get("gpu", "0") not in ("0", "None") or "gres" in resources


@dataclass
class Record:
    job_id: str
    rule: str
    partition: str
    req_tres: str
    state: str


def sacct_records(workdir: Path, since: str) -> list[Record]:
    """SLURM's accounting records of the jobs submitted from ``workdir`` since ``since``."""
    fields = "JobID,Comment,Partition,ReqTRES,State,WorkDir"
    out = subprocess.run(
        ["sacct", "-X", "-P", "-n", "-a", "-S", since, "-o", fields],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    records = []
    for line in out.splitlines():
        job_id, comment, partition, req_tres, state, job_workdir = line.split("|")
        if Path(job_workdir).resolve() != workdir.resolve():
            continue
        # the slurm plugin comments each job `rule_<name>` or `rule_<name>_wildcards_<values>`
        match = re.fullmatch(r"rule_(\w+?)(?:_wildcards_.*)?", comment)
        assert match, f"SLURM job {job_id} has no rule comment: {comment!r}"
        records.append(Record(job_id, match.group(1), partition, req_tres, state))
    return records


def wait_for_records(workdir: Path, since: str, expected: int) -> list[Record]:
    """Accounting reaches slurmdbd a moment after a job ends: poll briefly."""
    records: list[Record] = []
    for _ in range(30):
        records = sacct_records(workdir, since)
        if len(records) >= expected and all(r.state == "COMPLETED" for r in records):
            break
        time.sleep(1)
    return records


def cancel_jobs(workdir: Path, since: str) -> None:
    ids = [r.job_id for r in sacct_records(workdir, since) if r.state in ("PENDING", "RUNNING")]
    if ids:
        subprocess.run(["scancel", *ids], check=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> None:
    if os.geteuid() != 0:
        unavailable("starting SLURM daemons needs root (tests/slurm/setup_local_slurm.sh)")
    missing = [
        tool
        for tool in ("slurmctld", "slurmd", "munged", "slurmdbd", "sacct", "sbatch")
        if not shutil.which(tool)
    ]
    if missing:
        unavailable(
            f"SLURM is not installed (missing {missing}); "
            "apt-get install -y slurm-wlm munge slurmdbd mariadb-server (.ci/run does)"
        )
    log = tmp_path_factory.mktemp("slurm") / "setup.log"
    with log.open("w") as out:
        try:
            code = subprocess.run(
                ["bash", str(SETUP)],
                env=os.environ | {"INSTALL": "0", "SLURM_TEST_ACCOUNT": ACCOUNT},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=240,
            ).returncode
        except subprocess.TimeoutExpired:
            code = "timeout after 240 s"
    if code != 0:
        unavailable(
            f"SLURM daemons did not start ({SETUP.name}: {code}):\n{log.read_text()[-3000:]}"
        )


def copy_repository(dest: Path) -> Path:
    """Tracked and untracked-but-not-ignored files, symlinks kept (./slurm)."""
    if (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\0")
    else:
        skip = {".venv", ".snakemake", "__pycache__", ".pytest_cache", "generated", "raw"}
        listed = [
            str(path.relative_to(ROOT))
            for path in ROOT.rglob("*")
            if not skip & set(path.relative_to(ROOT).parts)
        ]
    for name in filter(None, listed):
        source, target = ROOT / name, dest / name
        if source.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def set_site_account(repo: Path) -> None:
    """Fill the site block's account, as a user does: exercises the profile's account path."""
    profile = repo / PROFILE
    text = profile.read_text()
    assert "\n  ACCOUNT: null" in text, f"{PROFILE}: the site block lacks `ACCOUNT: null`"
    profile.write_text(text.replace("\n  ACCOUNT: null", f"\n  ACCOUNT: {ACCOUNT}", 1))


def rulegraph_ancestors(text: str, targets: list[str]) -> dict[str, set[str]]:
    """For each target rule, the rules it depends on (from `snakemake --rulegraph`)."""
    names = dict(re.findall(r"^\s*(\d+)\[label = \"(\w+)\"", text, flags=re.M))
    parents: dict[str, set[str]] = {}
    for source, dest in re.findall(r"^\s*(\d+) -> (\d+)", text, flags=re.M):
        parents.setdefault(names[dest], set()).add(names[source])
    ancestors = {}
    for target in targets:
        seen, stack = set(), [target]
        while stack:
            for parent in parents.get(stack.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        ancestors[target] = seen
    return ancestors


def choose_targets(repo: Path) -> tuple[list[str], set[str], str]:
    """Figure targets that together reach every GPU rule (fewest rules first), and a note."""
    listed = checked(snakemake(repo, "--list-target-rules", "--configfile", "config/smoke.yaml"))
    figure_targets = sorted(set(re.findall(r"^(fig(?!ures$)\w*)$", listed, flags=re.M)))
    assert figure_targets, "the workflow has no fig* target rules"
    dry = checked(
        snakemake(
            repo, *figure_targets, "--profile", "slurm", "--configfile", "config/smoke.yaml", "-n"
        )
    )
    gpu_rules = {rule for rule, _, resources in parse_jobs(dry) if is_gpu_job(resources)}
    graph = checked(
        snakemake(repo, *figure_targets, "--rulegraph", "--configfile", "config/smoke.yaml")
    )
    ancestors = rulegraph_ancestors(graph, figure_targets)
    chosen: list[str] = []
    uncovered = set(gpu_rules)
    while uncovered:
        best = max(
            figure_targets, key=lambda t: (len(ancestors[t] & uncovered), -len(ancestors[t]))
        )
        assert ancestors[best] & uncovered, f"GPU rules {uncovered} are reached by no fig* target"
        chosen.append(best)
        uncovered -= ancestors[best]
    if not chosen:
        with_plot = [t for t in figure_targets if any(r.startswith("plot_") for r in ancestors[t])]
        assert with_plot, "no fig* target has a plot_* rule"
        chosen = [min(with_plot, key=lambda t: len(ancestors[t]))]
        note = "no GPU rules in the workflow yet: checked the CPU/local split only"
    else:
        note = f"GPU rules {sorted(gpu_rules)} via targets {chosen}"
    return chosen, gpu_rules, note


def run_and_check(repo: Path, targets: list[str], gpu_rules: set[str], configfile: str) -> str:
    """Run the slurm profile on ``targets``; check SLURM's records against the run's own log."""
    since = (dt.datetime.now() - dt.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S")
    result = snakemake(
        repo,
        *targets,
        "--profile",
        "slurm",
        "--configfile",
        configfile,
        *FAST,
        limit=RUN_LIMIT_S,
    )
    if result.returncode != 0:
        cancel_jobs(repo, since)
        snakemake(repo, "--unlock", "--configfile", configfile, limit=60)
    log = checked(result)
    jobs = parse_jobs(log)
    remote = {rule for rule, local, _ in jobs if not local}
    local = {rule for rule, local, _ in jobs if local}
    n_remote = sum(1 for _, is_local, _ in jobs if not is_local)
    assert remote, "nothing went through SLURM"

    records = wait_for_records(repo, since, n_remote)
    in_slurm = {record.rule for record in records}
    assert len(records) == n_remote, f"{n_remote} remote jobs in the log, {len(records)} in sacct"
    assert in_slurm == remote, f"sacct rules {sorted(in_slurm)} != remote rules {sorted(remote)}"
    assert not in_slurm & local, f"local rules went through SLURM: {sorted(in_slurm & local)}"
    plots = {rule for rule in local if rule.startswith("plot_")}
    assert plots, f"no plot_* rule ran locally (local rules: {sorted(local)})"
    for record in records:
        assert record.state == "COMPLETED", record
        if record.rule in gpu_rules:
            assert record.partition == GPU_PARTITION, record
            assert f"gres/gpu:{GPU_MODEL}=1" in record.req_tres, record
        else:
            assert record.partition == CPU_PARTITION, record
            assert "gres/gpu" not in record.req_tres, record
    missing = gpu_rules - in_slurm
    assert not missing, f"GPU rules {sorted(missing)} never reached SLURM"
    return log


def test_slurm_profile_on_the_workflow(cluster, tmp_path):
    repo = copy_repository(tmp_path / "repo")
    set_site_account(repo)
    targets, gpu_rules, note = choose_targets(repo)
    print(note)
    run_and_check(repo, targets, gpu_rules, "config/smoke.yaml")
    again = checked(snakemake(repo, *targets, "--configfile", "config/smoke.yaml", "-n"))
    assert "Nothing to be done" in again, f"targets {targets} are not complete:\n{again[-3000:]}"
    assert list((repo / "figures").glob("*.pdf")), "no figure PDF was written"
