"""Check the paper's headline claims against the experiments' tables; print or write the table.

Each claim is a small pure function of DataFrames that returns an :class:`Outcome` (the measured
value, the criterion and whether it holds), written next to the sentence of the paper it checks,
one module per figure (``fig1``, ``fig3``, ``fig4``, ``fig5``, ``fig6``, ``fig7``, ``figS1``).
A :class:`Claim` names its input tables by table id ``"<analysis>.<table>"``
(:mod:`gradmatch.report.claims.registry`); the caller supplies the paths
(``gradmatch claims --input <table id>=PATH ...``, one for each of :func:`required_tables`).
A claim that does not hold is reported as failed, never dropped; a facet that the claim cannot
speak about (Figure 5 at depth 1, which has no dropout layer) is reported as not applicable,
never as a pass. A missing input table is an error that names it.

Outputs (:mod:`gradmatch.report.claims.latex`): the claims table (one row per claim:
``claim_id``, ``claim`` (the id without a facet suffix), ``figure``, ``statement``,
``source`` (the sentence of the paper it checks: section and paraphrase), ``ours`` (the part of
the criterion that is our reading, with the reason for its number; empty when none),
``measured``, ``criterion``, ``passed``, ``verdict`` (pass | FAIL | n/a), ``detail``,
``preset``, ``dataset``, ``inputs`` (the input paths); ``gradmatch claims`` adds ``commit``
after ``preset``: the commit(s) of the tables the claim read, from their provenance,
:mod:`gradmatch.report.provenance`) and LaTeX fragments for the report:
``claims.tex`` (the table) and ``claims-macros.tex``
(``\\claim{<id>}{measured|criterion|verdict|detail|source|ours|preset|dataset}`` for the text,
and for a claim checked per facet
``\\claim{<claim>}{tally|rows|details|criterion|source|ours|preset|dataset}``, whose facet
names depend on the config).
"""

from __future__ import annotations

import argparse

from gradmatch import io
from gradmatch.report.claims.latex import (
    claims_latex,
    claims_macros,
    claims_text,
    format_measured,
    tex_escape,
    write_text,
)
from gradmatch.report.claims.outcomes import (
    Outcome,
    at_least,
    at_most,
    band_recovery,
    beats_baseline,
    below,
    decreases_with,
    increases_with,
    loglog_slope,
    not_applicable,
    recovery_from_m,
    retrain_equality,
    ridge_recovery,
    tracks_in_log,
)
from gradmatch.report.claims.registry import (
    Claim,
    MissingTableError,
    evaluate_claims,
    registered,
    required_tables,
    undeclared_tables,
)

__all__ = [
    "Claim",
    "MissingTableError",
    "Outcome",
    "add_arguments",
    "at_least",
    "at_most",
    "band_recovery",
    "beats_baseline",
    "below",
    "claims_latex",
    "claims_macros",
    "claims_text",
    "command",
    "decreases_with",
    "evaluate_claims",
    "format_measured",
    "increases_with",
    "loglog_slope",
    "not_applicable",
    "recovery_from_m",
    "registered",
    "required_tables",
    "retrain_equality",
    "ridge_recovery",
    "tex_escape",
    "tracks_in_log",
    "undeclared_tables",
    "write_text",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``gradmatch claims``."""
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="TABLE_ID=PATH",
        help="where a table lies, by table id '<analysis>.<table>' (e.g. "
        "ols_endpoint.endpoint=data/generated/ols_endpoint/endpoint.parquet); "
        "one for each table the claims read",
    )
    parser.add_argument("--out", help="write the claims table to this parquet file")
    parser.add_argument(
        "--tex", help="write the LaTeX longtable here (e.g. paper/generated/claims.tex)"
    )
    parser.add_argument("--macros", help="write \\claim{id}{field} macros here")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 3 when any claim fails"
    )


def command(args: argparse.Namespace) -> int:
    """Run ``gradmatch claims``: evaluate every registered claim, write and print the table."""
    paths = {}
    for pair in args.input:
        table_id, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"claims: --input takes TABLE_ID=PATH, got {pair!r}")
        paths[table_id] = value
    table = evaluate_claims(paths=paths)
    from gradmatch.report.provenance import with_commits  # it imports this package

    table, origin = with_commits(table, paths)  # the commit column, from the inputs' metadata
    if args.out:
        io.write_parquet(table, args.out, provenance=origin)
    if args.tex:
        write_text(claims_latex(table), args.tex)
    if args.macros:
        write_text(claims_macros(table), args.macros)
    print(claims_text(table))
    print(f"tables from commit(s) {', '.join(sorted(set(table['commit'])))} (column commit)")
    return 3 if args.strict and (table["verdict"] == "FAIL").any() else 0
