"""Figure 7 (Appendix F): bootstrap recovery of the OLS early-stopping penalty.

Paper: the Figure 4 recovery repeated with bootstrap resamples of one training set instead of
independent data sets (σ = 10). The bootstrap system is only approximately consistent (Λ depends
on the resampled X_b), and the spread of the resampled θ scales as σ/√n, so "bootstrap recovery
beats reporting zero only when the OLS sampling variance is non-negligible relative to the
coefficient magnitude".
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from gradmatch.report.claims.outcomes import Outcome, at_least, beats_baseline, below, require
from gradmatch.report.claims.registry import Claim

SOURCE_BOOTSTRAP = (
    "App. F (Fig. 7): with bootstrap resamples the system is only approximately consistent "
    "and “exhibits a residual model-misspecification floor”; at σ = 10 the estimate is shown "
    "against “reporting zero” (panel E)."
)
SOURCE_SIGMA = (
    "App. F (Fig. 7F): “bootstrap recovery beats reporting zero only when the OLS sampling "
    "variance is non-negligible relative to the coefficient magnitude”."
)
OURS_BOOTSTRAP = (
    "the comparison at the largest m only (the end of panel E's curve); the paper compares the "
    "curve with the baseline by eye."
)
OURS_SIGMA = (
    "“non-negligible” read at the ends of the σ grid: the pool-mean ratio below 1 at the "
    "largest σ and at least 1 at the smallest."
)


def claim_fig7_bootstrap(distance: pd.DataFrame) -> Outcome:
    """Appendix F, Fig. 7E: at σ = 10 and the largest m, the bootstrap estimate Λ̂_m is closer to
    Λ_t than the zero baseline is: ‖Λ̂_m − Λ_t‖_F / ‖Λ_t‖_F < 1 (reading it at the largest m
    is ours, :data:`OURS_BOOTSTRAP`).

    Reads ``ols_bootstrap.distance``.
    """
    require(distance, ["m", "distance_frobenius", "zero_baseline_frobenius"], "ols_bootstrap")
    last = distance.loc[distance["m"].idxmax()]
    outcome = beats_baseline(last["distance_frobenius"], last["zero_baseline_frobenius"])
    return dataclasses.replace(outcome, detail=f"m = {int(last['m'])}")


def claim_fig7_sigma(sweep: pd.DataFrame) -> dict[str, Outcome]:
    """Appendix F, Fig. 7F: the bootstrap beats the zero baseline only when σ is large — the
    pool-mean ratio distance / zero baseline is < 1 at the largest σ and ≥ 1 at the smallest
    (the two ends of the grid are our reading, :data:`OURS_SIGMA`).

    Reads ``ols_bootstrap_sigma.sigma_sweep``.
    """
    require(sweep, ["noise_std", "distance_frobenius", "zero_baseline_frobenius"], "sigma_sweep")
    ratio = (
        (sweep["distance_frobenius"] / sweep["zero_baseline_frobenius"])
        .groupby(sweep["noise_std"])
        .mean()
    )
    if len(ratio) < 2:
        raise ValueError("sigma_sweep: needs at least two noise_std values")
    largest, smallest = ratio.index.max(), ratio.index.min()
    beats = dataclasses.replace(below(ratio[largest], 1.0), detail=f"σ = {largest:g}")
    fails = dataclasses.replace(at_least(ratio[smallest], 1.0), detail=f"σ = {smallest:g}")
    return {"beats_at_largest_sigma": beats, "no_gain_at_smallest_sigma": fails}


CLAIMS = [
    Claim(
        "fig7.bootstrap",
        "Fig. 7E",
        "Bootstrap resamples (σ = 10) recover Λ_t better than the zero baseline (ratio)",
        ("ols_bootstrap.distance",),
        claim_fig7_bootstrap,
        source=SOURCE_BOOTSTRAP,
        ours=OURS_BOOTSTRAP,
    ),
    Claim(
        "fig7.sigma",
        "Fig. 7F",
        "Bootstrap error / zero baseline: below 1 only when the noise σ is large",
        ("ols_bootstrap_sigma.sigma_sweep",),
        claim_fig7_sigma,
        source=SOURCE_SIGMA,
        ours=OURS_SIGMA,
    ),
]
