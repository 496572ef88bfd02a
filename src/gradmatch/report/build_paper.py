"""Build the reproduction report PDF with latexmk; without TeX, fail with install advice.

Every build starts from nothing and gives the same bytes for the same inputs:

- latexmk runs in a fresh temporary output folder (``-outdir``), so no state of an earlier run
  (latexmk's ``.fdb_latexmk``, a truncated ``.aux`` or ``.pdf`` left by a killed ``pdflatex``)
  can wedge or change a later build; the PDF then replaces ``pdf`` atomically and the log is
  copied beside the source (``paper/main.log``) for inspection.
- The creation and modification dates are the fixed epoch :data:`SOURCE_DATE_EPOCH`
  (pdfTeX honours ``SOURCE_DATE_EPOCH`` with ``FORCE_SOURCE_DATE=1``). A fixed epoch rather than
  one hashed from the inputs: a hashed date would be a plausible-looking but meaningless date,
  while 1970-01-01 reads as "no date"; the identity of the content is carried by the ID.
- The document ID (the trailer's ``/ID``) is derived from the inputs: pdfTeX writes a
  placeholder ID (``\\pdftrailerid``), and the placeholder is replaced, at equal length (so no
  byte offset moves), by the first 128 bits of the sha256 of the PDF so built. That PDF is a
  function of the inputs (sources, figures, TeX installation) only, so the ID changes exactly
  when an input changes the document.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from gradmatch import io

INSTALL_HINT = (
    "install TeX to build the report PDF, e.g. on Debian/Ubuntu: "
    "apt-get install texlive-latex-base texlive-latex-recommended texlive-latex-extra latexmk "
    "(macOS: MacTeX). Every figure builds without TeX: snakemake --cores 2 figures"
)
SOURCE_DATE_EPOCH = 0  # 1970-01-01T00:00:00Z: the PDF's /CreationDate and /ModDate
PLACEHOLDER_ID = "gradmatch-build-paper-placeholder-id"  # pdfTeX writes md5 of this as /ID


def missing_tools() -> list[str]:
    return [tool for tool in ("latexmk", "pdflatex") if shutil.which(tool) is None]


def _trailer_id(hex_id: bytes) -> bytes:
    return b"/ID [<" + hex_id + b"> <" + hex_id + b">]"


def content_id(data: bytes, source: Path) -> bytes:
    """``data`` (a PDF built with :data:`PLACEHOLDER_ID`) with the ID replaced by its digest."""
    placeholder = hashlib.md5(PLACEHOLDER_ID.encode(), usedforsecurity=False).hexdigest()
    entry = _trailer_id(placeholder.upper().encode())
    found = data.count(entry)
    if found != 1:
        raise RuntimeError(
            f"build-paper: the PDF of {source} holds {found} placeholder trailer IDs, expected 1; "
            "remove any \\pdftrailerid from the source (build-paper sets the ID) and build with "
            "pdfTeX 1.40.17 or later"
        )
    digest = hashlib.sha256(data).hexdigest()[:32].upper().encode()
    return data.replace(entry, _trailer_id(digest))


def _log_errors(log: Path) -> list[str]:
    if not log.is_file():
        return []
    return [
        line
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("!") or ":error:" in line.lower() or ".tex:" in line
    ]


def build(tex: str | Path, pdf: str | Path) -> Path:
    """Run ``latexmk -pdf`` on ``tex`` (from its folder) in a fresh folder; write ``pdf``."""
    source = Path(tex)
    if not source.is_file():
        raise FileNotFoundError(f"build-paper: {source} does not exist")
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"build-paper: {', '.join(missing)} not found; {INSTALL_HINT}")
    log = source.with_suffix(".log")
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(SOURCE_DATE_EPOCH), FORCE_SOURCE_DATE="1")
    with tempfile.TemporaryDirectory(prefix=f"gradmatch-build-paper-{source.stem}-") as outdir:
        command = [
            "latexmk",
            "-pdf",
            "-interaction=nonstopmode",
            "-halt-on-error",
            "-file-line-error",
            "-cd",
            f"-outdir={outdir}",
            f"-usepretex=\\pdftrailerid{{{PLACEHOLDER_ID}}}",
            str(source),
        ]
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        built = Path(outdir) / f"{source.stem}.pdf"
        built_log = Path(outdir) / f"{source.stem}.log"
        if built_log.is_file():
            with io.atomic_path(log) as tmp:
                shutil.copyfile(built_log, tmp)
        else:
            log.unlink(missing_ok=True)  # an earlier build's log would describe another run
        if result.returncode != 0 or not built.is_file():
            detail = "\n".join(_log_errors(built_log)[-15:])
            if not detail:
                detail = result.stdout[-3000:] + result.stderr[-2000:]
            raise RuntimeError(f"build-paper: latexmk failed on {source} (see {log}):\n{detail}")
        data = content_id(built.read_bytes(), source)
    target = Path(pdf)
    with io.atomic_path(target) as tmp:
        tmp.write_bytes(data)
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
