"""The latexmk wrapper of the report (including the no-TeX message)."""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from pathlib import Path

import pytest

from gradmatch.report import build_paper


def test_missing_tex_names_the_packages_and_the_tex_free_target(tmp_path, monkeypatch):
    source = tmp_path / "main.tex"
    source.write_text("\\documentclass{article}\\begin{document}x\\end{document}\n")
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    with pytest.raises(RuntimeError) as error:
        build_paper.build(source, tmp_path / "main.pdf")
    message = str(error.value)
    assert "latexmk, pdflatex not found" in message
    assert "texlive-latex-base texlive-latex-recommended" in message
    assert "snakemake --cores 2 figures" in message


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="needs TeX (latexmk)")
def test_build_compiles_and_reports_latex_errors(tmp_path):
    good = tmp_path / "good.tex"
    good.write_text("\\documentclass{article}\\begin{document}Hello gradmatch\\end{document}\n")
    out = build_paper.build(good, tmp_path / "out" / "report.pdf")
    assert out.is_file() and out.read_bytes()[:4] == b"%PDF"
    bad = tmp_path / "bad.tex"
    bad.write_text("\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n")
    with pytest.raises(RuntimeError, match="Undefined control sequence"):
        build_paper.build(bad, tmp_path / "bad.pdf")


needs_tex = pytest.mark.skipif(shutil.which("latexmk") is None, reason="needs TeX (latexmk)")
HYPERREF_DOC = (
    "\\documentclass{article}\\usepackage{hyperref}\\begin{document}"
    "\\section{A}\\label{a}See \\ref{a}, built \\today.\\end{document}\n"
)
# pdflatex waits (mid-run, the .aux already open) until release.flag exists beside the source;
# the counter ends a wait that nobody releases with an error instead of a hang. The body text is
# \input from body.tex, so that changing it makes latexmk rerun pdflatex.
WAITING_DOC = (
    "\\documentclass{article}\\usepackage{hyperref}\\newcount\\spins\\newif\\ifwaiting"
    "\\begin{document}\\section{A}\\label{a}\\input{body}\\waitingtrue"
    "\\loop\\IfFileExists{release.flag}{\\waitingfalse}{}\\advance\\spins 1 "
    "\\ifnum\\spins>20000000 \\errmessage{nobody released the wait}\\fi\\ifwaiting\\repeat"
    "\\end{document}\n"
)


def _write(folder, text, name="main.tex"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


@needs_tex
def test_two_builds_are_byte_identical_with_fixed_dates_and_an_id_from_the_content(tmp_path):
    first = build_paper.build(_write(tmp_path / "a", HYPERREF_DOC), tmp_path / "a.pdf")
    second = build_paper.build(_write(tmp_path / "b", HYPERREF_DOC), tmp_path / "out" / "b.pdf")
    data = first.read_bytes()
    assert data == second.read_bytes()
    assert data.count(b"/CreationDate (D:19700101000000Z)") == 1
    assert data.count(b"/ModDate (D:19700101000000Z)") == 1
    (trailer_id,) = re.findall(rb"/ID \[<([0-9A-F]{32})> <\1>\]", data)
    placeholder = hashlib.md5(build_paper.PLACEHOLDER_ID.encode()).hexdigest().upper()
    assert trailer_id.decode() != placeholder
    # the ID is the digest of the PDF as built with the placeholder: undo the patch, re-hash
    unpatched = data.replace(trailer_id, placeholder.encode())
    assert hashlib.sha256(unpatched).hexdigest()[:32].upper() == trailer_id.decode()
    changed = build_paper.build(
        _write(tmp_path / "c", HYPERREF_DOC.replace("See", "Read")), tmp_path / "c.pdf"
    ).read_bytes()
    assert re.findall(rb"/ID \[<([0-9A-F]{32})>", changed) != [trailer_id]
    # the log lands beside the source; no latexmk state does
    assert (tmp_path / "a" / "main.log").is_file()
    assert sorted(path.name for path in (tmp_path / "a").iterdir()) == ["main.log", "main.tex"]


def _waiting_paper(folder, body, released):
    source = _write(folder, WAITING_DOC)
    _write(folder, f"{body}\n", name="body.tex")
    if released:
        (folder / "release.flag").write_text("")
    return source


@needs_tex
@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="finds pdflatex through /proc")
def test_a_build_whose_pdflatex_was_killed_is_followed_by_a_clean_rebuild(tmp_path, kill_pdflatex):
    """The issue's case: a good build, an input changes, its pdflatex is killed, rebuild."""
    folder = tmp_path / "paper"
    source = _waiting_paper(folder, "See \\ref{a}.", released=True)
    target = folder / "main.pdf"
    first = build_paper.build(source, target).read_bytes()
    (folder / "release.flag").unlink()
    _write(folder, "Read \\ref{a}.\n", name="body.tex")
    outcome = {}

    def run():
        try:
            build_paper.build(source, target)
        except RuntimeError as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=run)
    thread.start()
    killed = kill_pdflatex(folder, thread.is_alive)
    thread.join()
    assert killed, "pdflatex finished before it could be killed"
    assert f"latexmk failed on {source}" in outcome["error"]
    assert target.read_bytes() == first  # the failed build wrote nothing over the last PDF

    (folder / "release.flag").write_text("")
    rebuilt = build_paper.build(source, target).read_bytes()
    clean = _waiting_paper(tmp_path / "clean", "Read \\ref{a}.", released=True)
    assert rebuilt[:4] == b"%PDF" and rebuilt != first
    assert rebuilt == build_paper.build(clean, tmp_path / "clean.pdf").read_bytes()


@needs_tex
def test_stale_state_of_an_interrupted_in_place_latexmk_run_is_ignored(tmp_path):
    """What a killed `latexmk -pdf main.tex` leaves beside the source wedged later builds."""
    source = _write(tmp_path / "paper", HYPERREF_DOC)
    folder = source.parent
    (folder / "main.aux").write_text("\\relax \\newlabel{a}{{1}{1}{A}{section")  # truncated
    (folder / "main.pdf").write_bytes(b"%PDF-1.5\n% truncated")
    (folder / "main.fdb_latexmk").write_text(
        '# Fdb version 3\n["pdflatex"] 1 "main.tex" "main.pdf" "main" 1\n'
        '  "main.tex" 1 120 0123456789abcdef0123456789abcdef ""\n  (generated)\n  "main.pdf"\n'
    )
    out = build_paper.build(source, folder / "main.pdf").read_bytes()
    clean = build_paper.build(_write(tmp_path / "clean", HYPERREF_DOC), tmp_path / "clean.pdf")
    assert out == clean.read_bytes() and out[:4] == b"%PDF"
