"""The `gradmatch` command: discovered subcommands, help, and errors that name the problem."""

from __future__ import annotations

import argparse
import json
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
    assert result.returncode == 1
    assert f"unknown config key '{analysis.replace('-', '_')}.no_such_setting'" in result.stderr
    assert not (ROOT / "x.parquet").exists()


def _ridge_chunks(tmp_path: Path) -> list[str]:
    """Each ridge_stationarity table cut into two chunk files, in reverse order."""
    from gradmatch import io
    from gradmatch.experiments import ridge_stationarity

    tables = ridge_stationarity.run(ridge_stationarity.Settings())
    flags = []
    for name, frame in tables.items():
        for part, rows in enumerate((frame.iloc[len(frame) // 2 :], frame.iloc[: len(frame) // 2])):
            path = tmp_path / f"{name}_{part}.parquet"
            io.write_parquet(rows.reset_index(drop=True), path)
            flags += ["--input", f"{name}={path}"]
    return flags


def test_aggregate_concatenates_checks_and_sorts_by_the_declared_key(tmp_path):
    import pandas as pd

    from gradmatch.experiments import ridge_stationarity

    flags = _ridge_chunks(tmp_path)
    outs = [f"--out={name}={tmp_path / name}.parquet" for name in ridge_stationarity.TABLES]
    result = gradmatch("aggregate", "ridge_stationarity", *flags, *outs)
    assert result.returncode == 0, result.stderr
    for name, table in ridge_stationarity.TABLES.items():
        frame = pd.read_parquet(tmp_path / f"{name}.parquet")
        table.check(frame, name)
        assert frame.equals(frame.sort_values(list(table.key), kind="stable", ignore_index=True))


def test_aggregate_names_a_chunk_that_breaks_the_declaration(tmp_path):
    import pandas as pd

    from gradmatch import io

    flags = _ridge_chunks(tmp_path)
    broken = tmp_path / "curves_0.parquet"
    io.write_parquet(pd.read_parquet(broken).drop(columns="value"), broken)
    outs = [f"--out={name}={tmp_path / name}.parquet" for name in ("curves", "points", "arrows")]
    result = gradmatch("aggregate", "ridge_stationarity", *flags, *outs)
    assert result.returncode == 1
    assert f"{broken}: missing columns ['value']" in result.stderr


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

    from gradmatch import io
    from gradmatch.experiments import ridge_stationarity

    out = tmp_path / "generated" / "summary.parquet"
    source = tmp_path / "points.parquet"
    io.write_parquet(ridge_stationarity.run(ridge_stationarity.Settings())["points"], source)
    args = ["aggregate", "ridge_stationarity", f"--input=points={source}", f"--out=points={out}"]
    for name in ("curves", "arrows"):  # tables the slow writer never reaches
        args += [f"--input={name}={source}", f"--out={name}={tmp_path / name}.parquet"]
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITE, *args],
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


def _analysis_args(**values) -> argparse.Namespace:
    defaults = {"configfile": None, "settings": None, "globals": None}
    return argparse.Namespace(**{**defaults, **values})


def test_wandb_comes_from_gradmatch_wandb_unless_given_explicitly(tmp_path, monkeypatch):
    """The workflow exports the wandb block in $GRADMATCH_WANDB (not in the rule's params)."""
    monkeypatch.delenv("GRADMATCH_WANDB", raising=False)
    # unset: the job's $WANDB_MODE decides (gradmatch.tracking), else disabled
    assert cli._settings_from_args("igr", _analysis_args()).wandb.mode is None
    monkeypatch.setenv("GRADMATCH_WANDB", '{"mode": "offline", "project": "p", "entity": null}')
    settings = cli._settings_from_args("igr", _analysis_args(settings='{"epochs": 2}'))
    assert (settings.wandb.mode, settings.wandb.project, settings.epochs) == ("offline", "p", 2)
    assert "wandb" not in settings.record()  # tracking never reaches a table
    explicit = _analysis_args(globals='{"wandb": {"mode": "disabled"}}')
    assert cli._settings_from_args("igr", explicit).wandb.mode == "disabled"
    preset = tmp_path / "tracked.yaml"
    preset.write_text("wandb: {mode: online}\n")
    from_file = cli._settings_from_args("igr", _analysis_args(configfile=str(preset)))
    assert from_file.wandb.mode == "online"
    # an analysis without W&B tracking takes no wandb field at all
    assert not hasattr(cli._settings_from_args("ridge_stationarity", _analysis_args()), "wandb")


def test_a_bad_gradmatch_wandb_stops_the_job_naming_the_variable(tmp_path):
    env = {**os.environ, "GRADMATCH_WANDB": '{"mode": "cloud"}'}
    script = shutil.which("gradmatch", path=str(Path(sys.executable).parent))
    out = tmp_path / "runs.parquet"
    result = subprocess.run(
        [script, "igr", "--settings", "{}", "--chunk", "0", "--out", f"runs={out}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("gradmatch igr: error: $GRADMATCH_WANDB: key 'mode':")
    assert "(got 'cloud')" in result.stderr and not out.exists()


def test_download_mnist_rejects_a_mirror_that_is_not_a_url(tmp_path):
    settings = '{"mirrors": ["file:///srv/mnist/", "ftp://example.org/mnist/"]}'
    result = gradmatch("download-mnist", "--settings", settings, "--dest", str(tmp_path / "raw"))
    assert result.returncode == 1
    assert result.stderr.startswith("gradmatch download-mnist: error: config key 'mnist.mirrors.1'")
    assert "'ftp://example.org/mnist/'" in result.stderr and not (tmp_path / "raw").exists()


def test_download_mnist_reports_each_failing_mirror_then_lists_them(tmp_path):
    missing = (tmp_path / "nowhere").as_uri()
    empty = tmp_path / "empty"
    empty.mkdir()
    settings = json.dumps({"mirrors": [missing, empty.as_uri()]})
    result = gradmatch("download-mnist", "--settings", settings, "--dest", str(tmp_path / "raw"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "mirror 1/2 failed" in lines[0] and lines[0].endswith("trying the next mirror")
    assert "mirror 2/2 failed" in lines[1] and lines[1].endswith("no mirror left")
    assert lines[-1].startswith("gradmatch download-mnist: error: ")
    assert "no mirror served" in lines[-1] and "nowhere" in lines[-1] and "empty" in lines[-1]
