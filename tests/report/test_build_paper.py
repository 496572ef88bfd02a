"""The latexmk wrapper of the report (including the no-TeX message)."""

from __future__ import annotations

import shutil

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
