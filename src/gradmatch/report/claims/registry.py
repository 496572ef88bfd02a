"""The registered claims, the tables they read (by table id) and their evaluation.

A :class:`Claim` binds one sentence of the paper to a pure function of DataFrames. It names its
inputs by *table id* ``"<analysis>.<table>"``: the analysis is an experiment module
(:mod:`gradmatch.experiments`) and the table one entry of its ``TABLES`` (e.g.
``ols_endpoint.endpoint``, ``igr.runs``); for a chunked analysis the id names the aggregated
table (``elastic_net.summary``, ``dropout.members``). Claims know no paths: the caller (the
workflow, through ``gradmatch claims --input <table id>=PATH``) says where each table lies.
Each loaded table is checked against its declaration when the experiment module declares
``TABLES``.

The claims themselves live next to the paper sentence they check, one module per figure
(:data:`FIGURES`); :func:`registered` collects them in the order of the claims table.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from gradmatch import io
from gradmatch.report.claims.outcomes import Outcome

# The figure modules, in the order their claims appear in the claims table.
FIGURES = ("fig1", "fig3", "fig4", "fig7", "fig5", "fig6", "figS1")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One paper claim: the tables it reads (table ids) and how it is evaluated.

    ``evaluate`` receives one DataFrame per entry of ``tables``, in that order, and returns one
    Outcome, or ``{suffix: Outcome}`` for a claim checked per facet (each becomes a row
    ``<id>.<suffix>``). ``source`` names the sentence of the paper the claim checks (section,
    then a short paraphrase in quotes); ``ours`` says which part of the criterion is our own
    reading (a tolerance, a band, a threshold) and why its number, or is empty when the
    criterion is the paper's own statement.
    """

    id: str
    figure: str
    statement: str
    tables: tuple[str, ...]
    evaluate: Callable[..., Outcome | Mapping[str, Outcome]]
    source: str = dataclasses.field(default="", kw_only=True)
    ours: str = dataclasses.field(default="", kw_only=True)

    def __post_init__(self) -> None:
        for table_id in self.tables:
            split_table_id(table_id)
        if not self.source.strip():
            raise ValueError(
                f"claims: claim {self.id!r} names no source; give source='<section>: "
                "\"<the paper's sentence, paraphrased>\"'"
            )


class MissingTableError(FileNotFoundError):
    """A claim's input table was not given or has not been built."""


def split_table_id(table_id: str) -> tuple[str, str]:
    """``"<analysis>.<table>"`` → ``(analysis, table)``; a ValueError for any other form."""
    analysis, sep, table = str(table_id).partition(".")
    if not sep or not analysis or not table or "." in table:
        raise ValueError(f"claims: table id {table_id!r} is not of the form '<analysis>.<table>'")
    return analysis, table


def registered() -> tuple[Claim, ...]:
    """Every registered claim, in the order of the claims table (torch-free)."""
    claims: list[Claim] = []
    for name in FIGURES:
        claims.extend(importlib.import_module(f"gradmatch.report.claims.{name}").CLAIMS)
    return tuple(claims)


def required_tables(claims: Sequence[Claim] | None = None) -> list[str]:
    """The sorted table ids the claims read (all registered claims by default; torch-free)."""
    claims = registered() if claims is None else claims
    return sorted({table_id for claim in claims for table_id in claim.tables})


def declaration(table_id: str):
    """The :class:`gradmatch.tables.Table` declared for ``table_id``, or None where the
    experiment module (or the analysis) declares no ``TABLES``.

    A ValueError when the module declares ``TABLES`` but not this table.
    """
    from gradmatch import experiments

    analysis, table = split_table_id(table_id)
    if analysis not in experiments.names():
        return None
    declared = getattr(experiments.module(analysis), "TABLES", None)
    if declared is None:
        return None
    if table not in declared:
        raise ValueError(
            f"claims: table id {table_id!r}: gradmatch.experiments.{analysis} declares tables "
            f"{sorted(declared)}, not {table!r}"
        )
    return declared[table]


def undeclared_tables(claims: Sequence[Claim] | None = None) -> list[str]:
    """The table ids among :func:`required_tables` whose analysis declares no ``TABLES``."""
    return [table_id for table_id in required_tables(claims) if declaration(table_id) is None]


def load_tables(
    table_ids: Iterable[str], paths: Mapping[str, str], *, check: bool = True
) -> dict[str, pd.DataFrame]:
    """Read each table from ``paths[table_id]``; with ``check``, compare it with its
    declaration (see :func:`declaration`)."""
    frames = {}
    for table_id in table_ids:
        if table_id not in paths:
            raise MissingTableError(
                f"claims: no path for input table '{table_id}'; give --input {table_id}=PATH"
            )
        path = Path(paths[table_id])
        if not path.is_file():
            raise MissingTableError(
                f"claims: input table '{table_id}' is missing: {path}; build it with "
                f"`snakemake --cores 2 {path}`"
            )
        frame = io.read_parquet(path)
        if check:
            declared = declaration(table_id)
            if declared is not None:
                declared.check(frame, what=f"claims: input table '{table_id}' ({path})")
        frames[table_id] = frame
    return frames


def _provenance(frames: Iterable[pd.DataFrame], column: str, default: str) -> str:
    values: set[str] = set()
    for frame in frames:
        if column in frame.columns:
            values.update(str(value) for value in frame[column].dropna().unique())
    return ",".join(sorted(values)) if values else default


def evaluate_claims(
    claims: Sequence[Claim] | None = None,
    paths: Mapping[str, str] | None = None,
    *,
    check: bool = True,
) -> pd.DataFrame:
    """Evaluate every claim on the tables at ``paths`` (table id → parquet path).

    One row per claim (or per facet), failures included: ``claim_id``, ``claim``, ``figure``,
    ``statement``, ``source`` (the paper's sentence), ``ours`` (our part of the criterion),
    ``measured``, ``criterion``, ``passed``, ``verdict``, ``detail``, ``preset``, ``dataset``
    and ``inputs`` (the paths the claim read).
    """
    claims = registered() if claims is None else tuple(claims)
    paths = dict(paths or {})
    known = set(required_tables()) | set(required_tables(claims))
    unknown = sorted(set(paths) - known)
    if unknown:
        raise ValueError(f"claims: unknown table id(s) {unknown}; known: {sorted(known)}")
    frames = load_tables(required_tables(claims), paths, check=check)
    rows = []
    for claim in claims:
        inputs = [frames[table_id] for table_id in claim.tables]
        result = claim.evaluate(*inputs)
        outcomes = result.items() if isinstance(result, Mapping) else [("", result)]
        for suffix, outcome in outcomes:
            rows.append(
                {
                    "claim_id": f"{claim.id}.{suffix}" if suffix else claim.id,
                    "claim": claim.id,
                    "figure": claim.figure,
                    "statement": claim.statement + (f" ({suffix})" if suffix else ""),
                    "source": claim.source,
                    "ours": claim.ours,
                    "measured": float(outcome.measured),
                    "criterion": outcome.criterion,
                    "passed": bool(outcome.passed),
                    "verdict": outcome.verdict,
                    "detail": outcome.detail,
                    "preset": _provenance(inputs, "preset", "unknown"),
                    "dataset": outcome.dataset or _provenance(inputs, "dataset", "synthetic"),
                    "inputs": ", ".join(str(paths[table_id]) for table_id in claim.tables),
                }
            )
    return pd.DataFrame(rows)
