"""Progress reporting: a tqdm bar on a terminal, few plain lines (no carriage return) in a log."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradmatch import progress
from gradmatch.progress import progress_bar

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    """Stands in for ``time.monotonic``: time moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(progress, "_clock", fake)
    return fake


def test_a_log_gets_a_line_per_interval_and_the_final_line(clock):
    log = io.StringIO()
    for _ in progress_bar(range(12), desc="demo: train", unit="epochs", stream=log, interval=5):
        clock.now += 1.0
    assert log.getvalue().splitlines() == [
        "demo: train 5/12 epochs (41%) 5.0 s",
        "demo: train 10/12 epochs (83%) 10.0 s",
        "demo: train 12/12 epochs (100%) 12.0 s",
    ]
    assert "\r" not in log.getvalue()


def test_a_fast_loop_writes_only_its_final_line(clock):
    log = io.StringIO()
    for _ in progress_bar(range(1000), desc="fast", stream=log):
        clock.now += 1e-4  # 0.1 s in all, under the default interval
    assert log.getvalue() == "fast 1000/1000 it (100%) 0.1 s\n"


def test_manual_updates_show_the_postfix_and_close_once(clock):
    log = io.StringIO()
    bar = progress_bar(desc="fit", total=200, unit="epochs", stream=log)
    for active in (3, 2):
        clock.now += 1.0
        bar.update(active=active)
    bar.close()
    bar.close()
    bar.update(active=1)  # after close: ignored
    assert log.getvalue() == "fit 2/200 epochs (1%) 2.0 s, active=2\n"


def test_a_loop_left_early_reports_where_it_stopped(clock):
    log = io.StringIO()
    with progress_bar(desc="stop", total=10, stream=log) as bar:
        for step in range(10):
            bar.update()
            if step == 3:
                break
    assert log.getvalue() == "stop 4/10 it (40%) 0.0 s\n"


def test_an_unsized_iterable_shows_the_count_only(clock):
    log = io.StringIO()
    assert list(progress_bar((i for i in range(3)), desc="gen", stream=log)) == [0, 1, 2]
    assert log.getvalue() == "gen 3 it 0.0 s\n"


def test_disabled_writes_nothing_in_a_log_or_on_a_terminal():
    for stream in (io.StringIO(), Terminal()):
        assert list(progress_bar(range(3), desc="off", enabled=False, stream=stream)) == [0, 1, 2]
        assert stream.getvalue() == ""


def test_a_terminal_gets_the_tqdm_bar():
    terminal = Terminal()
    bar = progress_bar(range(3), desc="tty", unit="epochs", leave=True, stream=terminal)
    assert bar.mode == "bar"
    assert list(bar) == [0, 1, 2]
    assert "tty: 100%" in terminal.getvalue() and "3/3" in terminal.getvalue()


def test_the_stream_defaults_to_the_current_stderr(capsys, clock):
    for _ in progress_bar(range(2), desc="default", unit="steps"):
        pass
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "default 2/2 steps (100%) 0.0 s\n"


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="interval must be >= 0 seconds, got -1"):
        progress_bar(desc="x", interval=-1)
    with pytest.raises(TypeError, match="progress_bar\\('x'\\): no iterable given"):
        iter(progress_bar(desc="x", stream=io.StringIO())).__next__()


def test_no_module_of_the_package_draws_tqdm_itself():
    direct = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "src/gradmatch").rglob("*.py")
        if path.name != "progress.py"
        and re.search(r"^\s*(from tqdm|import tqdm)", path.read_text(), re.MULTILINE)
    ]
    assert direct == [], "use gradmatch.progress.progress_bar instead of tqdm"


def test_the_trainer_reports_the_epochs_it_trained(capsys, clock):
    torch = pytest.importorskip("torch")
    from gradmatch.train import EarlyStopping, MLPSpec, train_batched

    X = torch.linspace(-1, 1, 16).reshape(8, 2)
    y = X.sum(dim=1)
    result = train_batched(
        MLPSpec(2, (3,), 1),
        seeds=[0, 1],
        X=X,
        y=y,
        epochs=50,
        batch_size=None,
        early_stopping=EarlyStopping(patience=1, min_delta=1e9),  # stops after 2 epochs
        device="cpu",
        desc="demo: train",
    )
    assert int(result.epochs_trained.max()) == 2
    line = capsys.readouterr().err
    assert line == "demo: train 2/50 epochs (4%) 0.0 s, active=0\n"


@pytest.mark.slow
def test_a_cli_run_logs_few_plain_lines(tmp_path):
    # igr-long-horizon on smoke runs 4 loops (~1 s of work); its log measured 200 bytes.
    # Before: 1,051 bytes of carriage-return frames for the same run.
    script = shutil.which("gradmatch", path=str(Path(sys.executable).parent))
    assert script, "the gradmatch console script is not installed (pip install -e .)"
    log = tmp_path / "job.log"
    with log.open("w") as stderr:
        result = subprocess.run(
            [script, "igr-long-horizon", "--configfile", "config/smoke.yaml"]
            + ["--out", str(tmp_path / "out.parquet")],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            timeout=300,
        )
    text = log.read_text()
    assert result.returncode == 0, text[-2000:]
    assert "\r" not in text
    lines = text.splitlines()
    assert 4 <= len(lines) <= 12, text
    assert len(text.encode()) <= 600, text
    finals = [line for line in lines if "(100%)" in line]
    assert len(finals) == 4 and all(line.startswith("igr_long_horizon: η=") for line in finals)
