"""Figure 5 (Section 3, Appendix H.4): the implicit ridge penalty of dropout.

Paper: deep ReLU classifiers on MNIST with dropout after hidden blocks 1..depth−1; a ridge
penalty λ‖θ‖² is fitted to each trained network by gradient matching. "The estimated penalty
increases monotonically with dropout rate across all architectures", most for narrow networks.
The statistic is the table's own ``spearman_rate_lambda_<method>`` column (one value per
(depth, width) chunk), the number the figure's facet titles and the report print.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from gradmatch.report.claims.outcomes import Outcome, at_least, fmt, not_applicable, require
from gradmatch.report.claims.registry import Claim

THRESHOLD = 0.8  # Spearman ρ(rate, λ̂) over a facet's networks (rates × seeds)
METHODS = ("lstsq", "adam")  # lstsq first: the estimate the figure plots
SOURCE = (
    "Sec. 3 (Fig. 5): “the estimated penalty increases monotonically with dropout rate across "
    "all architectures”; App. I: depths 3 and 5 are reported, depth 1 left out “to save space "
    "(the trends hold)”."
)
OURS = (
    "“increases monotonically” read as Spearman ρ(rate, λ̂) ≥ 0.8 over the facet's networks "
    "(every rate and seed, the table's spearman_rate_lambda_<fit>): ρ = 1 is a monotone rise "
    "with no seed out of order, 0.8 allows seed scatter across neighbouring rates; the paper "
    "states no number. Depth 1 has no dropout layer in the authors' architecture, so its rows "
    "are not applicable."
)


def facet_spearman(facet: pd.DataFrame, method: str) -> float:
    """The facet's Spearman ρ(rate, λ̂_method) as the table records it (one value per chunk)."""
    column = f"spearman_rate_lambda_{method}"
    values = facet[column].unique()
    if len(values) != 1:
        raise ValueError(
            f"dropout: {column} takes {len(values)} values in one (depth, width) facet; the "
            "table records one per chunk, rebuild it (snakemake --forcerun aggregate_dropout)"
        )
    return float(values[0])


def claim_fig5(members: pd.DataFrame) -> dict[str, Outcome]:
    """Section 3, Fig. 5: "the estimated penalty increases monotonically with dropout rate across
    all architectures" — per (depth, width) facet and fit, Spearman ρ of the dropout rate and
    λ̂ over the facet's networks (column ``spearman_rate_lambda_<fit>``) ≥ :data:`THRESHOLD`
    (ours, :data:`OURS`).

    One row per facet and fit (``d<depth>_w<width>_<lstsq|adam>``); a facet without any dropout
    layer (depth 1: the authors apply dropout after hidden blocks 1..depth−1 only) is listed as
    not applicable. Reads ``dropout.members``.
    """
    require(members, ["depth", "width", "dropout_rate", "seed", "has_dropout"], "dropout")
    methods = [m for m in METHODS if f"lambda_hat_{m}" in members.columns]
    if not methods:
        raise ValueError("dropout: no lambda_hat_lstsq or lambda_hat_adam column")
    require(members, [f"spearman_rate_lambda_{m}" for m in methods], "dropout")
    outcomes = {}
    for (depth, width), facet in members.groupby(["depth", "width"], sort=True):
        for method in methods:
            key = f"d{depth}_w{width}_{method}"
            if not facet["has_dropout"].any():
                outcomes[key] = not_applicable(
                    f"no dropout layer at depth {depth} (dropout follows hidden blocks "
                    "1..depth−1 only)"
                )
                continue
            rates = facet["dropout_rate"].nunique()
            if rates < 3:
                raise ValueError(
                    f"dropout: facet depth {depth}, width {width} has {rates} dropout rate(s); "
                    "a trend needs at least 3 (config dropout.rates)"
                )
            outcome = at_least(facet_spearman(facet, method), THRESHOLD)
            detail = networks(facet)
            if method != "lstsq" and "lambda_hat_lstsq" in facet.columns:
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.median(facet[f"lambda_hat_{method}"] / facet["lambda_hat_lstsq"])
                detail += f"; median λ̂_{method}/λ̂_lstsq = {fmt(ratio)}"
            if method == "adam":
                require(facet, ["adam_converged", "fit_loss_excess_adam"], "dropout")
                converged = int(facet["adam_converged"].astype(bool).sum())
                excess = fmt(float(np.median(facet["fit_loss_excess_adam"])))
                detail += f"; converged {converged}/{len(facet)}, median objective excess {excess}"
            outcomes[key] = dataclasses.replace(outcome, detail=detail)
    return outcomes


def networks(facet: pd.DataFrame) -> str:
    """How many networks stand behind a facet: "<rates> rates × <seeds> seeds"."""
    rates, seeds = facet["dropout_rate"].nunique(), facet["seed"].nunique()
    return f"{rates} rates × {seeds} seed{'s' if seeds != 1 else ''}"


CLAIMS = [
    Claim(
        "fig5.monotone",
        "Fig. 5",
        "Dropout: λ̂ rises with the dropout rate, Spearman ρ(rate, λ̂) over each facet's "
        "networks; headline lstsq (plotted), the authors' Adam fit beside it",
        ("dropout.members",),
        claim_fig5,
        source=SOURCE,
        ours=OURS,
    )
]
