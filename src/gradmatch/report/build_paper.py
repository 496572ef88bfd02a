"""Build the reproduction report PDF with latexmk; without TeX, fail with install advice."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

INSTALL_HINT = (
    "install TeX to build the report PDF, e.g. on Debian/Ubuntu: "
    "apt-get install texlive-latex-base texlive-latex-recommended texlive-latex-extra latexmk "
    "(macOS: MacTeX). Every figure builds without TeX: snakemake --cores 2 figures"
)


def missing_tools() -> list[str]:
    return [tool for tool in ("latexmk", "pdflatex") if shutil.which(tool) is None]


def build(tex: str | Path, pdf: str | Path) -> Path:
    """Run ``latexmk -pdf`` in the folder of ``tex``; the PDF lands beside it, then at ``pdf``."""
    source = Path(tex)
    if not source.is_file():
        raise FileNotFoundError(f"build-paper: {source} does not exist")
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"build-paper: {', '.join(missing)} not found; {INSTALL_HINT}")
    command = [
        "latexmk",
        "-pdf",
        "-interaction=nonstopmode",
        "-halt-on-error",
        "-file-line-error",
        "-cd",
        str(source),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    built = source.with_suffix(".pdf")
    if result.returncode != 0 or not built.is_file():
        log = source.with_suffix(".log")
        errors = []
        if log.is_file():
            errors = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if line.startswith("!") or ":error:" in line.lower() or ".tex:" in line
            ]
        detail = "\n".join(errors[-15:]) or result.stdout[-3000:] + result.stderr[-2000:]
        raise RuntimeError(f"build-paper: latexmk failed on {source} (see {log}):\n{detail}")
    target = Path(pdf)
    if target.resolve() != built.resolve():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tex", help="the report source, e.g. paper/main.tex")
    parser.add_argument("--pdf", required=True, help="output PDF, e.g. paper/main.pdf")


def command(args: argparse.Namespace) -> int:
    try:
        path = build(args.tex, args.pdf)
    except RuntimeError as error:
        raise ValueError(str(error)) from error
    print(f"build-paper: wrote {path}")
    return 0
