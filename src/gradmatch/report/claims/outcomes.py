"""Verdicts and the generic comparisons the paper's claims are built from.

An :class:`Outcome` is one verdict: a measured value, the criterion it was compared with, and
whether it holds. The comparisons here are pure functions of arrays and DataFrames with explicit
column names; the figure modules (``fig1`` ... ``figS1``) bind them to the experiments' tables.
Nothing here reads a file.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from gradmatch.core.stats import spearman
from gradmatch.plots.numbers import fmt  # one format for figures, claims and text


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The verdict of one claim: ``measured`` compared with a threshold by ``criterion``.

    ``applicable`` is False for a row the claim cannot speak about (then ``passed`` is False
    and the verdict is n/a); ``dataset`` overrides the data set read from the input tables when
    one table mixes data sets (the long-horizon cases).
    """

    measured: float
    criterion: str
    passed: bool
    detail: str = ""
    applicable: bool = True
    dataset: str | None = None

    @property
    def verdict(self) -> str:
        if not self.applicable:
            return "n/a"
        return "pass" if self.passed else "FAIL"


def not_applicable(reason: str) -> Outcome:
    """A row that is listed but neither passes nor fails (measured NaN, criterion n/a)."""
    return Outcome(math.nan, "n/a", False, reason, applicable=False)


def at_most(measured: float, tolerance: float, *, unit: str = "") -> Outcome:
    """Pass when ``measured <= tolerance`` (a NaN measurement fails)."""
    value = float(measured)
    return Outcome(value, f"≤ {fmt(tolerance)}{unit}", bool(value <= tolerance))


def at_least(measured: float, threshold: float, *, unit: str = "") -> Outcome:
    """Pass when ``measured >= threshold`` (a NaN measurement fails)."""
    value = float(measured)
    return Outcome(value, f"≥ {fmt(threshold)}{unit}", bool(value >= threshold))


def below(measured: float, threshold: float, *, unit: str = "") -> Outcome:
    """Pass when ``measured < threshold`` strictly (a NaN measurement fails)."""
    value = float(measured)
    return Outcome(value, f"< {fmt(threshold)}{unit}", bool(value < threshold))


def require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise ValueError naming the missing columns of ``frame`` (or that it has no rows)."""
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(
            f"{what}: missing column(s) {missing}; the table has {list(frame.columns)}"
        )
    if frame.empty:
        raise ValueError(f"{what}: the table has no rows")


# ---------------------------------------------------------------------------------------------
# generic comparisons
# ---------------------------------------------------------------------------------------------


def ridge_recovery(
    theta: Sequence[float], neg_grad_loss: Sequence[float], lambda_true: float, tol: float = 1e-8
) -> Outcome:
    """Ridge R = λ‖θ‖² at a ridge minimiser: the least-squares λ̂ (Eq. 3) equals λ exactly.

    Runs the core estimator (``match_gradients`` with the ``Ridge`` family) on θ̂ and −∇L(θ̂);
    measured = |λ̂ − λ| / λ.
    """
    from gradmatch.core.estimators import match_gradients
    from gradmatch.core.regularizers import Ridge

    fit = match_gradients(Ridge(), np.asarray(theta, float), np.asarray(neg_grad_loss, float))
    lambda_hat = float(fit.params["lambda"])
    outcome = at_most(abs(lambda_hat - lambda_true) / abs(lambda_true), tol)
    return dataclasses.replace(outcome, detail=f"λ̂ = {lambda_hat:.6g}, λ = {lambda_true:.6g}")


def retrain_equality(
    theta_retrained: Sequence[float], theta_hat: Sequence[float], tol: float = 1e-4
) -> Outcome:
    """Retraining with the estimated explicit penalty reproduces the early-stopped weights.

    measured = max_j |θ̂^Λ_j − θ̂_j| / max_j |θ̂_j|.
    """
    retrained = np.asarray(theta_retrained, dtype=float)
    reference = np.asarray(theta_hat, dtype=float)
    if retrained.shape != reference.shape or reference.size == 0:
        raise ValueError(
            f"retrain_equality: θ̂^Λ has shape {retrained.shape}, θ̂ has {reference.shape}"
        )
    scale = float(np.max(np.abs(reference)))
    return at_most(float(np.max(np.abs(retrained - reference))) / scale, tol)


def recovery_from_m(
    frame: pd.DataFrame,
    *,
    m_col: str = "m",
    error_col: str = "relative_error",
    m_min: int = 6,
    tol: float = 1e-3,
) -> Outcome:
    """Full-matrix recovery at fixed t is exact once m ≥ ``m_min`` endpoints are stacked.

    measured = the largest ``error_col`` over rows with ``m_col`` ≥ ``m_min``.
    """
    require(frame, [m_col, error_col], "recovery_from_m")
    rows = frame[frame[m_col] >= m_min]
    if rows.empty:
        raise ValueError(
            f"recovery_from_m: no row with {m_col} >= {m_min}; largest is {frame[m_col].max()}"
        )
    outcome = at_most(float(rows[error_col].max()), tol)
    detail = f"m = {int(rows[m_col].min())}..{int(rows[m_col].max())}"
    return dataclasses.replace(outcome, detail=detail)


def decreases_with(
    frame: pd.DataFrame, *, x_col: str, y_col: str, threshold: float = -0.8
) -> Outcome:
    """``y_col`` falls as ``x_col`` grows: Spearman ρ of the per-x mean of y on x ≤ threshold."""
    require(frame, [x_col, y_col], "decreases_with")
    means = frame.groupby(x_col, sort=True)[y_col].mean()
    rho = spearman(means.index.to_numpy(dtype=float), means.to_numpy())
    outcome = at_most(rho, threshold)
    first, last = means.iloc[0], means.iloc[-1]
    return dataclasses.replace(
        outcome,
        detail=f"{y_col}: {first:.3g} at {x_col}={means.index[0]}, "
        f"{last:.3g} at {x_col}={means.index[-1]}",
    )


def tracks_in_log(
    frame: pd.DataFrame, *, estimate_col: str, reference_col: str, tol_decades: float = 0.1
) -> Outcome:
    """An estimate follows a reference on a log scale: max |log10(estimate / reference)|."""
    require(frame, [estimate_col, reference_col], "tracks_in_log")
    estimate = frame[estimate_col].to_numpy(dtype=float)
    reference = frame[reference_col].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.abs(np.log10(estimate / reference))
    measured = float(np.max(gap)) if np.all(np.isfinite(gap)) else math.inf
    return at_most(measured, tol_decades, unit=" decades")


def band_recovery(
    frame: pd.DataFrame,
    *,
    true_col: str,
    estimate_col: str,
    band: tuple[float, float],
    tol_decades: float = 0.5,
) -> Outcome:
    """Recovery in an intermediate band of true values: mean λ̂ per true λ within a tolerance.

    The estimate is averaged over every other grid axis and seed for each true value in
    ``band`` (inclusive); measured = the median over those values of |log10(mean λ̂ / λ)|.
    """
    require(frame, [true_col, estimate_col], "band_recovery")
    low, high = band
    inside = frame[(frame[true_col] >= low * (1 - 1e-9)) & (frame[true_col] <= high * (1 + 1e-9))]
    if inside.empty:
        raise ValueError(
            f"band_recovery: no {true_col} in [{low:g}, {high:g}]; the grid has "
            f"{sorted(frame[true_col].unique())}"
        )
    means = inside.groupby(true_col)[estimate_col].mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps = np.abs(np.log10(means.to_numpy(dtype=float) / means.index.to_numpy(dtype=float)))
    measured = float(np.median(gaps)) if np.all(np.isfinite(gaps)) else math.inf
    outcome = at_most(measured, tol_decades, unit=" decades")
    return dataclasses.replace(outcome, detail=f"{true_col} in [{low:g}, {high:g}]")


def increases_with(
    frame: pd.DataFrame, *, x_col: str, y_col: str, threshold: float = 0.8
) -> Outcome:
    """``y_col`` rises with ``x_col``: Spearman ρ of x and the per-x median of y ≥ threshold."""
    require(frame, [x_col, y_col], "increases_with")
    medians = frame.groupby(x_col, sort=True)[y_col].median()
    if len(medians) < 3:
        raise ValueError(
            f"increases_with: {len(medians)} distinct {x_col} value(s); a trend needs at least 3"
        )
    rho = spearman(medians.index.to_numpy(dtype=float), medians.to_numpy())
    return at_least(rho, threshold)


def loglog_slope(
    frame: pd.DataFrame, *, x_col: str, y_col: str, target: float = 1.0, tol: float = 0.25
) -> Outcome:
    """Least-squares slope of log y on log x (measured); pass when |slope − target| ≤ tol."""
    require(frame, [x_col, y_col], "loglog_slope")
    x = frame[x_col].to_numpy(dtype=float)
    y = frame[y_col].to_numpy(dtype=float)
    keep = (x > 0) & (y > 0)
    if np.unique(x[keep]).size < 2:
        raise ValueError(f"loglog_slope: fewer than two distinct positive {x_col} values")
    slope = float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])
    passed = bool(abs(slope - target) <= tol)
    dropped = int((~keep).sum())
    detail = f"{int(keep.sum())} runs" + (f", {dropped} non-positive dropped" if dropped else "")
    return Outcome(slope, f"{fmt(target)} ± {fmt(tol)}", passed, detail)


def beats_baseline(distance: float, baseline: float) -> Outcome:
    """An estimate beats predicting zero: measured = ‖Λ̂ − Λ‖_F / ‖Λ‖_F < 1."""
    if not baseline > 0:
        raise ValueError(f"beats_baseline: the zero baseline ‖Λ‖_F must be > 0, got {baseline}")
    return below(distance / baseline, 1.0)
