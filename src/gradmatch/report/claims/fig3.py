"""Figure 3 (Section 3, Appendix H.2): recovering an explicit (smoothed) elastic-net penalty.

Paper: deep ReLU networks trained with explicit λ1‖θ‖₁ (smoothed near zero, width β) + λ2‖θ‖²;
the recovered penalties follow the true ones at intermediate values. Very small penalties give
too little signal; large ones drive most weights into the quadratic zone |θ| < β of the
smoothing, where the penalty collapses to ≈ (λ1/(2β) + λ2)‖θ‖² and λ1, λ2 are not identifiable.
"""

from __future__ import annotations

import pandas as pd

from gradmatch.report.claims.outcomes import Outcome, band_recovery, require
from gradmatch.report.claims.registry import Claim

# The intermediate band of true penalties and the tolerance, fixed before any run. Below the
# band there is too little signal; above it most weights sit in the quadratic zone of h_β and
# λ1, λ2 are not identifiable (paper H.2).
BAND = (1e-3, 1e-1)
TOL_DECADES = 0.5


def claim_fig3(summary: pd.DataFrame) -> dict[str, Outcome]:
    """Section 3 / H.2, Fig. 3: "recovery is accurate at intermediate penalty values" — for
    cells with both true λ in :data:`BAND`, the mean λ̂ per true λ lies within
    :data:`TOL_DECADES` of the truth (median over the band), per coefficient and fit method.

    Reads ``elastic_net.summary``; a fit method that was not run (config
    ``elastic_net.fit_methods``) has no ``lambda_hat_<l1|l2>_<method>`` column and no row.
    """
    low, high = BAND
    require(summary, ["lambda_true_l1", "lambda_true_l2"], "elastic_net")
    in_band = summary[
        summary["lambda_true_l1"].between(low * (1 - 1e-9), high * (1 + 1e-9))
        & summary["lambda_true_l2"].between(low * (1 - 1e-9), high * (1 + 1e-9))
    ]
    outcomes = {}
    for method in ("adam", "lstsq"):
        for coefficient in ("l1", "l2"):
            column = f"lambda_hat_{coefficient}_{method}"
            if column not in summary.columns:
                continue  # this method was not run (config elastic_net.fit_methods)
            outcomes[f"{coefficient}_{method}"] = band_recovery(
                in_band if not in_band.empty else summary,
                true_col=f"lambda_true_{coefficient}",
                estimate_col=column,
                band=BAND,
                tol_decades=TOL_DECADES,
            )
    if not outcomes:
        raise ValueError("elastic_net: no lambda_hat_<l1|l2>_<adam|lstsq> column to check")
    return outcomes


CLAIMS = [
    Claim(
        "fig3.band",
        "Fig. 3",
        "Explicit elastic net: mean λ̂1, λ̂2 recover the truth for true λ1, λ2 in [1e-3, 1e-1]",
        ("elastic_net.summary",),
        claim_fig3,
    )
]
