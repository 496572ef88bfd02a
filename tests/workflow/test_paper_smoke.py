"""Smoke run of the default `paper` target: every figure, the claims table and paper/main.pdf."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from gradmatch import experiments

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
        reason="needs TeX (latexmk) and poppler-utils (pdftotext)",
    ),
]


def _normalise(text: str) -> str:
    """Letters and digits only, lower case: immune to line breaks, hyphenation and ligatures."""
    text = text.replace("\ufb01", "fi").replace("\ufb02", "fl").replace("\ufb00", "ff")
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _caption_leads(tex: str) -> dict[str, str]:
    """Figure name -> the plain-text opening of its caption ("Figure 4 reproduced: ...")."""
    leads = {}
    for match in re.finditer(r"\\figpanel(?:\[[^\]]*\])?\{([^}]+)\}\s*\\caption\{([^\\$]+)", tex):
        leads[match.group(1)] = _normalise(match.group(2))
    return leads


def test_smoke_paper_builds_pdf_with_every_figure_and_the_claims_table(tmp_path):
    for folder in ("workflow", "config"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    (tmp_path / "paper").mkdir()
    shutil.copy(REPO / "paper" / "main.tex", tmp_path / "paper" / "main.tex")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/smoke.yaml"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    pdf = tmp_path / "paper" / "main.pdf"
    raw = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    text = _normalise(raw)
    settings = (tmp_path / "paper" / "generated" / "settings.tex").read_text()
    registered = set(re.findall(r"\\@namedef\{gmfigurefile@([^}]+)\}", settings))
    leads = _caption_leads((tmp_path / "paper" / "main.tex").read_text())
    assert registered, "the workflow registered no figure"
    assert registered <= set(leads), f"figures without a section: {registered - set(leads)}"
    for name in sorted(registered):
        assert leads[name] in text, f"caption of {name} not in the PDF: {leads[name]!r}"

    claims = pd.read_parquet(tmp_path / "data" / "generated" / "claims.parquet")
    assert len(claims) >= 1 and set(claims["preset"]) == {"smoke"}
    assert _normalise("Claims table") in text
    for claim_id in claims["claim_id"]:
        assert _normalise(claim_id) in text, f"claim {claim_id} missing from the PDF's claims table"
    # each claim names the paper's sentence it checks, and the report prints it
    assert claims["source"].str.len().gt(0).all() and "fig4b.exact_from_6" not in set(
        claims["claim"]
    )
    for source in claims["source"].unique():
        assert _normalise(source)[:60] in text, f"claims table lacks the source {source!r}"
    # the body text never writes FAIL in capitals: only verdicts (table and macros) do
    assert raw.count("FAIL") >= int((claims["verdict"] == "FAIL").sum())

    # Figures 5, 6 and the long-horizon appendix: sections, claims, and the data set they name
    for title in (
        "Figure 5: the implicit ridge penalty of dropout",
        "Figure 6: implicit gradient regularization of SGD",
        "Appendix figure: gradient descent against the original and the modified flow",
    ):
        assert _normalise(title) in text, f"section {title!r} missing from the PDF"
    for claim in ("fig5.monotone", "fig6.slope", "fig6.calibration", "figS1.closer"):
        assert (claims["claim"] == claim).any(), f"claim {claim} missing from claims.parquet"
    generated = tmp_path / "data" / "generated"
    for table in ("dropout/members.parquet", "igr/runs.parquet"):
        (dataset,) = pd.read_parquet(generated / table, columns=["dataset"])["dataset"].unique()
        assert _normalise(f"Data set: {dataset}") in text, f"{table}: data set not named"
    # every table the run wrote matches its analysis's declaration (gradmatch.tables)
    checked = 0
    for path in sorted(generated.glob("*/*.parquet")) + sorted(
        generated.glob("*/chunks/*.parquet")
    ):
        analysis = path.relative_to(generated).parts[0]
        name = path.stem.rsplit("_", 1)[0] if path.parent.name == "chunks" else path.stem
        experiments.module(analysis).TABLES[name].check(pd.read_parquet(path), str(path))
        checked += 1
    assert checked >= 20, f"only {checked} tables checked"
    # the report's figure list is the workflow's figure table
    figure_table = yaml.safe_load((REPO / "workflow" / "figures.yaml").read_text())
    for entry in figure_table.values():
        assert _normalise(entry["title"]) in text, f"figure list lacks {entry['title']!r}"

    lead = _normalise("the ratio of the distance between gradient descent and the modified flow")
    assert lead in text, "the long-horizon section does not state what it measured"

    # W&B tracking changes no table and no report page: switching it plans no job at all
    tracked = tmp_path / "config" / "smoke_tracked.yaml"
    tracked.write_text(
        (tmp_path / "config" / "smoke.yaml").read_text() + "\nwandb: {mode: offline}\n"
    )
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "paper", "--configfile", str(tracked)],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-3000:]
