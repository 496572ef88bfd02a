"""Fig. 4D: distance of Λ̂_m to theory when every endpoint early-stops at its own step t_k.

Endpoints as in Panel B (shared X, endpoint k of pool j seeded seed + 100 + j·10000 + k), but each
runs GD for up to ``early_stopping.max_epochs`` steps (one full-batch step per epoch) and stops
where the Lightning early-stopping replay on its mean squared error (1/n)‖y_k − Xθ‖² fires
(``early_stopping.patience``, ``early_stopping.min_delta``). Each has its own Λ^(t_k)
(Eq. 5); the reference is their element-wise median Λ̄ per pool. For m = 1..M, Q̂_m is the
symmetric gradient-matching fit (Eq. 3) of the first m endpoints and the curve is ‖Q̂_m − Λ̄‖_F
(the authors' ``matrix_relative_distance`` is this absolute Frobenius norm).

Values: the authors' ``ols_full_matrix_recovery`` (600c43a5): 100 endpoints per pool, ≤ 2000
steps, patience 5, min_delta 1e-3 (the paper says no minimum improvement: set
``early_stopping.min_delta`` 0), 10 pools (the paper and Appendix I say 5: set n_pools 5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from gradmatch import settings as base
from gradmatch.core import theory
from gradmatch.experiments import _ols
from gradmatch.progress import progress_bar
from gradmatch.tables import Table, columns

KEYS = columns(
    ("preset", "str", "scale preset"),
    ("pool", "int64", "pool index j of the endpoint seeds"),
)
TABLES = {
    "endpoints": Table(
        KEYS
        + columns(
            ("endpoint", "int64", "endpoint k within the pool"),
            ("seed", "int64", "its generator seed: seed + 100 + pool·10000 + k"),
            ("stop_step", "int64", "t_k, where its early-stopping replay stopped GD", "steps"),
        ),
        key=("pool", "endpoint"),
        doc="one row per early-stopped endpoint",
    ),
    "distance": Table(
        KEYS
        + columns(
            ("m", "int64", "endpoints stacked in the fit"),
            ("distance_frobenius", "float64", "‖Q̂_m − Λ̄‖_F, Λ̄ the element-wise median Λ^(t_k)"),
            ("median_theory_norm_frobenius", "float64", "‖Λ̄‖_F"),
        ),
        key=("pool", "m"),
        doc="distance of Q̂_m to the pool's median theory for m = 1..n_endpoints",
    ),
}
RESOURCES = base.Resources(threads=1, runtime=20, mem_mb=2000)


class Settings(base.Settings):
    """Panel D; defaults are the authors' code values (``ols_full_matrix_recovery``, 600c43a5)."""

    ols_problem: base.OLSProblemBlock
    noise_std: float = Field(1.0, ge=0, description="σ of every endpoint's noise (paper: 1)")
    early_stopping: base.EarlyStopping = Field(
        base.EarlyStopping(max_epochs=2000, patience=5, min_delta=1e-3),
        description="per-endpoint early stopping on its training MSE, one GD step per epoch "
        "(code: max_epochs 2000, patience 5, min_delta 1e-3; paper: min_delta none, i.e. 0)",
    )
    n_endpoints: int = Field(
        100, ge=1, description="endpoints per pool; m runs 1..n_endpoints (paper: 100)"
    )
    n_pools: int = Field(
        10, ge=1, description="independent pools (code: 10; paper and Appendix I: 5)"
    )
    preset: base.Preset


def pool_endpoints(
    settings: Settings, pool: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list, list[int]]:
    """Stop steps, θ̂_k, targets −∇L_k, problems and seeds of one pool's early-stopped endpoints."""
    problem, stopping = settings.ols_problem, settings.early_stopping
    seeds = _ols.pool_seeds(problem.seed, pool, settings.n_endpoints)
    problems = _ols.endpoint_problems(problem, settings.noise_std, seeds)
    moments = np.stack([data.moment for data in problems])
    path = theory.gd_path(problems[0].gram, moments, stopping.max_epochs, problem.step_size)
    responses = np.stack([data.y for data in problems])
    losses = theory.mse_path(path, problems[0].X, responses)
    stops = theory.early_stopping_steps(losses, stopping.patience, stopping.min_delta)
    thetas = path[stops, np.arange(len(problems))]
    targets = np.stack(
        [_ols.target(data, theta) for data, theta in zip(problems, thetas, strict=True)]
    )
    return stops, thetas, targets, problems, seeds


def one_pool(settings: Settings, pool: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Endpoint table and distance curve of one pool."""
    stops, thetas, targets, problems, seeds = pool_endpoints(settings, pool)
    X, step_size = problems[0].X, settings.ols_problem.step_size
    by_step = {
        int(t): theory.early_stopping_penalty(X, int(t), step_size) for t in np.unique(stops)
    }
    median = np.median(np.stack([by_step[int(t)] for t in stops]), axis=0)
    distances = _ols.distance_curve(thetas, targets, median)
    keys = {"preset": settings.preset, "pool": pool}
    endpoints = pd.DataFrame(
        {**keys, "endpoint": np.arange(len(stops)), "seed": seeds, "stop_step": stops}
    )
    curve = pd.DataFrame(
        {
            **keys,
            "m": np.arange(1, len(distances) + 1),
            "distance_frobenius": distances,
            "median_theory_norm_frobenius": np.linalg.norm(median),
        }
    )
    return endpoints, curve


@_ols.single_threaded_blas
def run(settings: Settings) -> dict[str, pd.DataFrame]:
    """Tables ``endpoints`` (pool, endpoint, stop step) and ``distance`` (pool, m, ‖Q̂_m − Λ̄‖_F)."""
    pools = progress_bar(
        range(settings.n_pools), desc="ols_variable_stop: pools", unit="pools", leave=True
    )
    parts = [one_pool(settings, pool) for pool in pools]
    return {
        name: TABLES[name].frame(pd.concat([part[index] for part in parts], ignore_index=True))
        for index, name in enumerate(("endpoints", "distance"))
    }
