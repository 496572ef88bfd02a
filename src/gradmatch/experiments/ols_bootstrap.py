"""Fig. 7A-E: Λ̂ from bootstrap resamples of one noisy OLS dataset, against Λ_t of the original X.

The canonical endpoint is the seed-56 problem (global block ``ols_problem``) at σ = ``noise_std``
(10), trained as in ``ols_endpoint`` (GD with the early-stopping replay ``early_stopping``); its
stop step t fixes the step of every bootstrap endpoint unless ``stop_step`` is set. Bootstrap
endpoint k of pool j resamples n rows with replacement (``torch.randint`` seeded with
``bootstrap_seed`` + 100 + j·10000 + k), runs GD on (X_b, y_b) from 0 for exactly t steps and
gives the target −∇L_b = (2/n)X_bᵀ(y_b − X_bθ_b). Endpoint 1 of the stack is the canonical one
(target from the original data), endpoints 2..M the first M − 1 resamples. Q̂_m is the
symmetric fit of Eq. 3 to the first m (minimum-norm while m·p < 55), and the curve is
‖Q̂_m − Λ_t‖_F with the zero baseline ‖Λ_t‖_F (the error of predicting Q = 0). The system is
only approximately consistent (each resample has its own Λ), hence a floor.

Values: the authors' ``ols_bootstrap_recovery`` (18519919) and plot composite.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gradmatch import settings as base
from gradmatch.core import theory
from gradmatch.data import synthetic
from gradmatch.experiments import _ols
from gradmatch.tables import Table, columns

KEYS = columns(
    ("preset", "str", "scale preset"),
    ("noise_std", "float64", "σ of the original data's noise ε"),
    ("stop_step", "int64", "t, the GD step of every endpoint", "steps"),
)
TABLES = {
    "theory": Table(
        KEYS + _ols.MATRIX_COLUMNS,
        key=("row", "col"),
        doc="Λ_t of paper Eq. 5 for the original design X, long (row, col, value)",
    ),
    "estimates": Table(
        KEYS + columns(("m", "int64", "endpoints stacked in the fit")) + _ols.MATRIX_COLUMNS,
        key=("m", "row", "col"),
        doc="Λ̂_m, the symmetric fit of Eq. 3 to the first m endpoints, at each m of heatmap_m",
    ),
    "distance": Table(
        KEYS
        + columns(
            ("m", "int64", "endpoints stacked in the fit"),
            ("distance_frobenius", "float64", "‖Λ̂_m − Λ_t‖_F"),
            ("zero_baseline_frobenius", "float64", "‖Λ_t‖_F, the error of predicting Q = 0"),
        ),
        key=("m",),
        doc="distance of Λ̂_m to Λ_t for m = 1..n_endpoints",
    ),
}
RESOURCES = base.Resources(threads=1, runtime=10, mem_mb=1000)

HeatmapM = Annotated[int, Field(ge=1)]


class Settings(base.Settings):
    """Fig. 7 A-E; defaults are the authors' code values."""

    ols_problem: base.OLSProblemBlock
    noise_std: float = Field(
        10.0,
        ge=0,
        description="σ of the original data (paper: 10, rule linear_regression_ols_noisy)",
    )
    stop_step: int | None = Field(
        None,
        ge=1,
        description="fixed t; null = the canonical endpoint's stop step (paper: null, t = 500)",
    )
    early_stopping: base.EarlyStopping = Field(
        base.EarlyStopping(max_epochs=500, patience=5, min_delta=0.0),
        description="the canonical run, as ols_endpoint (paper: max_epochs 500, patience 5, "
        "min_delta 0)",
    )
    n_endpoints: int = Field(
        100,
        ge=1,
        description="stacked endpoints: the canonical one + n_endpoints − 1 resamples (paper: 100)",
    )
    bootstrap_seed: int = Field(
        42, ge=0, description="resample k of pool j: bootstrap_seed + 100 + j·10000 + k (paper: 42)"
    )
    pool: int = Field(0, ge=0, description="pool index j (paper: 0)")
    heatmap_m: tuple[HeatmapM, ...] = Field(
        (1, 50, 100),
        min_length=1,
        description="m of the drawn Λ̂_m, panels B, C, D (paper: 1, 50, 100)",
    )
    preset: base.Preset

    @model_validator(mode="after")
    def _heatmap_within_stack(self):
        base.distinct("heatmap_m", self.heatmap_m)
        bad = [m for m in self.heatmap_m if m > self.n_endpoints]
        if bad:
            raise base.FieldError(
                "heatmap_m",
                self.heatmap_m,
                f"lists {bad} above n_endpoints = {self.n_endpoints}; allowed: m in 1 .. "
                "n_endpoints (lower heatmap_m or raise n_endpoints)",
            )
        return self


def bootstrap_endpoints(
    data: synthetic.OLSData, seeds: list[int], steps: int, step_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """θ_b at ``steps`` GD steps on each resample and its target 2(X_bᵀy_b − X_bᵀX_bθ_b)/n."""
    counts = synthetic.bootstrap_counts(seeds, data.X.shape[0])
    grams = theory.resampled_grams(counts, data.X)
    moments = theory.resampled_moments(counts, data.X, data.y)
    thetas = theory.gd_iterate(grams, moments, steps, step_size)
    return thetas, theory.mse_target(grams, moments, thetas)


@_ols.single_threaded_blas
def run(settings: Settings) -> dict[str, pd.DataFrame]:
    """Tables ``theory`` (Λ_t), ``estimates`` (Λ̂_m at heatmap_m) and ``distance`` (per m)."""
    step_size = settings.ols_problem.step_size
    canonical = _ols.canonical_endpoint(
        settings.ols_problem, settings.noise_std, settings.early_stopping
    )
    t = canonical.stop_step if settings.stop_step is None else int(settings.stop_step)
    data = canonical.problem
    theta0 = (
        canonical.theta
        if t == canonical.stop_step
        else theory.gd_iterate(data.gram, data.moment[None, :], t, step_size)[0]
    )
    seeds = _ols.pool_seeds(settings.bootstrap_seed, settings.pool, settings.n_endpoints - 1)
    thetas, targets = bootstrap_endpoints(data, seeds, t, step_size)
    thetas = np.vstack([theta0, thetas])
    targets = np.vstack([_ols.target(data, theta0), targets])
    lam = theory.early_stopping_penalty(data.X, t, step_size)
    keys = {"preset": settings.preset, "noise_std": settings.noise_std, "stop_step": t}
    estimates = [
        _ols.matrix_frame(_ols.fit_symmetric(thetas[:m], targets[:m]), **keys, m=m)
        for m in sorted(set(settings.heatmap_m))
    ]
    distances = _ols.distance_curve(thetas, targets, lam)
    distance = pd.DataFrame(
        {
            **keys,
            "m": np.arange(1, len(distances) + 1),
            "distance_frobenius": distances,
            "zero_baseline_frobenius": np.linalg.norm(lam),
        }
    )
    return {
        "theory": TABLES["theory"].frame(_ols.matrix_frame(lam, **keys)),
        "estimates": TABLES["estimates"].frame(pd.concat(estimates, ignore_index=True)),
        "distance": TABLES["distance"].frame(distance),
    }
