"""Figure 5 (Section 3, Appendix H.4): the implicit ridge penalty of dropout.

Paper: deep ReLU classifiers on MNIST with dropout after hidden blocks 1..depth−1; a ridge
penalty λ‖θ‖² is fitted to each trained network by gradient matching. "The estimated penalty
increases monotonically with dropout rate across all architectures", most for narrow networks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from gradmatch.report.claims.outcomes import Outcome, increases_with, not_applicable, require
from gradmatch.report.claims.registry import Claim

THRESHOLD = 0.8  # Spearman ρ of rate vs median λ̂ per facet
METHODS = ("lstsq", "adam")  # lstsq first: the estimate the figure plots


def claim_fig5(members: pd.DataFrame) -> dict[str, Outcome]:
    """Section 3, Fig. 5: "the estimated penalty increases monotonically with dropout rate across
    all architectures" — per (depth, width) facet and fit, Spearman ρ of the dropout rate and
    the median λ̂ over seeds ≥ :data:`THRESHOLD`.

    One row per facet and fit (``d<depth>_w<width>_<lstsq|adam>``); a facet without any dropout
    layer (depth 1: the authors apply dropout after hidden blocks 1..depth−1 only) is listed as
    not applicable. Reads ``dropout.members``.
    """
    require(members, ["depth", "width", "dropout_rate", "has_dropout"], "dropout")
    methods = [m for m in METHODS if f"lambda_hat_{m}" in members.columns]
    if not methods:
        raise ValueError("dropout: no lambda_hat_lstsq or lambda_hat_adam column")
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
            outcome = increases_with(
                facet, x_col="dropout_rate", y_col=f"lambda_hat_{method}", threshold=THRESHOLD
            )
            seeds = facet["seed"].nunique() if "seed" in facet.columns else 1
            rates = facet["dropout_rate"].nunique()
            detail = f"{rates} rates × {seeds} seed{'s' if seeds != 1 else ''}"
            if method != "lstsq" and "lambda_hat_lstsq" in facet.columns:
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.median(facet[f"lambda_hat_{method}"] / facet["lambda_hat_lstsq"])
                detail += f"; median λ̂_{method}/λ̂_lstsq = {ratio:.3g}"
            outcomes[key] = dataclasses.replace(outcome, detail=detail)
    return outcomes


CLAIMS = [
    Claim(
        "fig5.monotone",
        "Fig. 5",
        "Dropout: λ̂ rises with the dropout rate, Spearman ρ(rate, median λ̂) per facet; "
        "headline lstsq (plotted), the authors' Adam fit beside it",
        ("dropout.members",),
        claim_fig5,
    )
]
