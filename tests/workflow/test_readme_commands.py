"""Every command the README shows is executed here, so the README cannot drift from the code.

Commands come from every fenced ``bash`` block (one per line, split at ``&&``, comments and
``export`` lines honoured) and from inline code spans that start with ``snakemake``,
``gradmatch`` or ``pip install``. Each is handled by the first rule that claims it:

- ``snakemake ...``: run as typed plus ``-n`` (a dry run; the real runs are the workflow tests);
- ``gradmatch ...``: run for real where that takes seconds, otherwise its argument list must
  parse (``--calibrate``, SLURM and GPU checks), and a bare ``gradmatch <tool>`` must name a tool;
- ``pip install ...``: ``pip install --dry-run --no-index --no-build-isolation`` against the
  installed environment (the CUDA index URL is dropped: it cannot be reached offline);
- ``apt-get``: every package it names is installed by ``.ci/run``;
- ``python3 -m venv``: creates a venv (without pip); ``. .venv/bin/activate``: the file exists;
- ``python -m pytest ...``: collects tests; ``python examples/...``: run by
  ``tests/test_examples.py``;
- ``srun ... gradmatch ...``: the gradmatch part parses (there is no GPU node here).

A command no rule claims fails the test, naming it: add a rule here when the README gains one.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gradmatch import cli

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
# gradmatch runs that take seconds; any other gradmatch command must parse
RUN_FOR_REAL = ("schema", "check-config")
FAST_COST = "--from-calibration"

pytestmark = pytest.mark.slow


def readme_commands() -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """(command, environment exported before it) for every command the README shows."""
    text = README.read_text()
    commands: list[tuple[str, dict[str, str]]] = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S):
        exported: dict[str, str] = {}
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                name, value = line.removeprefix("export ").split("=", 1)
                exported[name] = value
                continue
            commands += [(part.strip(), dict(exported)) for part in line.split("&&")]
    for span in re.findall(r"`([^`\n]+)`", text):
        if re.match(r"(snakemake|gradmatch|pip install) ", span):
            commands += [(part.strip(), {}) for part in span.split("&&")]
    return list(dict.fromkeys((c, tuple(sorted(e.items()))) for c, e in commands).keys())


def _run(argv: list[str], env: dict[str, str] | None = None, timeout: int = 600):
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    return subprocess.run(
        argv, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout
    )


def _check_snakemake(argv: list[str], env: dict[str, str]) -> None:
    result = _run([str(BIN / "snakemake"), *argv[1:], "-n", "--quiet", "rules"], env)
    assert result.returncode == 0, (argv, result.stderr[-3000:])


def _parses(argv: list[str]) -> None:
    parser = cli.build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as stop:
        pytest.fail(f"README command `gradmatch {shlex.join(argv)}` does not parse ({stop})")


def _check_gradmatch(argv: list[str], command: str) -> None:
    args = argv[1:]
    if ">" in args:  # `gradmatch schema --markdown > config/README.md`: output equals the file
        args, target = args[: args.index(">")], args[args.index(">") + 1]
        result = _run([str(BIN / "gradmatch"), *args])
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout == (ROOT / target).read_text(), f"`{command}` differs from {target}"
        return
    if len(args) == 1:
        assert args[0] in cli.build_parser()._subparsers._group_actions[0].choices, command
        return
    if args[0] in RUN_FOR_REAL or (args[0] == "cost" and FAST_COST in args):
        result = _run([str(BIN / "gradmatch"), *args])
        assert result.returncode == 0, (command, result.stderr[-3000:])
        return
    _parses(args)


def _check_pip(argv: list[str]) -> None:
    args = argv[2:]
    if "--index-url" in args:
        at = args.index("--index-url")
        args = args[:at] + args[at + 2 :]
    result = _run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
         *args], timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, (argv, result.stderr[-3000:])


def _check_apt(argv: list[str]) -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    if argv[1] == "update":
        return
    packages = [word for word in argv[2:] if not word.startswith("-")]
    missing = [package for package in packages if not re.search(rf"\b{re.escape(package)}\b", ci)]
    assert not missing, f".ci/run does not install README's apt packages {missing}"


def _check_venv(argv: list[str], tmp_path: Path) -> None:
    result = _run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")])
    assert result.returncode == 0, result.stderr
    assert argv[1:3] == ["-m", "venv"], argv


def _check_python(argv: list[str]) -> None:
    if argv[1:3] == ["-m", "pytest"]:
        result = _run([sys.executable, "-m", "pytest", *argv[3:], "--collect-only", "-q"])
        assert result.returncode == 0, (argv, result.stdout[-2000:])
        return
    script = argv[1]
    assert (ROOT / script).is_file(), f"README runs {script}, which does not exist"
    examples_test = (ROOT / "tests" / "test_examples.py").read_text()
    assert script in examples_test, f"no test runs `{' '.join(argv)}`"


def check(command: str, env: dict[str, str], tmp_path: Path) -> None:
    argv = shlex.split(command)
    program = argv[0]
    if program == "snakemake":
        _check_snakemake(argv, env)
    elif program == "gradmatch":
        _check_gradmatch(argv, command)
    elif program == "srun":
        _check_gradmatch(argv[argv.index("gradmatch") :], command)
    elif argv[:2] == ["pip", "install"]:
        _check_pip(argv)
    elif program == "apt-get":
        _check_apt(argv)
    elif program.startswith("python3") and argv[1:3] == ["-m", "venv"]:
        _check_venv(argv, tmp_path)
    elif program == ".":
        assert (Path(sys.prefix) / argv[1].removeprefix(".venv/")).is_file() or (
            ROOT / argv[1]
        ).is_file(), f"`{command}`: no such file"
    elif program == "python":
        _check_python(argv)
    else:
        pytest.fail(f"README command `{command}` has no rule in {Path(__file__).name}; add one")


COMMANDS = readme_commands()


def test_the_readme_shows_the_main_commands():
    shown = [command for command, _ in COMMANDS]
    assert "snakemake --cores 2 paper" in shown
    assert "snakemake --profile slurm paper" in shown
    assert any(command.startswith("snakemake --cores 2 fig4") for command in shown)


@pytest.mark.parametrize(("command", "env"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_readme_command_works_as_typed(command, env, tmp_path):
    check(command, dict(env), tmp_path)
