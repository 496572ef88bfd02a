"""Shared fixtures: run Snakemake on the smoke preset in a temporary copy of the workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SMOKE = ("--configfile", "config/smoke.yaml")


def _run_snakemake(workdir: Path, *args: str, timeout: int = 900) -> str:
    """Run `python -m snakemake ARGS` in ``workdir``; fail the test with the log tail on error."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    return log


@pytest.fixture(scope="session")
def run_snakemake() -> Callable[..., str]:
    """``run_snakemake(workdir, *args)`` runs Snakemake there and returns its output."""
    return _run_snakemake


@pytest.fixture(scope="session")
def workflow_copy(tmp_path_factory) -> Callable[[str], Path]:
    """``workflow_copy(name)``: a fresh folder holding copies of workflow/ and config/."""

    def make(name: str) -> Path:
        workdir = tmp_path_factory.mktemp(name)
        for folder in ("workflow", "config"):
            shutil.copytree(REPO / folder, workdir / folder)
        return workdir

    return make


@pytest.fixture(scope="session")
def smoke_workflow(workflow_copy, run_snakemake) -> Callable[..., Path]:
    """``smoke_workflow(name, *targets)``: build targets on the smoke preset in a fresh copy."""

    def build(name: str, *targets: str) -> Path:
        workdir = workflow_copy(name)
        run_snakemake(workdir, "--cores", "2", *targets, *SMOKE)
        return workdir

    return build


def _assert_figure(workdir: Path, stem: str) -> None:
    """figures/<stem>.pdf and .png exist, start with their format's magic and are not tiny."""
    for suffix, magic in ((".pdf", b"%PDF"), (".png", b"\x89PNG")):
        data = (workdir / "figures" / f"{stem}{suffix}").read_bytes()
        assert data.startswith(magic) and len(data) > 5000, f"{stem}{suffix}"


@pytest.fixture(scope="session")
def assert_figure() -> Callable[[Path, str], None]:
    """``assert_figure(workdir, stem)``: the figure's PDF and PNG were written and look real."""
    return _assert_figure


def _pdflatex_in(folder: Path) -> list[int]:
    """Pids of pdflatex processes whose working folder is ``folder`` (latexmk -cd runs there)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry / "comm").read_text().strip() == "pdflatex" and (
                Path(os.readlink(entry / "cwd")) == folder.resolve()
            ):
                pids.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return pids


def _kill_pdflatex(folder: Path, running: Callable[[], bool]) -> list[int]:
    """SIGKILL the first pdflatex that runs in ``folder`` while ``running()``; its pids."""
    import signal
    import time

    killed: list[int] = []
    while running() and not killed:
        for pid in _pdflatex_in(folder):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        time.sleep(0.005)  # polling interval only: nothing is measured
    return killed


@pytest.fixture(scope="session")
def kill_pdflatex() -> Callable[[Path, Callable[[], bool]], list[int]]:
    """``kill_pdflatex(folder, running)``: what the OOM killer does to a LaTeX build."""
    return _kill_pdflatex
