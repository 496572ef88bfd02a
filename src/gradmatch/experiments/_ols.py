"""Plumbing shared by the OLS analyses of Figures 4 and 7; not a CLI subcommand, holds no science.

The science lives lower: the data-generating process and the bootstrap draws in
:mod:`gradmatch.data.synthetic`; gradient descent in the moment form, its target
−∇L = 2(b − Aθ), the loss along a path, the Lightning early-stopping replay and Λ_t of paper
Eq. 5 in :mod:`gradmatch.core.theory`; the symmetric gradient-matching fit of Eq. 3 in
:mod:`gradmatch.core.estimators`. Here: the BLAS thread limiter, the authors' endpoint-seed
bookkeeping, the canonical early-stopped endpoint (data + GD + replay), the stacked fit and its
distance curve, and the long (row, col, value) layout of a matrix table.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from gradmatch import settings as base
from gradmatch.core import theory
from gradmatch.core.estimators import UnderdeterminedWarning, match_gradients
from gradmatch.core.regularizers import SymQuadratic
from gradmatch.data import synthetic
from gradmatch.tables import columns

SEED_STRIDE = 10_000  # the authors' spacing between pools of endpoint seeds
ENDPOINT_SEED_OFFSET = 100  # endpoint k of pool j: seed + 100 + j·10000 + k

# the long layout of a (p, p) matrix: the last three columns of every matrix table
MATRIX_COLUMNS = columns(
    ("row", "int64", "row index i of the matrix entry"),
    ("col", "int64", "column index j of the matrix entry"),
    ("value", "float64", "the matrix entry (i, j)"),
)


def single_threaded_blas(function: Callable) -> Callable:
    """Run ``function`` with one BLAS thread.

    These problems are tiny (p = 10); once torch is imported, OpenBLAS threads competing with
    torch's OpenMP threads made one 1000×55 ``lstsq`` take ~1 s instead of ~1 ms on 2 cores.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return wrapper


# ---- endpoint seeds -----------------------------------------------------------------------------


def pool_seeds(base_seed: int, pool: int, count: int) -> list[int]:
    """base_seed + 100 + pool·10000 + k for k = 0..count−1 (the authors' endpoint seeds)."""
    start = base_seed + ENDPOINT_SEED_OFFSET + pool * SEED_STRIDE
    return [start + k for k in range(count)]


def endpoint_problems(
    problem: base.OLSProblem, noise_std: float, seeds: list[int]
) -> list[synthetic.OLSData]:
    """One problem per seed on the shared design X of ``problem.seed``: fresh β_k, then ε_k."""
    X = synthetic.sample_ols(problem, 0.0).X
    return [synthetic.resample_response(X, seed, noise_std, problem.beta_scale) for seed in seeds]


# ---- the canonical early-stopped endpoint -------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One early-stopped fit: its problem, stop step t, weights θ̂ = θ_t and loss there."""

    problem: synthetic.OLSData
    stop_step: int
    theta: np.ndarray
    final_loss: float


def train_endpoint(
    data: synthetic.OLSData, step_size: float, stopping: base.EarlyStopping
) -> Endpoint:
    """GD for up to ``stopping.max_epochs`` steps, stopped by the early-stopping replay."""
    path = theory.gd_path(data.gram, data.moment[None, :], stopping.max_epochs, step_size)
    losses = theory.mse_path(path, data.X, data.y[None, :])[:, 0]
    stop = theory.early_stopping_steps(losses, stopping.patience, stopping.min_delta)
    return Endpoint(data, stop, path[stop, 0].copy(), float(losses[stop]))


def canonical_endpoint(
    problem: base.OLSProblem, noise_std: float, stopping: base.EarlyStopping
) -> Endpoint:
    """The single endpoint of Fig. 4C / 7 on ``problem`` at noise σ = ``noise_std`` (the
    authors' single-endpoint Lightning run)."""
    return train_endpoint(synthetic.sample_ols(problem, noise_std), problem.step_size, stopping)


def target(data: synthetic.OLSData, theta: np.ndarray) -> np.ndarray:
    """−∇L = (2/n)Xᵀ(y − Xθ) of ``data`` at ``theta`` (:func:`gradmatch.core.theory.mse_target`)."""
    return theory.mse_target(data.gram, data.moment, theta)


# ---- the stacked symmetric fit ------------------------------------------------------------------


def fit_symmetric(thetas: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Q̂ from stacked endpoints: least squares of 2Qθ_k = −∇L_k over symmetric Q (Eq. 3).

    With m < p endpoints the stacked design has rank 55 − (p−m)(p−m+1)/2 < p(p+1)/2 and the
    minimum-norm solution is returned (Fig. 7 at m = 1, the distance curves for m < p): that is
    the intended estimate there, so the estimator's UnderdeterminedWarning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnderdeterminedWarning)
        fit = match_gradients(SymQuadratic(), thetas, targets, allow_underdetermined=True)
    return fit.params["Q"]


def distance_curve(thetas: np.ndarray, targets: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """‖Q̂_m − reference‖_F for m = 1..len(thetas), Q̂_m fitted on the first m endpoints."""
    return np.array(
        [
            np.linalg.norm(fit_symmetric(thetas[:m], targets[:m]) - reference)
            for m in range(1, len(thetas) + 1)
        ]
    )


def matrix_frame(matrix: np.ndarray, **keys) -> pd.DataFrame:
    """A (p, p) matrix as a long table: the constant key columns, then (row, col, value)."""
    rows, cols = np.indices(matrix.shape)
    frame = pd.DataFrame(
        {"row": rows.ravel(), "col": cols.ravel(), "value": matrix.ravel().astype(np.float64)}
    )
    for name, value in keys.items():
        frame.insert(len(frame.columns) - 3, name, value)
    return frame
