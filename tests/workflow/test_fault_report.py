"""Fault injection on the report: pdflatex killed mid-build, then `snakemake paper` recovers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SMOKE = ("--configfile", "config/smoke.yaml")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("latexmk") is None or shutil.which("pdflatex") is None,
        reason="needs TeX (latexmk, pdflatex) to build paper/main.pdf",
    ),
    pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="finds pdflatex through /proc"),
]


def test_killed_pdflatex_then_snakemake_paper_gives_the_clean_pdf(
    workflow_copy, run_snakemake, kill_pdflatex
):
    workdir = workflow_copy("fault_report")
    (workdir / "paper").mkdir()
    shutil.copy(REPO / "paper" / "main.tex", workdir / "paper" / "main.tex")
    run_snakemake(workdir, "--cores", "2", "paper", *SMOKE)
    pdf = workdir / "paper" / "main.pdf"
    clean = pdf.read_bytes()
    assert clean[:4] == b"%PDF"

    # rebuild only the report and SIGKILL its pdflatex midway (what the OOM killer does)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    rebuild = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", "paper", "-R", "paper_pdf", *SMOKE],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    killed = kill_pdflatex(workdir / "paper", lambda: rebuild.poll() is None)
    log = rebuild.communicate(timeout=600)[0]
    assert killed, "pdflatex finished before it could be killed:\n" + log[-2000:]
    assert rebuild.returncode != 0, log[-3000:]
    assert "Error in rule paper_pdf" in log, log[-3000:]
    assert not pdf.exists(), "a failed report build left paper/main.pdf"

    log = run_snakemake(workdir, "--cores", "2", "paper", *SMOKE)
    assert "paper_pdf" in log
    assert pdf.read_bytes() == clean, "the recovered PDF differs from the clean build"
