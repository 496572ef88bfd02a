""".ci/run runs exactly the README's test command, and fails when that collects no test."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / ".ci" / "run"
MARKER = "<!-- test-command:"


def readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    assert text.count(MARKER) == 1, f"README.md needs exactly one `{MARKER} ... -->` line"
    block = re.search(re.escape(MARKER) + r".*?-->\s*```bash\n(.+?)\n```", text, flags=re.S)
    assert block, "the test-command marker must be followed by a ```bash block"
    lines = block.group(1).strip().splitlines()
    assert len(lines) == 1, f"the README's test command must be one line, got {lines}"
    return lines[0]


def test_ci_runs_the_readme_test_command_verbatim():
    command = readme_test_command()
    lines = [line.strip() for line in CI.read_text().splitlines()]
    assert command in lines, f".ci/run lacks the README's test command line: {command!r}"
    pytest_lines = [line for line in lines if "pytest" in line and not line.startswith("#")]
    assert pytest_lines == [command], f".ci/run runs pytest otherwise too: {pytest_lines}"


def test_ci_script_is_strict_bash():
    text = CI.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert CI.stat().st_mode & 0o111, ".ci/run must be executable"
    check = subprocess.run(["bash", "-n", str(CI)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "pip install torch==2.13.0" in text
    assert text.index("pip install torch==2.13.0") < text.index('pip install -e ".[dev]"')


def test_the_test_command_fails_when_no_test_is_collected(tmp_path):
    """Run the command as .ci/run does (set -e) in a tree whose tests folder is empty."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "tests").mkdir()
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    script = f"set -euo pipefail\n{readme_test_command()}\necho REACHED-THE-END\n"
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 5, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "no tests ran" in result.stdout
    assert "REACHED-THE-END" not in result.stdout
