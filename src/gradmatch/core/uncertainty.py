"""Standard errors and intervals of gradient-matching coefficients.

Eq. 3 is the linear least-squares problem min_c ‖A c − b‖² over the N stacked coordinates, with
the estimator ĉ = (AᵀA)⁻¹Aᵀb. Treating the coordinates as independent observations with
unequal variances (the targets' noise differs across parameters), its covariance is estimated by
the HC1 heteroskedasticity-robust sandwich

    V̂ = N/(N − k) · (AᵀA)⁻¹ Aᵀ diag(r²) A (AᵀA)⁻¹,   r = A ĉ − b,

with k the number of coefficients, SE_i = √V̂_ii and the normal 95 % interval ĉ_i ± 1.96 SE_i.
The assumption that the coordinates are independent is the weak point: gradient noise is
correlated across parameters (Appendix B's error covariance), so the intervals can be too
narrow; :func:`bootstrap_batches` resamples data batches instead and keeps that correlation.

Appendix B's *effective parameter count* (:func:`effective_parameter_count`) is our reading of
B.1, whose symbols are lost from the paper text we have. What survives: the error of Λ̂ scales
with the number of coefficients over an effective parameter count, "analogous to effective
sample size", which is the number of stacked equations N deflated by an inflation factor κ,
"the largest eigenvalue of [the error covariance] when restricted to the column space of the
regularizer gradient design matrix", equal to 1 for uncorrelated errors; doubling the number of
independent endpoints doubles it. We therefore compute, from samples e_s of the endpoint
gradient error (e.g. residuals at several seeds, or per-batch targets minus their mean),

    C = Σ̂ / (tr Σ̂ / N)   (the error covariance at unit mean variance),
    κ = λ_max(Qᵀ C Q)     (Q an orthonormal basis of the columns of A),
    N_eff = N / κ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "HC1",
    "Z95",
    "BootstrapFit",
    "bootstrap_batches",
    "effective_parameter_count",
    "hc1",
    "hc1_stderr",
    "not_available",
]

Z95 = 1.959963984540054  # the 97.5 % quantile of the standard normal

HC1 = (
    "HC1 sandwich N/(N−k)·(AᵀA)⁻¹Aᵀdiag(r²)A(AᵀA)⁻¹ over the N stacked coordinates, "
    "coordinates independent with unequal variances; 95 % interval ĉ ± 1.96·SE (normal)"
)


def not_available(size: int, reason: str) -> tuple[np.ndarray, str]:
    """NaN standard errors of ``size`` coefficients (a zero-memory view) and the reason."""
    return np.broadcast_to(np.float64(np.nan), (size,)), f"not available: {reason}"


def hc1_stderr(gram: np.ndarray, meat: np.ndarray, n_equations: int) -> np.ndarray:
    """√diag of the HC1 sandwich from AᵀA (``gram``) and Aᵀdiag(r²)A (``meat``), k × k."""
    gram = np.asarray(gram, dtype=np.float64)
    k = gram.shape[0]
    bread = np.linalg.inv(gram)
    covariance = bread @ np.asarray(meat, dtype=np.float64) @ bread
    covariance *= n_equations / (n_equations - k)
    return np.sqrt(np.clip(np.diag(covariance), 0.0, None))


def hc1(gram: np.ndarray, meat: np.ndarray, n_equations: int) -> tuple[np.ndarray, str]:
    """(standard errors, method) of :func:`hc1_stderr`; NaN with the reason when AᵀA is singular
    in floating point although the solver judged the design full rank (e.g. two design columns
    equal up to a scale, as ElasticNet's 2θ and θ/β when every |θ| < β)."""
    try:
        return hc1_stderr(gram, meat, n_equations), HC1
    except np.linalg.LinAlgError:
        return not_available(np.shape(gram)[0], "AᵀA is numerically singular")


def sandwich_or_reason(
    n_equations: int, n_unknowns: int, rank: int, moments: Callable[[], tuple]
) -> tuple[np.ndarray, str]:
    """(standard errors, method) of a least-squares fit of ``n_unknowns`` coefficients to
    ``n_equations`` stacked equations with design rank ``rank``: NaN with the reason when Λ is
    not identified (rank < k) or no residual degrees of freedom are left (N ≤ k); otherwise
    :func:`hc1` of ``moments()`` = (AᵀA, Aᵀdiag(r²)A), computed only then."""
    if rank < n_unknowns:
        return not_available(n_unknowns, f"Λ not identified (rank {rank} < k = {n_unknowns})")
    if n_equations <= n_unknowns:
        return not_available(
            n_unknowns, f"no residual degrees of freedom (N = {n_equations} <= k = {n_unknowns})"
        )
    gram, meat = moments()
    return hc1(gram, meat, n_equations)


def effective_parameter_count(design: Any, error_samples: Any) -> tuple[float, float]:
    """(N_eff, κ) of Appendix B as read in the module docstring: ``design`` the stacked A
    (N × k), ``error_samples`` (S × N) samples of the endpoint gradient error (S ≥ 2, centred
    here). Σ̂ is never formed: Qᵀ Σ̂ Q = (QᵀEᵀ)(EQ)/(S − 1) and tr Σ̂ = ‖E‖²_F/(S − 1)."""
    design = np.asarray(design, dtype=np.float64)
    errors = np.atleast_2d(np.asarray(error_samples, dtype=np.float64))
    n_equations = design.shape[0]
    if errors.shape[1] != n_equations or errors.shape[0] < 2:
        raise ValueError(
            f"error_samples must be (S >= 2, N = {n_equations}), got shape {errors.shape}"
        )
    errors = errors - errors.mean(axis=0)
    total = float(np.sum(errors**2))
    if total == 0:
        raise ValueError("error_samples have no variance: κ is undefined")
    basis, _ = np.linalg.qr(design)
    projected = errors @ basis  # S × k
    restricted = projected.T @ projected / total * n_equations
    kappa = float(np.linalg.eigvalsh(restricted)[-1])
    return n_equations / kappa, kappa


@dataclasses.dataclass(frozen=True)
class BootstrapFit:
    """Bootstrap over data batches: ``replicates`` (n_boot, k) coefficients, their standard
    deviation ``stderr`` and the percentile interval ``low``/``high`` at ``level``."""

    replicates: np.ndarray
    stderr: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float


def bootstrap_batches(
    family: Any,
    theta: Any,
    batch_targets: Sequence[Any],
    *,
    batch_sizes: Sequence[int] | None = None,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    method: str = "lstsq",
) -> BootstrapFit:
    """Resample the B per-batch targets −∇L_b(θ̂) with replacement and refit each replicate.

    A replicate's target is the mean of its B drawn batch targets, weighted by ``batch_sizes``
    when given (the full-data gradient of a mean loss is Σ_b n_b ∇L_b / Σ_b n_b). The spread of
    the refitted coefficients keeps the correlation of the gradient noise across coordinates,
    which the HC1 error of :class:`~gradmatch.core.estimators.Fit` ignores; it assumes the
    batches are exchangeable (i.i.d. rows split at random). ``theta`` is one endpoint (p,).
    """
    from gradmatch.core.estimators import match_gradients

    targets = np.stack([np.asarray(_host(t), dtype=np.float64).reshape(-1) for t in batch_targets])
    n_batches = targets.shape[0]
    if n_batches < 2:
        raise ValueError(f"bootstrap_batches needs at least 2 batch targets, got {n_batches}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    weights = np.ones(n_batches) if batch_sizes is None else np.asarray(batch_sizes, float)
    if weights.shape != (n_batches,) or np.any(weights <= 0):
        raise ValueError(
            f"batch_sizes must hold {n_batches} positive sizes (one per batch target), "
            f"got {batch_sizes!r}"
        )
    rng = np.random.default_rng(seed)
    replicates = []
    for _ in range(int(n_boot)):
        draw = rng.integers(0, n_batches, size=n_batches)
        target = weights[draw] @ targets[draw] / weights[draw].sum()
        fit = match_gradients(family, theta, target, method=method)
        replicates.append(np.asarray(fit.coefficients, dtype=np.float64))
    values = np.array(replicates)
    tail = 100 * (1 - level) / 2
    return BootstrapFit(
        replicates=values,
        stderr=values.std(axis=0, ddof=1),
        low=np.percentile(values, tail, axis=0),
        high=np.percentile(values, 100 - tail, axis=0),
        level=level,
    )


def _host(values: Any) -> Any:
    return values.detach().cpu().numpy() if hasattr(values, "detach") else values
