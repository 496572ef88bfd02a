"""The claims package: the registered claims, a torch-free import, and `gradmatch claims`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pandas as pd
import pytest

from gradmatch import experiments, io
from gradmatch.report import claims

IDS = [
    "ridge.exact", "fig3.band", "fig4c.retrain", "fig4b.exact_from_p", "fig4d.decreasing",
    "fig4e.trace", "fig7.bootstrap", "fig7.sigma", "fig5.monotone", "fig6.slope",
    "fig6.calibration", "figS1.closer",
]  # fmt: skip


def test_registered_claims_in_table_order_with_latex_statements_and_known_analyses():
    registered = claims.registered()
    assert [claim.id for claim in registered] == IDS
    for claim in registered:
        assert claims.tex_escape(claim.statement)
        assert claims.tex_escape(claim.source) and claims.tex_escape(claim.ours)
        for table_id in claim.tables:
            analysis, _ = table_id.split(".")
            assert analysis in experiments.names(), (claim.id, table_id)
    figures = {claim.id.split(".")[0] for claim in registered} - {"ridge"}
    assert figures == {"fig3", "fig4b", "fig4c", "fig4d", "fig4e", "fig5", "fig6", "fig7", "figS1"}


def test_every_claim_names_its_paper_sentence_and_marks_our_criteria():
    """Each claim quotes the paper (a section, then the sentence in quotes); every threshold,
    band or tolerance that the paper does not state is marked as ours, with its number."""
    for claim in claims.registered():
        section, _, sentence = claim.source.partition(":")
        assert section.strip()[:4] in {"Sec.", "App."}, (claim.id, claim.source)
        assert "“" in sentence and "”" in sentence, (claim.id, claim.source)
        assert claim.ours, f"{claim.id}: every registered criterion has a number of ours"
    with pytest.raises(ValueError, match="claim 'x' names no source"):
        claims.Claim("x", "Fig. 0", "x", ("demo.t",), lambda t: claims.at_most(0, 1))


def test_the_fig4b_claim_is_the_rank_one():
    """m ≥ 6 (10m ≥ 55 equations) is not the paper's and is wrong: the stacked design has rank
    55 − (p−m)(p−m+1)/2; only m ≥ p = 10 is registered."""
    fig4b = [claim.id for claim in claims.registered() if claim.figure == "Fig. 4B"]
    assert fig4b == ["fig4b.exact_from_p"]


def test_import_and_required_tables_do_not_execute_torch():
    code = (
        "import json, sys\n"
        "from gradmatch.report import claims\n"
        "tables = claims.required_tables()\n"
        "ids = [c.id for c in claims.registered()]\n"
        "print(json.dumps({'tables': tables, 'ids': ids, 'torch': 'torch._C' in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["torch"] is False
    assert out["ids"] == IDS and out["tables"] == claims.required_tables()


def test_command_reads_table_ids_writes_outputs_and_exits_strict(tmp_path, monkeypatch, capsys):
    path = tmp_path / "t.parquet"
    io.write_parquet(pd.DataFrame({"x": [1.0], "preset": "smoke"}), path)
    verdicts = {"d1": claims.not_applicable("none"), "d3": claims.at_least(0.9, 0.8)}
    claim = claims.Claim(
        "c", "Fig. 5", "facets", ("demo.t",), lambda t: dict(verdicts), source="Sec. 3: “x”."
    )
    monkeypatch.setattr(claims.registry, "registered", lambda: (claim,))
    parser = argparse.ArgumentParser()
    claims.add_arguments(parser)
    out = tmp_path / "claims.parquet"
    argv = ["--input", f"demo.t={path}", "--out", str(out), "--tex", str(tmp_path / "c.tex"),
            "--macros", str(tmp_path / "m.tex"), "--strict"]  # fmt: skip
    assert claims.command(parser.parse_args(argv)) == 0
    assert list(pd.read_parquet(out)["claim_id"]) == ["c.d1", "c.d3"]
    assert r"\texttt{c.d1}" in (tmp_path / "c.tex").read_text()
    assert r"gmclaim@c@tally" in (tmp_path / "m.tex").read_text()
    verdicts["d3"] = claims.at_least(0.7, 0.8)
    assert claims.command(parser.parse_args(argv)) == 3
    assert "0 passed, 1 failed, 1 not applicable" in capsys.readouterr().out
