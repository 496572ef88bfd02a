"""The `gradmatch` command: discovered subcommands, help, and errors that name the problem."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradmatch import cli

ROOT = Path(__file__).resolve().parents[1]


def gradmatch(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The installed console script, as a rule runs it."""
    script = shutil.which("gradmatch", path=str(Path(sys.executable).parent))
    assert script, "the gradmatch console script is not installed (pip install -e .)"
    return subprocess.run([script, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_help_lists_every_discovered_subcommand():
    result = gradmatch("--help")
    assert result.returncode == 0, result.stderr
    expected = set(cli.analyses()) | set(cli.figures()) | set(cli.TOOLS)
    assert {"aggregate", "check-config"} <= expected
    for name in expected:
        assert f"    {name}" in result.stdout, f"`gradmatch --help` does not list {name}"


def test_every_experiment_and_figure_module_becomes_a_subcommand():
    experiments = {
        path.stem.replace("_", "-")
        for path in (ROOT / "src/gradmatch/experiments").glob("*.py")
        if not path.stem.startswith("_")
    }
    figures = {
        "plot-" + path.stem.replace("_", "-")
        for path in (ROOT / "src/gradmatch/plots").glob("fig*.py")
    }
    assert set(cli.analyses()) == experiments
    assert set(cli.figures()) == figures


def test_every_subcommand_has_a_one_line_help():
    for name, (_, summary) in {**cli.analyses(), **cli.figures(), **cli.TOOLS}.items():
        assert summary and "\n" not in summary, f"gradmatch {name}: module docstring line missing"


def test_no_subcommand_prints_help_and_fails():
    result = gradmatch()
    assert result.returncode == 2
    assert "subcommands" in result.stdout


def test_check_config_accepts_the_presets_and_names_a_bad_key(tmp_path):
    for preset in ("config.yaml", "smoke.yaml", "paper.yaml"):
        result = gradmatch("check-config", f"config/{preset}")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"config/{preset}: valid"
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config/smoke.yaml").read_text() + "\nepochz: 3\n")
    result = gradmatch("check-config", str(bad))
    assert result.returncode == 1
    assert "unknown config key(s) ['epochz']" in result.stderr
    assert "gradmatch check-config: error:" in result.stderr


def test_bad_arguments_are_named():
    analysis = sorted(cli.analyses())[0]
    result = gradmatch(analysis, "--settings", "{not json", "--out", "x.parquet")
    assert result.returncode != 0 and "--settings is not valid JSON" in result.stderr
    result = gradmatch(analysis, "--settings", "[1, 2]", "--out", "x.parquet")
    assert result.returncode != 0 and "--settings must be a JSON object" in result.stderr
    result = gradmatch(analysis, "--settings", '{"no_such_setting": 1}', "--out", "x.parquet")
    assert result.returncode == 1 and "unknown setting(s) ['no_such_setting']" in result.stderr
    assert not (ROOT / "x.parquet").exists()


def test_aggregate_writes_one_summary(tmp_path):
    import pandas as pd

    from gradmatch import io

    for chunk in (1, 0):
        io.write_parquet(
            pd.DataFrame({"chunk": [chunk, chunk], "x": [0.5, 1.5]}), tmp_path / f"{chunk}.parquet"
        )
    result = gradmatch(
        "aggregate", str(tmp_path / "1.parquet"), str(tmp_path / "0.parquet"),
        "--out", str(tmp_path / "summary.parquet"), "--sort-by", "chunk",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert list(pd.read_parquet(tmp_path / "summary.parquet")["chunk"]) == [0, 0, 1, 1]


# A gradmatch process killed while it writes its output must leave nothing that looks finished.
_SLOW_WRITE = """
import sys, time
import pandas as pd
from gradmatch import cli

def slow_to_parquet(self, path, *args, **kwargs):
    with open(path, "wb") as handle:
        handle.write(b"PAR1" + b"x" * 4096)  # the first part of a parquet file
        handle.flush()
        print("WRITING", flush=True)
        time.sleep(60)  # killed here

pd.DataFrame.to_parquet = slow_to_parquet
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_killed_gradmatch_leaves_no_finished_looking_output(tmp_path):
    import pandas as pd

    from gradmatch import io

    source, out = tmp_path / "chunk.parquet", tmp_path / "generated" / "summary.parquet"
    io.write_parquet(pd.DataFrame({"x": [1.0, 2.0]}), source)
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITE, "aggregate", str(source), "--out", str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout.readline().strip() == "WRITING"
        deadline = time.monotonic() + 10
        while not list(out.parent.glob(".summary.parquet.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert not out.exists(), "a killed write left a file under the final name"
    leftovers = [path.name for path in out.parent.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".summary.parquet.")
    assert leftovers[0].endswith(".tmp"), leftovers
