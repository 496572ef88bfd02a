"""Shared pieces of the OLS early-stopping analyses (Figures 4 and 7); not a CLI subcommand.

Gradient descent on (1/2n)‖y − Xθ‖² from θ_0 = 0 with step ε (paper H.3):

    θ_{t+1} = θ_t + ε Xᵀ(y − Xθ_t)/n = θ_t + ε (b − Aθ_t),   A = XᵀX/n,  b = Xᵀy/n,

batched over endpoints (A of shape (p, p) shared, or (K, p, p) one per bootstrap resample).
The monitored loss is the mean squared error (1/n)‖y − Xθ‖², written as
L_min + (θ − θ_ols)ᵀA(θ − θ_ols) so that tiny late decreases are not lost to cancellation.
Early stopping replays Lightning's ``EarlyStopping(mode="min")`` over that trace.
Λ_t is paper Eq. 5 (``gradmatch.core.theory.early_stopping_penalty``); Q̂ is the symmetric
gradient-matching fit of Eq. 3 stacked over endpoints (``SymQuadratic``), with the target
−∇L = (2/n)Xᵀ(y − Xθ) of the mean squared error without ½, so that Q̂ = Λ_t when exact.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from gradmatch.core.estimators import match_gradients
from gradmatch.core.regularizers import SymQuadratic
from gradmatch.core.theory import early_stopping_penalty
from gradmatch.data.synthetic import OLSProblem, sample_ols

SEED_STRIDE = 10_000  # the authors' spacing between pools of endpoint seeds
ENDPOINT_SEED_OFFSET = 100  # endpoint k of pool j: seed + 100 + j·10000 + k


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


def check_positive(section: str, **values: float) -> None:
    """Raise ValueError naming ``section.key`` for every value that is not > 0."""
    for key, value in values.items():
        if not value > 0:
            raise ValueError(f"{section}.{key} must be > 0, got {value!r}")


def check_early_stopping(section: str, max_steps: int, patience: int, min_delta: float) -> None:
    """Validate early-stopping settings, naming the key that is wrong."""
    check_positive(section, max_steps=max_steps, patience=patience)
    if min_delta < 0:
        raise ValueError(
            f"{section}.min_delta must be >= 0 (0 = any decrease counts), got {min_delta}"
        )


def gd_path(gram: np.ndarray, moment: np.ndarray, steps: int, step_size: float) -> np.ndarray:
    """Iterates θ_0..θ_steps of θ_{t+1} = θ_t + ε(b − Aθ_t) from 0, shape (steps + 1, K, p).

    ``gram`` A is (p, p) or (K, p, p); ``moment`` b is (K, p).
    """
    path = np.zeros((steps + 1, *moment.shape))
    for step in range(steps):
        path[step + 1] = path[step] + step_size * (moment - _apply(gram, path[step]))
    return path


def gd_iterate(gram: np.ndarray, moment: np.ndarray, steps: int, step_size: float) -> np.ndarray:
    """θ_steps alone (no stored path), same update as :func:`gd_path`, shape of ``moment``."""
    theta = np.zeros_like(moment)
    for _ in range(steps):
        theta = theta + step_size * (moment - _apply(gram, theta))
    return theta


def _apply(gram: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    if gram.ndim == 2:
        return thetas @ gram.T
    return np.einsum("kij,kj->ki", gram, thetas)


def mse_path(path: np.ndarray, problems: list[OLSProblem]) -> np.ndarray:
    """(1/n)‖y_k − Xθ‖² along ``path`` (T + 1, K, p) for the K problems; shape (T + 1, K).

    Written as L_min,k + (θ − θ_ols,k)ᵀA(θ − θ_ols,k), equal to the residual form.
    """
    losses = np.empty(path.shape[:2])
    for k, problem in enumerate(problems):
        ols, *_ = np.linalg.lstsq(problem.X, problem.y, rcond=None)
        floor = float(np.mean((problem.y - problem.X @ ols) ** 2))
        offset = path[:, k, :] - ols
        losses[:, k] = floor + np.einsum("ti,ij,tj->t", offset, problem.gram, offset)
    return losses


def early_stopping_steps(losses: np.ndarray, patience: int, min_delta: float) -> np.ndarray:
    """Replay Lightning ``EarlyStopping(mode="min", patience, min_delta)`` over loss traces.

    ``losses`` is (T + 1,) or (T + 1, K): row e is the loss at θ_e, which Lightning monitors at
    the end of epoch e (before that epoch's update). An epoch improves when
    loss < best − min_delta; after ``patience`` epochs in a row without improvement training
    stops at the end of epoch e, leaving θ_{e+1}. Returns that step e + 1 per trace, or T when
    the callback never fires (the authors' ``callback_stop_step``).
    """
    traces = np.asarray(losses, dtype=np.float64)
    single = traces.ndim == 1
    traces = traces[:, None] if single else traces
    n_steps = traces.shape[0] - 1
    best = np.full(traces.shape[1], np.inf)
    wait = np.zeros(traces.shape[1], dtype=int)
    stop = np.full(traces.shape[1], n_steps)
    running = np.ones(traces.shape[1], dtype=bool)
    for epoch in range(n_steps):
        improved = traces[epoch] < best - min_delta
        best = np.where(running & improved, traces[epoch], best)
        wait = np.where(improved, 0, wait + 1)
        fired = running & (wait >= patience)
        stop[fired] = epoch + 1
        running &= ~fired
        if not running.any():
            break
    return int(stop[0]) if single else stop


@dataclass(frozen=True)
class Endpoint:
    """One early-stopped fit: its problem, stop step t and weights θ̂ = θ_t."""

    problem: OLSProblem
    stop_step: int
    theta: np.ndarray
    final_loss: float


def train_endpoint(
    problem: OLSProblem, step_size: float, max_steps: int, patience: int, min_delta: float
) -> Endpoint:
    """GD for up to ``max_steps`` steps, stopped by the early-stopping replay."""
    path = gd_path(problem.gram, problem.moment[None, :], max_steps, step_size)
    losses = mse_path(path, [problem])[:, 0]
    stop = early_stopping_steps(losses, patience, min_delta)
    return Endpoint(problem, stop, path[stop, 0].copy(), float(losses[stop]))


def canonical_endpoint(settings, noise_std: float) -> Endpoint:
    """The single endpoint of Fig. 4C / 7 on the seed-``seed`` problem with noise σ = ``noise_std``.

    ``settings`` carries seed, n_samples, n_features, beta_scale, step_size, max_epochs,
    patience and min_delta (the authors' single-endpoint Lightning run).
    """
    problem = sample_ols(
        settings.seed, settings.n_samples, settings.n_features, noise_std, settings.beta_scale
    )
    return train_endpoint(
        problem, settings.step_size, settings.max_epochs, settings.patience, settings.min_delta
    )


def target(problem: OLSProblem, theta: np.ndarray) -> np.ndarray:
    """−∇L = (2/n)Xᵀ(y − Xθ) for the mean squared error without ½ (estimator convention)."""
    return 2.0 * (problem.moment - theta @ problem.gram.T)


def fit_symmetric(thetas: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Q̂ from stacked endpoints: least squares of 2Qθ_k = −∇L_k over symmetric Q (Eq. 3).

    With fewer than p(p+1)/2 equations the minimum-norm solution is returned (Fig. 7 at m = 1).
    """
    fit = match_gradients(SymQuadratic(), thetas, targets, allow_underdetermined=True)
    return fit.params["Q"]


def theory(X: np.ndarray, steps: int, step_size: float) -> np.ndarray:
    """Λ_t of paper Eq. 5 for the design X."""
    return early_stopping_penalty(X, int(steps), step_size)


def distance_curve(thetas: np.ndarray, targets: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """‖Q̂_m − reference‖_F for m = 1..len(thetas), Q̂_m fitted on the first m endpoints."""
    return np.array(
        [
            np.linalg.norm(fit_symmetric(thetas[:m], targets[:m]) - reference)
            for m in range(1, len(thetas) + 1)
        ]
    )


def matrix_frame(matrix: np.ndarray, **keys) -> pd.DataFrame:
    """A (p, p) matrix as a long table (row, col, value) plus constant key columns."""
    rows, cols = np.indices(matrix.shape)
    frame = pd.DataFrame(
        {"row": rows.ravel(), "col": cols.ravel(), "value": matrix.ravel().astype(np.float64)}
    )
    for name, value in keys.items():
        frame.insert(len(frame.columns) - 3, name, value)
    return frame
