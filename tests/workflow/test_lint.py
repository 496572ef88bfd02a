"""`snakemake --lint`, snakefmt and ruff on the repository, from its root."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# gradmatch deploys its software with pip (README), not per-rule conda envs or containers, so
# this one lint fires for every rule that runs a command. Every other lint is a finding.
NOT_APPLICABLE = {"Specify a conda environment or container for each rule."}


def lint_findings() -> list[tuple[str, str]]:
    """(where, title) of every lint; Snakemake prints them to stderr (`--lint json` too)."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = result.stdout + result.stderr
    findings, where = [], None
    for line in text.splitlines():
        if line.startswith("Lints for "):
            where = line.removeprefix("Lints for ").rstrip(":")
        elif (match := re.match(r"^    \* (.+):$", line)) and where:
            findings.append((where, match.group(1)))
    assert result.returncode == 0 or findings, f"snakemake --lint failed:\n{text[-3000:]}"
    return findings


def test_snakemake_lint_is_clean():
    findings = [(where, title) for where, title in lint_findings() if title not in NOT_APPLICABLE]
    assert not findings, "snakemake --lint findings:\n" + "\n".join(
        f"  {where}: {title}" for where, title in findings
    )


def test_snakefmt_leaves_the_workflow_unchanged():
    files = [ROOT / "workflow" / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    unformatted = []
    for path in files:
        result = subprocess.run(
            [sys.executable, "-m", "snakefmt", "--check", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            unformatted.append(str(path.relative_to(ROOT)))
    assert not unformatted, f"run `snakefmt {' '.join(unformatted)}`"


def test_ruff_check_and_format_are_clean():
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"ruff {' '.join(command)}:\n{result.stdout[-3000:]}"
