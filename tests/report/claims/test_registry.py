"""Claim evaluation by table id: paths from the caller, declarations checked, rows kept."""

from __future__ import annotations

import pandas as pd
import pytest

from gradmatch import io
from gradmatch.experiments import ridge_stationarity
from gradmatch.report.claims import fig1, registry
from gradmatch.report.claims.outcomes import at_least, at_most, not_applicable
from gradmatch.report.claims.registry import Claim

SRC = "Sec. 0: “a demo sentence”."


def _table(tmp_path, frame: pd.DataFrame, name: str = "t") -> str:
    path = tmp_path / f"{name}.parquet"
    io.write_parquet(frame, path)
    return str(path)


def test_table_ids_must_name_analysis_and_table():
    assert registry.split_table_id("ols_endpoint.endpoint") == ("ols_endpoint", "endpoint")
    for bad in ("ols_endpoint", ".endpoint", "ols_endpoint.", "a.b.c"):
        with pytest.raises(ValueError, match="'<analysis>.<table>'"):
            Claim("x", "Fig. 0", "x", (bad,), lambda t: at_most(0, 1), source=SRC)


def test_required_tables_are_sorted_ids_of_every_registered_claim():
    tables = registry.required_tables()
    assert tables == sorted(tables)
    assert tables == sorted({t for claim in registry.registered() for t in claim.tables})
    assert {"ols_endpoint.endpoint", "elastic_net.summary", "igr.runs", "dropout.members",
            "igr_long_horizon.drift", "ridge_stationarity.arrows"} <= set(tables)  # fmt: skip


def test_missing_path_and_missing_file_name_the_table(tmp_path):
    claim = Claim("demo.claim", "Fig. 0", "demo", ("demo.t",), lambda t: at_most(0, 1), source=SRC)
    with pytest.raises(registry.MissingTableError, match=r"--input demo\.t=PATH"):
        registry.evaluate_claims([claim], paths={})
    with pytest.raises(registry.MissingTableError, match=r"'demo\.t' is missing: .*nope\.parquet"):
        registry.evaluate_claims([claim], paths={"demo.t": str(tmp_path / "nope.parquet")})


def test_unknown_table_ids_are_refused(tmp_path):
    claim = Claim("demo.claim", "Fig. 0", "demo", ("demo.t",), lambda t: at_most(0, 1), source=SRC)
    path = _table(tmp_path, pd.DataFrame({"x": [1.0]}))
    with pytest.raises(ValueError, match=r"unknown table id\(s\) \['demo\.u'\]"):
        registry.evaluate_claims([claim], paths={"demo.t": path, "demo.u": path})


def test_failed_and_not_applicable_rows_stay_in_the_table(tmp_path):
    path = _table(tmp_path, pd.DataFrame({"x": [1.0, 2.0], "preset": "smoke", "dataset": "digits"}))
    good = Claim("a.good", "Fig. 9", "λ small", ("demo.t",), lambda t: at_most(1, 2), source=SRC)
    facets = Claim(
        "b.facets",
        "Fig. 9",
        "per facet",
        ("demo.t",),
        lambda t: {"d1": not_applicable("none"), "d3": at_least(0.1, 0.8)},
        source=SRC,
        ours="0.8, ours",
    )
    table = registry.evaluate_claims([good, facets], paths={"demo.t": path})
    assert list(table.columns) == [
        "claim_id", "claim", "figure", "statement", "source", "ours", "measured", "criterion",
        "passed", "verdict", "detail", "preset", "dataset", "inputs",
    ]  # fmt: skip
    assert list(table["claim_id"]) == ["a.good", "b.facets.d1", "b.facets.d3"]
    assert list(table["claim"]) == ["a.good", "b.facets", "b.facets"]
    assert list(table["verdict"]) == ["pass", "n/a", "FAIL"]
    assert list(table["statement"]) == ["λ small", "per facet (d1)", "per facet (d3)"]
    assert set(table["preset"]) == {"smoke"} and set(table["dataset"]) == {"digits"}
    assert set(table["inputs"]) == {path} and set(table["source"]) == {SRC}
    assert list(table["ours"]) == ["", "0.8, ours", "0.8, ours"]


def test_tables_reach_evaluate_in_the_order_the_claim_lists_them(tmp_path):
    paths = {
        "demo.a": _table(tmp_path, pd.DataFrame({"x": [1.0]}), "a"),
        "demo.b": _table(tmp_path, pd.DataFrame({"x": [5.0]}), "b"),
    }
    claim = Claim(
        "c", "Fig. 0", "c", ("demo.b", "demo.a"), lambda b, a: at_most(b.x[0], a.x[0]), source=SRC
    )
    row = registry.evaluate_claims([claim], paths=paths).iloc[0]
    assert row["measured"] == 5.0 and row["verdict"] == "FAIL"
    assert row["inputs"] == f"{paths['demo.b']}, {paths['demo.a']}"
    assert row["preset"] == "unknown" and row["dataset"] == "synthetic"


def test_a_real_output_is_checked_against_its_declaration(tmp_path):
    arrows = ridge_stationarity.run(ridge_stationarity.Settings())["arrows"]
    ridge_stationarity.TABLES["arrows"].check(arrows)
    assert registry.declaration("ridge_stationarity.arrows") is ridge_stationarity.TABLES["arrows"]
    paths = {"ridge_stationarity.arrows": _table(tmp_path, arrows, "arrows")}
    table = registry.evaluate_claims(fig1.CLAIMS, paths=paths)
    assert list(table["claim_id"]) == ["ridge.exact"] and table["passed"].all()
    # an undeclared column is refused, unless the check is switched off
    paths["ridge_stationarity.arrows"] = _table(tmp_path, arrows.assign(extra=1.0), "extra")
    with pytest.raises(ValueError, match=r"undeclared columns \['extra'\]"):
        registry.evaluate_claims(fig1.CLAIMS, paths=paths)
    assert registry.evaluate_claims(fig1.CLAIMS, paths=paths, check=False)["passed"].all()


def test_a_table_the_analysis_does_not_declare_is_an_error():
    with pytest.raises(ValueError, match="declares tables .*'arrows'.*not 'nope'"):
        registry.declaration("ridge_stationarity.nope")
    assert registry.declaration("not_an_analysis.t") is None
