"""``gradmatch doctor [--profile slurm]``: check this machine (and the SLURM site) before a run.

Checks Python, torch (version, CUDA build), CUDA visibility and the GPU names, snakemake and the
slurm executor plugins against the versions gradmatch requires, and TeX for the report. With
``--profile`` it also checks the site block of that profile (``__variables__`` of its
``config.yaml``: ACCOUNT, CPU_PARTITION, GPU_PARTITION, GPU_MODEL) against what ``sinfo`` and
``sacctmgr`` say, and that the profile's status command works on this cluster. Every problem
says what to change: the key, the value given, and the values that exist. Exit status 1 when a
check fails; warnings (no GPU on a login node, no TeX) do not fail.
"""

from __future__ import annotations

import argparse
import getpass
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

OK, WARN, FAIL = "ok", "warn", "FAIL"
SITE_KEYS = ("ACCOUNT", "CPU_PARTITION", "GPU_PARTITION", "GPU_MODEL")
# what gradmatch runs: its own requirements decide the versions that are good enough
PACKAGES = (
    "snakemake",
    "snakemake-executor-plugin-slurm",
    "snakemake-executor-plugin-slurm-jobstep",
)
TEX_TOOLS = ("pdflatex", "latexmk")
COMMAND_TIMEOUT_S = 30
CUDA_INSTALL_HINT = (
    "pip install --force-reinstall torch==<version> --index-url "
    "https://download.pytorch.org/whl/cu<CUDA>, e.g. .../whl/cu128 (README: Running on SLURM)"
)


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, its status, what was found, what to do."""

    name: str
    status: str
    found: str
    fix: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        help="also check this Snakemake profile's site block against sinfo/sacctmgr: a name "
        "looked up as ./NAME or workflow/profiles/NAME (as `snakemake --profile`), or a folder",
    )
    parser.add_argument(
        "--require-gpu",
        action="store_true",
        help="fail unless torch sees a CUDA GPU (run it inside a GPU job, e.g. with srun)",
    )


def command(args: argparse.Namespace) -> int:
    checks = machine_checks(require_gpu=args.require_gpu)
    if args.profile:
        checks += site_checks(resolve_profile(args.profile))
    for check in checks:
        print(format_check(check))
    failed = [check for check in checks if check.status == FAIL]
    warned = [check for check in checks if check.status == WARN]
    print(
        f"gradmatch doctor: {len(failed)} failed, {len(warned)} warning(s), "
        f"{len(checks) - len(failed) - len(warned)} ok"
    )
    return 1 if failed else 0


def format_check(check: Check) -> str:
    line = f"[{check.status:>4}] {check.name}: {check.found}"
    return f"{line}\n       -> {check.fix}" if check.fix else line


# ---- this machine ---------------------------------------------------------------------------


def machine_checks(require_gpu: bool = False) -> list[Check]:
    return [
        python_check(),
        *torch_checks(require_gpu),
        *(package_check(name) for name in PACKAGES),
        tex_check(),
    ]


def _requirement_specifiers() -> dict[str, str]:
    """Package name -> version specifier, from gradmatch's installed metadata (pyproject)."""
    from packaging.requirements import Requirement

    specifiers = {}
    for line in importlib.metadata.requires("gradmatch") or []:
        requirement = Requirement(line)
        if requirement.marker is None:
            specifiers[requirement.name.lower()] = str(requirement.specifier)
    return specifiers


def python_check() -> Check:
    """Python against the Requires-Python of gradmatch and of the snakemake packages."""
    from packaging.specifiers import SpecifierSet

    version = ".".join(map(str, sys.version_info[:3]))
    needed = {}
    for distribution in ("gradmatch", *PACKAGES):
        try:
            spec = importlib.metadata.metadata(distribution)["Requires-Python"]
        except importlib.metadata.PackageNotFoundError:
            continue
        if spec:
            needed[distribution] = spec
    unmet = {name: spec for name, spec in needed.items() if version not in SpecifierSet(spec)}
    if unmet:
        wanted = ", ".join(f"{name} needs Python {spec}" for name, spec in unmet.items())
        return Check(
            "python",
            FAIL,
            f"{version} at {sys.executable}; {wanted}",
            "create the environment with a newer Python (python3.11 -m venv .venv, or "
            "`module load python/3.11` on a cluster) and reinstall",
        )
    return Check("python", OK, f"{version} at {sys.executable}")


def torch_checks(require_gpu: bool) -> list[Check]:
    try:
        import torch
    except ImportError as error:
        return [Check("torch", FAIL, f"cannot import torch ({error})", "pip install torch")]
    cuda_build = torch.version.cuda
    build = f"CUDA {cuda_build} build" if cuda_build else "CPU-only build"
    checks = [
        Check(
            "torch",
            OK if cuda_build else WARN,
            f"{torch.__version__} ({build})",
            "" if cuda_build else f"GPU jobs need a CUDA build: {CUDA_INSTALL_HINT}",
        )
    ]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = "CUDA_VISIBLE_DEVICES " + ("unset" if visible is None else f"= {visible!r}")
    if cuda_build and torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        checks.append(Check("cuda", OK, f"{len(names)} GPU(s): {', '.join(names)} ({where})"))
    else:
        reason = "torch is a CPU-only build" if not cuda_build else "torch sees no CUDA device"
        fix = (
            "run this inside a GPU job (srun -p <GPU_PARTITION> --gpus=1 gradmatch doctor "
            "--require-gpu); a login node often has no GPU"
        )
        if not cuda_build:
            fix = "install the CUDA build of torch (the torch line above says how)"
        checks.append(Check("cuda", FAIL if require_gpu else WARN, f"{reason} ({where})", fix))
    return checks


def package_check(name: str) -> Check:
    from packaging.specifiers import SpecifierSet

    wanted = _requirement_specifiers().get(name, "")
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return Check(name, FAIL, "not installed", f'pip install "{name}{wanted}"')
    if wanted and version not in SpecifierSet(wanted):
        return Check(
            name, FAIL, f"{version}, gradmatch needs {wanted}", f'pip install "{name}{wanted}"'
        )
    return Check(name, OK, version + (f" (needs {wanted})" if wanted else ""))


def tex_check() -> Check:
    missing = [tool for tool in TEX_TOOLS if shutil.which(tool) is None]
    if missing:
        return Check(
            "tex",
            WARN,
            f"{', '.join(missing)} not found: the `paper` target's report (paper/main.pdf) "
            "cannot be built here; `snakemake figures` can",
            "apt-get install texlive-latex-base texlive-latex-recommended texlive-latex-extra "
            "latexmk (or `module load texlive`)",
        )
    return Check("tex", OK, ", ".join(shutil.which(tool) for tool in TEX_TOOLS))


# ---- the SLURM site -------------------------------------------------------------------------


def resolve_profile(name: str) -> Path:
    """The profile's config.yaml: ``name`` as a folder, else ./name, else workflow/profiles/name."""
    tried = [Path(name), Path("workflow") / "profiles" / name]
    for folder in tried:
        if (folder / "config.yaml").is_file():
            return folder / "config.yaml"
    raise FileNotFoundError(
        f"no profile {name!r}: looked for {', '.join(str(f / 'config.yaml') for f in tried)}; "
        "run from the repository root or give the profile's folder"
    )


def read_site(profile: Path) -> tuple[dict, dict]:
    """(site variables, profile keys) of a profile; a missing site key is an error naming it."""
    try:
        loaded = yaml.safe_load(profile.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{profile}: not valid YAML ({error})") from error
    site = loaded.get("__variables__")
    if not isinstance(site, dict):
        raise ValueError(f"{profile}: no `__variables__:` site block")
    missing = [key for key in SITE_KEYS if key not in site]
    if missing:
        raise ValueError(f"{profile}: the site block `__variables__` lacks {missing}")
    return site, loaded


def run_tool(*argv: str) -> tuple[int, str]:
    """Run a SLURM client; (exit status, stdout or the error text). 127 when not installed."""
    if shutil.which(argv[0]) is None:
        return 127, f"{argv[0]} not found on PATH"
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return 124, f"`{' '.join(argv)}` did not answer within {COMMAND_TIMEOUT_S} s"
    if result.returncode != 0:
        return result.returncode, " ".join((result.stderr or result.stdout).split())
    return 0, result.stdout


def partition_gres(sinfo_output: str) -> dict[str, set[str]]:
    """Partition -> GRES entries of its nodes, from ``sinfo -h -o '%R|%G'``."""
    found: dict[str, set[str]] = {}
    for line in sinfo_output.splitlines():
        if "|" not in line:
            continue
        partition, gres = (part.strip() for part in line.split("|", 1))
        entries = found.setdefault(partition, set())
        # gpu:l40s:2(S:0-1),shard:8 -> gpu:l40s:2, shard:8; (null) when the nodes have none
        entries.update(
            re.sub(r"\(.*?\)", "", entry).strip()
            for entry in re.split(r",(?![^(]*\))", gres)
            if entry.strip() and entry.strip() != "(null)"
        )
    return found


def gpu_types(entries: set[str]) -> set[str]:
    """The GPU types named in GRES entries (gpu:<type>:<count>); untyped gpu:<count> gives none."""
    types = set()
    for entry in entries:
        parts = entry.split(":")
        if parts[0] == "gpu" and len(parts) >= 3:
            types.add(parts[1])
    return types


def site_checks(profile: Path) -> list[Check]:
    site, loaded = read_site(profile)
    where = f"in the site block of {profile}"
    code, sinfo = run_tool("sinfo", "-h", "-o", "%R|%G")
    if code != 0:
        return [
            Check(
                "slurm",
                FAIL,
                f"sinfo failed: {sinfo}",
                "run `gradmatch doctor --profile ...` on the cluster's login node",
            )
        ]
    gres = partition_gres(sinfo)
    checks = [
        partition_check(key, site[key], gres, where) for key in ("CPU_PARTITION", "GPU_PARTITION")
    ]
    checks.append(gpu_model_check(site["GPU_MODEL"], site["GPU_PARTITION"], gres, where))
    checks.append(account_check(site["ACCOUNT"], where))
    checks.append(status_command_check(loaded, profile))
    return checks


def partition_check(key: str, value, gres: dict[str, set[str]], where: str) -> Check:
    existing = ", ".join(sorted(gres)) or "none"
    if value in gres:
        return Check(key, OK, f"partition {value!r} exists")
    return Check(
        key,
        FAIL,
        f"{value!r} is not a partition of this cluster (partitions: {existing})",
        f"set {key} {where} to one of: {existing} (`sinfo -s` lists them)",
    )


def gpu_model_check(model, partition, gres: dict[str, set[str]], where: str) -> Check:
    if partition not in gres:
        return Check("GPU_MODEL", FAIL, f"cannot check {model!r}: no partition {partition!r}")
    entries = gres[partition]
    types = gpu_types(entries)
    listed = ", ".join(sorted(entries)) or "none"
    if not any(entry.split(":")[0] == "gpu" for entry in entries):
        return Check(
            "GPU_MODEL",
            FAIL,
            f"the nodes of partition {partition!r} have no gpu GRES (GRES: {listed})",
            f"set GPU_PARTITION {where} to the partition with GPUs (`sinfo -o '%P %G'`)",
        )
    if model is None:
        return Check("GPU_MODEL", OK, f"null: any GPU of {partition!r} (GRES: {listed})")
    if model in types:
        return Check("GPU_MODEL", OK, f"{model!r} is in the GRES of {partition!r} ({listed})")
    fix = (
        f"set GPU_MODEL {where} to one of: {', '.join(sorted(types))}"
        if types
        else f"the GPUs of {partition!r} have no type: set GPU_MODEL {where} to null"
    )
    return Check(
        "GPU_MODEL",
        FAIL,
        f"{model!r} is not a GPU type of partition {partition!r} (its GRES: {listed})",
        fix,
    )


def user_accounts(user: str) -> tuple[set[str] | None, str]:
    """The accounts ``user`` may submit under (None when sacctmgr cannot tell), and why not."""
    code, out = run_tool("sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", "format=account")
    if code != 0:
        return None, out
    return {line.strip() for line in out.splitlines() if line.strip()}, ""


def account_check(account, where: str) -> Check:
    user = getpass.getuser()
    if account is None:
        return Check(
            "ACCOUNT",
            OK,
            "null: the slurm plugin takes the account of your recent jobs (sacct), else submits "
            "without -A (your default account)",
        )
    accounts, error = user_accounts(user)
    if accounts is None:
        return Check(
            "ACCOUNT",
            FAIL,
            f"{account!r} cannot be checked: sacctmgr failed ({error})",
            f"on a cluster without accounting set ACCOUNT {where} to null "
            "(the slurm plugin validates a given account with sacctmgr too)",
        )
    if str(account).lower() in {name.lower() for name in accounts}:
        return Check("ACCOUNT", OK, f"{account!r} is an account of user {user}")
    existing = ", ".join(sorted(accounts)) or "none"
    return Check(
        "ACCOUNT",
        FAIL,
        f"{account!r} is not an account of user {user} (their accounts: {existing})",
        f"set ACCOUNT {where} to one of: {existing}, or to null for your default account",
    )


def min_job_age_s() -> int | None:
    code, out = run_tool("scontrol", "show", "config")
    match = re.search(r"^MinJobAge\s*=\s*(\d+)", out, flags=re.M) if code == 0 else None
    return int(match.group(1)) if match else None


def status_command_check(loaded: dict, profile: Path) -> Check:
    """The plugin polls job states with sacct unless the profile says squeue: sacct needs
    accounting, squeue needs finished jobs to stay listed (MinJobAge) past a status check."""
    command = loaded.get("slurm-status-command", "sacct")
    if command == "squeue":
        init_s = int(loaded.get("slurm-init-seconds-before-status-checks", 40))
        age = min_job_age_s()
        # the plugin trusts squeue when MinJobAge >= 3 x the first status-check delay
        if age is None or age < 3 * init_s:
            return Check(
                "status command",
                WARN,
                f"squeue, but MinJobAge is {age} s (< {3 * init_s} s): the plugin falls back "
                "to sacct",
                "ask the admins for MinJobAge >= 120, or use sacct where accounting works",
            )
        return Check("status command", OK, f"squeue (MinJobAge {age} s)")
    code, out = run_tool("sacct", "-n", "-X", "-S", "now-1minutes", "-o", "JobID")
    if code == 0:
        return Check("status command", OK, "sacct works (job accounting is on)")
    return Check(
        "status command",
        FAIL,
        f"the profile polls job states with sacct, which fails here: {out or code}",
        f"uncomment `slurm-status-command: squeue` in {profile} (clusters without accounting)",
    )
