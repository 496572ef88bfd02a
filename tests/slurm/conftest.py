"""The local SLURM cluster, in each of the two kinds of site the slurm profile must serve.

`cluster` is parametrised: every test that uses it runs once with job accounting (slurmdbd:
sacct and sacctmgr work, the plugin polls with sacct, the profile names an account) and once
without (no accounting daemon: the profile polls with squeue and names no account). The
fixture reconfigures the cluster between the two (tests/slurm/setup_local_slurm.sh, a few
seconds) and puts it back to slurmdbd at the end, so the README's one test command covers both.

Where SLURM is not installed or cannot start, the tests skip and say why; with
GRADMATCH_REQUIRE_SLURM=1 (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SETUP = Path(__file__).with_name("setup_local_slurm.sh")
ACCOUNT = "default"  # made by setup_local_slurm.sh
SETUP_LIMIT_S = 240


NULL_ACCOUNT = "\n  ACCOUNT: null\n"
# The slurm profile's commented site alternatives for a cluster without accounting,
# uncommented as a user does: (line, replacement).
NO_ACCOUNTING_EDITS = (
    ("\n# slurm-status-command: squeue\n", "\nslurm-status-command: squeue\n"),
    ("\n# slurm-array-jobs: ", "\nslurm-array-jobs: "),
    ("\n    gpu_model: ?GPU_MODEL\n", "\n"),
    ("\n    # gpu: 0\n", "\n    gpu: 0\n"),
    ("\n    # gres: ", "\n    gres: "),
)


@dataclass(frozen=True)
class Site:
    """One accounting mode of the local cluster, and how a user adapts the profile to it."""

    accounting: str  # "slurmdbd" or "none" (setup_local_slurm.sh ACCOUNTING=...)

    @property
    def has_accounting(self) -> bool:
        return self.accounting == "slurmdbd"

    def adapt(self, profile_text: str) -> str:
        """The slurm profile's text adapted to this site by the edits its comments describe:
        with accounting, the account; without, squeue status and the GRES and job-array
        alternatives (ACCOUNT stays null)."""
        assert profile_text.count(NULL_ACCOUNT) == 1, "the site block lacks `ACCOUNT: null`"
        if self.has_accounting:
            return profile_text.replace(NULL_ACCOUNT, f"\n  ACCOUNT: {ACCOUNT}\n")
        for line, replacement in NO_ACCOUNTING_EDITS:
            assert profile_text.count(line) == 1, f"no single alternative {line.strip()!r}"
            profile_text = profile_text.replace(line, replacement)
        return profile_text


def unavailable(reason: str) -> None:
    if os.environ.get("GRADMATCH_REQUIRE_SLURM") == "1":
        pytest.fail(f"GRADMATCH_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


def start_cluster(accounting: str, log: Path) -> int | str:
    """Run the setup script in ``accounting`` mode; its exit status (or why it never ended)."""
    with log.open("w") as out:
        try:
            return subprocess.run(
                ["bash", str(SETUP)],
                env=os.environ
                | {"INSTALL": "0", "SLURM_TEST_ACCOUNT": ACCOUNT, "ACCOUNTING": accounting},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=SETUP_LIMIT_S,
            ).returncode
        except subprocess.TimeoutExpired:
            return f"timeout after {SETUP_LIMIT_S} s"


@pytest.fixture(scope="session", params=["slurmdbd", "none"], ids=["slurmdbd", "no-accounting"])
def cluster(request, tmp_path_factory) -> Site:
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
    log = tmp_path_factory.mktemp(f"slurm-{request.param}") / "setup.log"
    code = start_cluster(request.param, log)
    if code != 0:
        unavailable(
            f"SLURM daemons did not start ({SETUP.name} ACCOUNTING={request.param}: {code}):\n"
            f"{log.read_text()[-3000:]}"
        )
    yield Site(request.param)
    if request.param != "slurmdbd":  # leave the cluster as .ci/run made it
        restore = log.with_name("restore.log")
        code = start_cluster("slurmdbd", restore)
        assert code == 0, f"could not restore slurmdbd mode: {restore.read_text()[-3000:]}"
