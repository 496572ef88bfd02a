"""`snakemake --profile slurm` on a real single-node SLURM, checked from SLURM's own records.

tests/slurm/setup_local_slurm.sh starts the cluster (partitions cpu and gpu, two fake l40s
GPUs); the `cluster` fixture (conftest.py) runs every test twice: with slurmdbd accounting, and
with no accounting daemon. The profile is adapted to each as the profile's own comments tell a
user: an account with accounting; without it no account, `slurm-status-command: squeue`, and
the other commented site alternatives (the GPU as a GRES, job arrays for the chunk rules).

test_slurm_profile_on_the_workflow copies the repository to a temporary folder, runs the slurm
profile on the smoke preset, then reads SLURM's records (sacct, or scontrol without
accounting): every remote job of the run is there, GPU rules ran on the gpu partition with one
l40s, other rules on cpu, and plot rules never went through SLURM. The GPU rules and the
targets to run are discovered from the workflow.

test_signal_requeue_and_keep_going runs the repository's profiles (both, merged as Snakemake
merges them) on a small workflow whose chunk rule stands in for a resumable training chunk: the
time-limit signal reaches its Python process while the job step is alive, a requeued job
resumes, and one failed job does not stop the others (keep-going).
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
PROFILE = Path("workflow/profiles/slurm/config.yaml")
CPU_PARTITION, GPU_PARTITION, GPU_MODEL = "cpu", "gpu", "l40s"
RUN_LIMIT_S = 600  # one bounded snakemake run (SIGKILL after this); typical: 2-3 min idle
# local-test overrides of values that suit a real cluster
FAST = ["--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "10"]
JOB_HEADER = re.compile(r"^(local)?(?:rule|checkpoint) (\w+):$")


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
    gpus: str  # the GPU request as SLURM recorded it (ReqTRES, or TresPerNode/TresPerJob)
    state: str
    array_job: str = ""  # the array's job id for an array task


def rule_of(job_id: str, comment: str) -> str:
    # the slurm plugin comments each job `rule_<name>` or `rule_<name>_wildcards_<values>`
    match = re.fullmatch(r"rule_(\w+?)(?:_wildcards_.*)?", comment)
    assert match, f"SLURM job {job_id} has no rule comment: {comment!r}"
    return match.group(1)


def scontrol_records(workdir: Path) -> list[Record]:
    """slurmctld's records of the jobs submitted from ``workdir`` (kept MinJobAge=600 s)."""
    out = subprocess.run(
        ["scontrol", "-o", "show", "job"], capture_output=True, text=True, check=True
    ).stdout
    records = []
    for line in out.splitlines():
        fields = dict(token.split("=", 1) for token in line.split() if "=" in token)
        if Path(fields.get("WorkDir", "/")).resolve() != workdir.resolve():
            continue
        per_node, per_job = fields.get("TresPerNode", ""), fields.get("TresPerJob", "")
        gpus = f"TresPerNode={per_node} TresPerJob={per_job}"
        records.append(
            Record(
                fields["JobId"],
                rule_of(fields["JobId"], fields.get("Comment", "")),
                fields["Partition"],
                gpus,
                fields["JobState"],
                fields.get("ArrayJobId", ""),
            )
        )
    return records


def slurm_records(site, workdir: Path, since: str) -> list[Record]:
    """SLURM's records of the jobs of ``workdir``: accounting where there is some."""
    return sacct_records(workdir, since) if site.has_accounting else scontrol_records(workdir)


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
        array_job = job_id.split("_")[0] if "_" in job_id else ""
        records.append(
            Record(job_id, rule_of(job_id, comment), partition, req_tres, state, array_job)
        )
    return records


def wait_for_records(site, workdir: Path, since: str, expected: int) -> list[Record]:
    """Accounting reaches slurmdbd a moment after a job ends: poll briefly."""
    records: list[Record] = []
    for _ in range(30):
        records = slurm_records(site, workdir, since)
        if len(records) >= expected and all(r.state == "COMPLETED" for r in records):
            break
        time.sleep(1)
    return records


def cancel_jobs(workdir: Path) -> None:
    """Cancel what a failed run left queued (by workdir: no record needs to be complete)."""
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i|%Z"], capture_output=True, text=True, check=False
    ).stdout
    ids = [
        job_id
        for job_id, _, job_workdir in (line.partition("|") for line in out.splitlines())
        if Path(job_workdir).resolve() == workdir.resolve()
    ]
    if ids:
        subprocess.run(["scancel", *ids], check=False)


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


def set_site(repo: Path, site) -> None:
    profile = repo / PROFILE
    profile.write_text(site.adapt(profile.read_text()))


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


def expected_gpu_request(site) -> str:
    """How SLURM records one GPU of GPU_MODEL: --gpus in ReqTRES, the GRES alternative per node."""
    if site.has_accounting:
        return f"gres/gpu:{GPU_MODEL}=1"
    return f"TresPerNode=gres:gpu:{GPU_MODEL}:1 TresPerJob="


def run_and_check(
    site, repo: Path, targets: list[str], gpu_rules: set[str], configfile: str
) -> str:
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
        cancel_jobs(repo)
        snakemake(repo, "--unlock", "--configfile", configfile, limit=60)
    log = checked(result)
    jobs = parse_jobs(log)
    remote = {rule for rule, local, _ in jobs if not local}
    local = {rule for rule, local, _ in jobs if local}
    n_remote = sum(1 for _, is_local, _ in jobs if not is_local)
    assert remote, "nothing went through SLURM"

    records = wait_for_records(site, repo, since, n_remote)
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
            assert expected_gpu_request(site) in record.gpus, record
        else:
            assert record.partition == CPU_PARTITION, record
            assert "gpu" not in record.gpus, record
    missing = gpu_rules - in_slurm
    assert not missing, f"GPU rules {sorted(missing)} never reached SLURM"
    if not site.has_accounting:  # the job-array alternative is on: chunk rules went as arrays
        arrays = {r.rule for r in records if r.array_job}
        multi = {rule for rule in gpu_rules if sum(r.rule == rule for r in records) > 1}
        assert multi <= arrays, f"rules {sorted(multi - arrays)} ran several jobs, not an array"
    return log


def test_slurm_profile_on_the_workflow(cluster, tmp_path):
    repo = copy_repository(tmp_path / "repo")
    set_site(repo, cluster)
    targets, gpu_rules, note = choose_targets(repo)
    print(note)
    run_and_check(cluster, repo, targets, gpu_rules, "config/smoke.yaml")
    again = checked(snakemake(repo, *targets, "--configfile", "config/smoke.yaml", "-n"))
    assert "Nothing to be done" in again, f"targets {targets} are not complete:\n{again[-3000:]}"
    assert list((repo / "figures").glob("*.pdf")), "no figure PDF was written"


# ---- time-limit signal, requeue and keep-going, on a small workflow --------------------------

# A stand-in for a resumable training chunk: its state lives outside the declared output; on
# SIGTERM or SIGUSR1 it saves (taking a moment, as a real save does) and exits non-zero; run
# again, it resumes from the state. It notes its parent before and after the save: a parent
# that changed means the job step's main process had already died, and a site that tracks
# processes by cgroup would then have killed the save half-way.
FAKE_CHUNK = """
import os, signal, sys, time
from pathlib import Path

output, state, notes = (Path(arg) for arg in sys.argv[1:4])
state.parent.mkdir(parents=True, exist_ok=True)


def note(text):
    with notes.open("a") as handle:
        handle.write(text + "\\n")


def save_and_exit(signum, frame):
    parent = os.getppid()
    time.sleep(1)
    partial = state.with_suffix(".partial")
    partial.write_text("epoch 5")
    partial.replace(state)
    note(f"{signal.Signals(signum).name} parent {parent} -> {os.getppid()}")
    sys.exit(3)


signal.signal(signal.SIGTERM, save_and_exit)
signal.signal(signal.SIGUSR1, save_and_exit)
if state.exists():
    note("resumed from " + state.read_text())
    state.unlink()
    output.write_text("resumed\\n")
    sys.exit(0)
# the id scancel/scontrol address: an array task's own id is not unique to it
task = os.environ.get("SLURM_ARRAY_TASK_ID")
job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{task}" if task else os.environ["SLURM_JOB_ID"]
note("started as job " + job)
state.with_suffix(".ready").write_text(job)
time.sleep(600)
"""

# elastic_net_chunk: named as a training chunk rule, so the profile gives it its GPU and its
# --signal (its runtime exceeds the 10 minutes of warning, or the signal would come at once);
# `doomed` fails at once (locally), `after` can only start once the chunks are done.
MINI_SNAKEFILE = """
rule all:
    input:
        expand("out/chunk_{chunk}.txt", chunk=[0, 1]),
        "out/after.txt",
        "out/doomed.txt",


rule elastic_net_chunk:
    output:
        "out/chunk_{chunk}.txt",
    resources:
        gpu=1,
        runtime=30,
        mem_mb=200,
    shell:
        "exec python fake_chunk.py {output} state/{wildcards.chunk}.state notes_{wildcards.chunk}"


rule after:
    input:
        expand("out/chunk_{chunk}.txt", chunk=[0, 1]),
    output:
        "out/after.txt",
    resources:
        runtime=5,
        mem_mb=200,
    shell:
        "cat {input} > {output}"


rule doomed:
    output:
        "out/doomed.txt",
    localrule: True
    shell:
        "echo failing on purpose; exit 7"
"""


def mini_workflow(dest: Path, site) -> Path:
    """The small workflow, with the repository's two profiles as Snakemake finds them."""
    (dest / "workflow").mkdir(parents=True)
    (dest / "workflow" / "Snakefile").write_text(MINI_SNAKEFILE)
    shutil.copytree(ROOT / "workflow" / "profiles", dest / "workflow" / "profiles")
    set_site(dest, site)
    (dest / "slurm").symlink_to("workflow/profiles/slurm")
    (dest / "config").mkdir()
    (dest / "config" / "paper.yaml").write_text("{}\n")  # the profile's configfile
    (dest / "fake_chunk.py").write_text(FAKE_CHUNK)
    return dest


def wait_for_file(path: Path, run: subprocess.Popen, limit_s: int = 120) -> str:
    for _ in range(limit_s):
        if path.exists():
            return path.read_text()
        assert run.poll() is None, f"snakemake ended before {path.name} appeared"
        time.sleep(1)
    raise AssertionError(f"{path} did not appear within {limit_s} s")


def job_fields(job_id: str) -> dict[str, str]:
    """slurmctld's record of one job or array task (``<array>_<task>``)."""
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        fields = dict(token.split("=", 1) for token in line.split() if "=" in token)
        task = f"{fields.get('ArrayJobId')}_{fields.get('ArrayTaskId')}"
        if job_id in (fields["JobId"], task):
            return fields
    raise AssertionError(f"scontrol knows no job {job_id}:\n{out}")


def requeue(job_id: str) -> None:
    """``scontrol requeue``, then let the job start again at once: SLURM holds a requeued job
    for two minutes (Reason=BeginTime) once it is back to PENDING."""
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    for _ in range(60):
        if job_fields(job_id)["JobState"] == "PENDING":
            break
        time.sleep(0.5)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)


def test_signal_requeue_and_keep_going(cluster, tmp_path):
    if cluster.has_accounting:
        pytest.skip(
            "run once, on the cluster without accounting (squeue status, GRES, job arrays, no "
            "account): the signal and requeue settings are the same in both modes"
        )
    work = mini_workflow(tmp_path / "mini", cluster)
    log_path = tmp_path / "snakemake.log"
    with log_path.open("w") as log:
        run = subprocess.Popen(
            ["timeout", "-s", "KILL", str(RUN_LIMIT_S), sys.executable, "-m", "snakemake"]
            + ["--profile", "slurm", "--verbose", *FAST],
            cwd=work,
            env=tool_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            signalled = wait_for_file(work / "state" / "0.ready", run)
            requeued = wait_for_file(work / "state" / "1.ready", run)
            # what SLURM does at `--signal=TERM@600` (no B:): SIGTERM to the job steps only
            subprocess.run(["scancel", "--signal=TERM", signalled], check=True)
            requeue(requeued)
            code = run.wait(timeout=RUN_LIMIT_S + 10)
        finally:
            if run.poll() is None:
                run.kill()
    output = log_path.read_text()
    assert code == 1, f"snakemake exited {code}, expected 1 (doomed fails):\n{output[-5000:]}"
    assert "Error in rule doomed" in output, output[-5000:]

    sbatch = [line for line in output.splitlines() if "sbatch call:" in line]
    chunk_calls = [line for line in sbatch if "rule_elastic_net_chunk" in line]
    assert chunk_calls and all("--signal=TERM@600" in line for line in chunk_calls), sbatch
    assert all("--requeue" in line for line in sbatch), sbatch
    assert not [line for line in sbatch if "rule_after" in line and "--signal" in line], sbatch

    notes_0 = (work / "notes_0").read_text().splitlines()
    assert notes_0[0] == f"started as job {signalled}", notes_0
    signal_name, _, parents = notes_0[1].split(" ", 2)
    before, after = parents.split(" -> ")
    assert signal_name == "SIGTERM", notes_0
    assert before == after, f"the job step's main process died during the save: {notes_0}"
    assert notes_0[2:] == ["resumed from epoch 5"], notes_0
    assert job_fields(signalled)["JobState"] == "FAILED"  # then Snakemake's retry resumed it

    notes_1 = (work / "notes_1").read_text().splitlines()
    assert notes_1[0] == f"started as job {requeued}" and notes_1[-1] == "resumed from epoch 5"
    fields = job_fields(requeued)
    assert (fields["Requeue"], fields["Restarts"], fields["JobState"]) == ("1", "1", "COMPLETED")

    assert (work / "out" / "chunk_0.txt").read_text() == "resumed\n"
    assert (work / "out" / "chunk_1.txt").read_text() == "resumed\n"
    # `after` became ready only after `doomed` had failed: it ran because of keep-going
    assert (work / "out" / "after.txt").read_text() == "resumed\nresumed\n"
