"""Figure 4 (Section 3, Appendix H.3): the implicit penalty of early stopping in OLS.

Paper (Eq. 5, after Ali et al. 2019): the gradient-descent iterate at step t solves a ridge
problem with the matrix penalty θᵀΛ_t θ. Panel B stacks endpoints of identical models trained on
distinct data sets at one fixed t and recovers the full symmetric Λ_t exactly; panel C fits a
diagonal diag(q) from a single endpoint and retrains with it; panel D lets every endpoint stop
on its own; panel E fits a scalar ridge λ̂_t along one trajectory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from gradmatch.report.claims.outcomes import (
    Outcome,
    decreases_with,
    recovery_from_m,
    require,
    retrain_equality,
    tracks_in_log,
)
from gradmatch.report.claims.registry import Claim


def _one_sigma(frame: pd.DataFrame, sigma: float, what: str) -> pd.DataFrame:
    require(frame, ["noise_std"], what)
    rows = frame[np.isclose(frame["noise_std"], sigma)]
    if rows.empty:
        raise ValueError(
            f"{what}: no rows with noise_std = {sigma:g}; the table has "
            f"{sorted(frame['noise_std'].unique())}"
        )
    return rows


def claim_fig4c_retrain(endpoint: pd.DataFrame) -> dict[str, Outcome]:
    """Section 3, Fig. 4C: "though the underparametrized [diagonal] version diverges from the
    matrix predicted by theory, using it as an explicit penalty in the regression without early
    stopping yields exactly the same weights" — retraining with diag(q̂) reproduces θ̂ (σ = 1),
    for the closed-form fit (to 1e-8) and the authors' Adam fit (to 1e-3); both tolerances
    are ours.

    Reads ``ols_endpoint.endpoint``.
    """
    rows = _one_sigma(endpoint, 1.0, "ols_endpoint")
    require(rows, ["theta_hat", "theta_retrained_lstsq", "theta_retrained_adam"], "ols_endpoint")
    detail = f"t = {int(rows['stop_step'].iloc[0])}" if "stop_step" in rows.columns else ""
    return {
        "lstsq": dataclasses.replace(
            retrain_equality(rows["theta_retrained_lstsq"], rows["theta_hat"], tol=1e-8),
            detail=detail,
        ),
        "adam": dataclasses.replace(
            retrain_equality(rows["theta_retrained_adam"], rows["theta_hat"], tol=1e-3),
            detail=detail,
        ),
    }


def claim_fig4b_from(m_min: int) -> Callable[[pd.DataFrame], Outcome]:
    """Section 3, Fig. 4B: "concatenating training endpoints from identical models trained on
    distinct datasets ... provides enough coverage to recover the full matrix exactly" — the
    relative Frobenius error of Λ̂_m is ≤ 1e-6 for every m ≥ ``m_min``.

    The registered claim uses ``m_min`` = p = 10: the m endpoints share X and t, so the stacked
    design of Qθ_k = −g_k has rank 55 − (p−m)(p−m+1)/2 and fixes Λ only from m = p on (m and
    the tolerance are ours; the paper gives neither).

    The returned claim reads ``ols_fixed_stop.error``.
    """

    def evaluate(error: pd.DataFrame) -> Outcome:
        return recovery_from_m(
            error, m_col="m", error_col="relative_frobenius_error", m_min=m_min, tol=1e-6
        )

    return evaluate


def claim_fig4d(distance: pd.DataFrame) -> Outcome:
    """Section 3 / H.3, Fig. 4D: "estimation error falls off steeply as a function of m" when
    each endpoint stops on its own — Spearman ρ of m and the pool mean of ‖Λ̂_m − Λ̄‖_F ≤ −0.8
    (the threshold is ours).

    Reads ``ols_variable_stop.distance``.
    """
    return decreases_with(distance, x_col="m", y_col="distance_frobenius", threshold=-0.8)


def claim_fig4e(trace: pd.DataFrame) -> dict[str, Outcome]:
    """Section 3, Fig. 4E: "our heuristic estimate decays over time, with an extremely tight match
    to theory" — λ̂_t stays within 0.1 decades of tr(Λ_t)/p at every checkpoint, for the exact
    and the Adam fit (the tolerance is ours).

    Reads ``ols_ridge_trace.ridge_trace``.
    """
    return {
        variant: tracks_in_log(
            trace,
            estimate_col=f"lambda_hat_{variant}",
            reference_col="lambda_theory",
            tol_decades=0.1,
        )
        for variant in ("lstsq", "adam")
    }


CLAIMS = [
    Claim(
        "fig4c.retrain",
        "Fig. 4C",
        "Retraining with the explicit penalty diag(q̂) reproduces the early-stopped θ̂ (σ = 1)",
        ("ols_endpoint.endpoint",),
        claim_fig4c_retrain,
        source="Sec. 3 (Fig. 4C): the diagonal estimate from one endpoint, “though the "
        "underparametrized version diverges from the matrix predicted by theory, using it as an "
        "explicit penalty in the regression without early stopping yields exactly the same "
        "weights”.",
        ours="the tolerances on max|θ̂^Λ − θ̂| / max|θ̂|: 1e-8 for the closed-form fit (“exactly” "
        "in double precision, with room for the p × p solve), 1e-3 for the authors' Adam fit, "
        "which stops by patience, not at the exact minimiser.",
    ),
    Claim(
        "fig4b.exact_from_p",
        "Fig. 4B",
        "Fixed t: the full symmetric Λ̂_m equals Λ_t once m ≥ p = 10 endpoints are stacked",
        ("ols_fixed_stop.error",),
        claim_fig4b_from(10),
        source="Sec. 3 (Fig. 4B): “concatenating training endpoints from identical models "
        "trained on distinct datasets ... provides enough coverage to recover the full matrix "
        "exactly”; App. F: the fixed-t system “reaches numerical recovery”.",
        ours="m ≥ p = 10, where the stacked design has full rank 55 − (p−m)(p−m+1)/2 = 55 (the "
        "paper gives no m); the tolerance 1e-6 on the relative Frobenius error: “exactly” for "
        "a least-squares solve of 10m equations in double precision.",
    ),
    Claim(
        "fig4d.decreasing",
        "Fig. 4D",
        "Own stop step per endpoint: ‖Λ̂_m − Λ̄‖_F falls as m grows (Spearman ρ on pool means)",
        ("ols_variable_stop.distance",),
        claim_fig4d,
        source="Sec. 3 (Fig. 4D): “estimation error falls off steeply as a function of m”; "
        "App. H.3: with its own stop step per endpoint, a “smooth decay” of the distance to the "
        "median theory.",
        ours="Spearman ρ(m, pool mean of the distance) ≤ −0.8 reads “falls off” as a strong "
        "monotone decrease; the paper states no number.",
    ),
    Claim(
        "fig4e.trace",
        "Fig. 4E",
        "Scalar ridge λ̂_t follows tr(Λ_t)/p at every checkpoint (max log10 gap)",
        ("ols_ridge_trace.ridge_trace",),
        claim_fig4e,
        source="Sec. 3 (Fig. 4E): “our heuristic estimate decays over time, with an extremely "
        "tight match to theory”, theory = tr(Λ_t)/p.",
        ours="“extremely tight” read as at most 0.1 decades (a factor 1.26) at every checkpoint: "
        "λ̂_t is the Rayleigh quotient θᵀΛ_tθ/θᵀθ, which falls below tr(Λ_t)/p late in training, "
        "when the eigenvalues of Λ_t spread; 0.1 decades leaves room for that gap.",
    ),
]
