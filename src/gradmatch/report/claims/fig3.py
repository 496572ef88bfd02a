"""Figure 3 (Section 3, Appendix H.2): recovering an explicit (smoothed) elastic-net penalty.

Paper: deep ReLU networks trained with explicit λ1‖θ‖₁ (smoothed near zero, width β) + λ2‖θ‖²;
the recovered penalties follow the true ones at intermediate values. Very small penalties give
too little signal; large ones drive most weights into the quadratic zone |θ| < β of the
smoothing, where the penalty collapses to ≈ (λ1/(2β) + λ2)‖θ‖² and λ1, λ2 are not identifiable.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from gradmatch.report.claims.outcomes import Outcome, band_recovery, fmt, require
from gradmatch.report.claims.registry import Claim

# The intermediate band of true penalties and the tolerance, fixed before any run. Below the
# band there is too little signal; above it most weights sit in the quadratic zone of h_β and
# λ1, λ2 are not identifiable (paper H.2).
BAND = (1e-3, 1e-1)
TOL_DECADES = 0.5
SOURCE = (
    "Sec. 3 (Fig. 3): “for intermediate values of the penalty parameters, however, recovery is "
    "quite accurate”; very small penalties leave little signal and large ones reduce "
    "identifiability (also App. H.2)."
)
OURS = (
    "the band [1e-3, 1e-1] and the tolerance of half a decade, fixed before any run: the paper "
    "names no band, so the band leaves out the paper's grid value 1e-4 (too little signal) and "
    "1 and 10 (most weights in the quadratic zone of h_β); half a decade is half the grid "
    "spacing on the log axis, so a mean within it lies closer to its own true value than to a "
    "neighbouring one."
)


def claim_fig3(summary: pd.DataFrame) -> dict[str, Outcome]:
    """Section 3 / H.2, Fig. 3: "for intermediate values of the penalty parameters, however,
    recovery is quite accurate" — for cells with both true λ in :data:`BAND`, the mean λ̂ per
    true λ lies within :data:`TOL_DECADES` of the truth (median over the band), per coefficient
    and fit method. Band and tolerance are ours (:data:`OURS`).

    Reads ``elastic_net.summary``; a fit method that was not run (config
    ``elastic_net.fit_methods``: its ``lambda_hat_<l1|l2>_<method>`` column absent or all NaN)
    has no row. The ``l1_lstsq`` row's detail says why λ̂1_lstsq fails, per true λ1
    (:func:`lstsq_l1_explained`); the ``l1_nnls`` row's, in how many band cells λ̂1_nnls = 0.
    """
    low, high = BAND
    require(summary, ["lambda_true_l1", "lambda_true_l2"], "elastic_net")
    in_band = summary[
        summary["lambda_true_l1"].between(low * (1 - 1e-9), high * (1 + 1e-9))
        & summary["lambda_true_l2"].between(low * (1 - 1e-9), high * (1 + 1e-9))
    ]
    outcomes = {}
    # adam: the authors' fit, the one the paper's figure plots; lstsq: the exact minimiser of
    # Eq. 3; nnls: the same with λ ≥ 0, the exact estimator for a non-negative penalty (lstsq's
    # mean λ̂1 goes ≤ 0 at small λ1: benchmarks/results/fit_findings.md)
    for method in ("adam", "lstsq", "nnls"):
        for coefficient in ("l1", "l2"):
            column = f"lambda_hat_{coefficient}_{method}"
            if column not in summary.columns or summary[column].isna().all():
                continue  # this method was not run (config elastic_net.fit_methods)
            outcomes[f"{coefficient}_{method}"] = band_recovery(
                in_band if not in_band.empty else summary,
                true_col=f"lambda_true_{coefficient}",
                estimate_col=column,
                band=BAND,
                tol_decades=TOL_DECADES,
            )
    if not outcomes:
        raise ValueError("elastic_net: no lambda_hat_<l1|l2>_<adam|lstsq|nnls> column to check")
    if "l1_lstsq" in outcomes:
        detail = lstsq_l1_explained(summary, in_band)
        outcomes["l1_lstsq"] = dataclasses.replace(outcomes["l1_lstsq"], detail=detail)
    if "l1_nnls" in outcomes:
        zeros = int((in_band["lambda_hat_l1_nnls"] == 0).sum())
        detail = f"λ̂1 = 0 in {zeros} of {len(in_band)} cells in the band"
        outcomes["l1_nnls"] = dataclasses.replace(outcomes["l1_nnls"], detail=detail)
    return outcomes


# The elastic_net.summary columns that explain the lstsq λ̂1 (elastic_net.stationarity).
DIAGNOSTICS = (
    "lambda_hat_l1_lstsq",
    "loss_grad_norm",
    "grad_objective_norm",
    "l1_signal_norm",
    "l1_unique_signal",
    "l1_unique_noise",
    "share_inside_beta",
)
# u counts as no signal when ‖u‖ ≤ this × ‖h_β'(θ̂)‖ (l1_unique_signal / l1_signal_norm): the
# L1 column is then parallel to θ̂ to rounding (every weight inside |θ| < β gives ‖u‖ ≈ 1e-16).
VISIBLE = 1e-9


def lstsq_l1_diagnostics(summary: pd.DataFrame) -> pd.DataFrame:
    """Per true λ1 (over every λ2 and seed), why the least-squares λ̂1 fails.

    With the true λ the lstsq residual of Eq. 3 is ∇J(θ̂), J = L + λ1Σh_β + λ2Σθ², and
    λ̂1_lstsq = λ1 (1 − noise/signal), noise = uᵀ∇J/‖u‖ (``l1_unique_noise``), signal = λ1‖u‖
    (``l1_unique_signal``), u the part of h_β'(θ̂) orthogonal to θ̂; so λ̂1_lstsq ≤ 0 exactly
    where noise/signal ≥ 1. Columns: ``cells``, ``nonpositive`` (cells with λ̂1_lstsq ≤ 0),
    and the medians over the cells of ``stationarity`` (‖∇J‖/‖∇L‖), ``noise_to_signal`` (over
    the cells with a visible signal, ‖u‖ > :data:`VISIBLE` ‖h_β'(θ̂)‖; NaN when no cell has
    one: every weight inside |θ| < β) and ``inside_beta`` (share of weights with |θ̂| < β).
    """
    require(summary, ["lambda_true_l1", *DIAGNOSTICS], "elastic_net")
    cells = summary.assign(
        nonpositive=summary["lambda_hat_l1_lstsq"] <= 0,
        stationarity=summary["grad_objective_norm"] / summary["loss_grad_norm"],
        noise_to_signal=(summary["l1_unique_noise"] / summary["l1_unique_signal"]).where(
            summary["l1_unique_signal"] > VISIBLE * summary["l1_signal_norm"]
        ),
    )
    grouped = cells.groupby("lambda_true_l1", sort=True)
    return pd.DataFrame(
        {
            "cells": grouped.size(),
            "nonpositive": grouped["nonpositive"].sum().astype(int),
            "stationarity": grouped["stationarity"].median(),
            "noise_to_signal": grouped["noise_to_signal"].median(),
            "inside_beta": grouped["share_inside_beta"].median(),
        }
    )


def lstsq_l1_explained(summary: pd.DataFrame, in_band: pd.DataFrame) -> str:
    """The report's sentence on the lstsq λ̂1 (issue 15, item 3), from
    :func:`lstsq_l1_diagnostics` and the band's mean λ̂1_lstsq per true λ1."""
    means = in_band.groupby("lambda_true_l1", sort=True)["lambda_hat_l1_lstsq"].mean()
    band = ", ".join(f"{fmt(true)}: {fmt(mean)}" for true, mean in means.items())
    table = lstsq_l1_diagnostics(summary)
    rows = []
    for lambda1, row in table.iterrows():
        ratio = row["noise_to_signal"]
        ratio_text = "undefined (u = 0)" if np.isnan(ratio) else f"= {fmt(ratio)}"
        counts = f"{int(row['nonpositive'])} of {int(row['cells'])}"
        rows.append(
            f"λ1 = {fmt(lambda1)}: λ̂1 ≤ 0 in {counts} cells, "
            f"‖∇J‖/‖∇L‖ = {fmt(row['stationarity'])}, noise/signal {ratio_text}, "
            f"share |θ̂| < β = {fmt(row['inside_beta'])}"
        )
    total = f"{int(table['nonpositive'].sum())} of {int(table['cells'].sum())}"
    return (
        f"band mean λ̂1 per true λ1: {band}; per true λ1 (medians over its cells): "
        + "; ".join(rows)
        + f"; λ̂1 ≤ 0 in {total} cells in all"
    )


CLAIMS = [
    Claim(
        "fig3.band",
        "Fig. 3",
        "Explicit elastic net: mean λ̂1, λ̂2 recover the truth for true λ1, λ2 in [1e-3, 1e-1]",
        ("elastic_net.summary",),
        claim_fig3,
        source=SOURCE,
        ours=OURS,
    )
]
