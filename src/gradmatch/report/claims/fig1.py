"""Figure 1 (Section 2.1, Appendix H.1): the ridge illustration.

Paper: at the ridge minimiser θ_ridge of MSE + λθ² the gradient arrows of the penalty and of the
loss are equal and opposite (the stationarity condition, Eq. 1), so gradient matching (Eq. 3)
must return the λ that made θ_ridge.
"""

from __future__ import annotations

import pandas as pd

from gradmatch.report.claims.outcomes import Outcome, require, ridge_recovery
from gradmatch.report.claims.registry import Claim

SOURCE = (
    "App. H.1 (Fig. 1): “gradient arrows at θ_ridge confirm the equal-and-opposite "
    "stationarity condition”; Sec. 2.1: with a known regularizer “we should recover estimates "
    "from (3) that exactly match theory”."
)
OURS = (
    "the tolerance 1e-8 on the relative error: “exactly” read in double precision, with room "
    "for the rounding of the closed-form minimiser."
)


def claim_ridge(arrows: pd.DataFrame) -> Outcome:
    """App. H.1, Fig. 1: "gradient arrows at θ_ridge confirm the equal-and-opposite stationarity
    condition" — λ̂ from θ_ridge and −∇L(θ_ridge) (Eq. 3) equals the λ that made θ_ridge.

    Criterion (ours): relative error ≤ 1e-8, "exactly" in double precision. Reads
    ``ridge_stationarity.arrows`` (the ``grad_mse`` arrow: θ and the slope of the loss).
    """
    require(arrows, ["arrow", "theta", "slope", "penalty_strength"], "ridge_arrows")
    loss_side = arrows[arrows["arrow"] == "grad_mse"]
    if len(loss_side) != 1:
        raise ValueError("ridge_arrows: expected exactly one row with arrow == 'grad_mse'")
    row = loss_side.iloc[0]
    return ridge_recovery([row["theta"]], [-row["slope"]], float(row["penalty_strength"]))


CLAIMS = [
    Claim(
        "ridge.exact",
        "Fig. 1",
        "At a ridge minimiser, gradient matching returns the ridge λ exactly (relative error)",
        ("ridge_stationarity.arrows",),
        claim_ridge,
        source=SOURCE,
        ours=OURS,
    )
]
