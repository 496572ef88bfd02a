"""Fig. 4B: the full symmetric Λ̂ from m endpoints all stopped at the same step t.

All endpoints share the seed-56 design X (global block ``ols_problem``). Endpoint k of pool j
draws β_k = 3·N(0, I) and then ε_k = σ·N(0, I) from a generator seeded with
seed + 100 + j·10000 + k, and runs GD θ_{s+1} = θ_s + εXᵀ(y_k − Xθ_s)/n from 0 for exactly t
steps (t = the canonical stop step, the single endpoint at σ = ``noise_std`` early-stopped by
``early_stopping`` as in ``ols_endpoint``, unless ``stop_step`` is set). Stacking the equations
2Qθ_k = (2/n)Xᵀ(y_k − Xθ_k) (paper Eq. 3 with R = θᵀQθ, Section 2.2) gives a consistent system,
because every θ_k solves the same ridge problem with Λ_t (Eq. 5); Q has p(p+1)/2 = 55 unknowns,
but the stacked design has rank 55 − (p−m)(p−m+1)/2 (a symmetric Q on the complement of
span{θ_k} is invisible), so Q̂_m = Λ_t exactly once m ≥ p = 10, not once m·p ≥ 55.

Values: the authors' ``ols_full_matrix_recovery --stop-step t`` (600c43a5). Their newest plot
draws Q̂ from the first 10 endpoints of pool 0 (``heatmap_endpoints``); an older one used 100.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gradmatch import settings as base
from gradmatch.core import theory
from gradmatch.experiments import _ols
from gradmatch.tables import Table, columns

KEYS = columns(
    ("preset", "str", "scale preset"),
    ("pool", "int64", "pool index j of the endpoint seeds"),
    ("stop_step", "int64", "t, the fixed GD step of every endpoint", "steps"),
)
TABLES = {
    "estimate": Table(
        KEYS
        + columns(("m", "int64", "endpoints stacked in the fit (heatmap_endpoints)"))
        + _ols.MATRIX_COLUMNS,
        key=("row", "col"),
        doc="Q̂_m, the symmetric fit of Eq. 3 to the first m endpoints, long (row, col, value)",
    ),
    "error": Table(
        KEYS
        + columns(
            ("m", "int64", "endpoints stacked in the fit"),
            ("distance_frobenius", "float64", "‖Q̂_m − Λ_t‖_F"),
            ("theory_norm_frobenius", "float64", "‖Λ_t‖_F"),
            ("relative_frobenius_error", "float64", "‖Q̂_m − Λ_t‖_F / ‖Λ_t‖_F", "1"),
        ),
        key=("m",),
        doc="distance of Q̂_m to Λ_t (Eq. 5) for m = 1..n_endpoints",
    ),
}
RESOURCES = base.Resources(threads=1, runtime=10, mem_mb=1000)


class Settings(base.Settings):
    """Panel B; defaults are the authors' code values (H.3, ``ols_full_matrix_recovery``)."""

    ols_problem: base.OLSProblemBlock
    noise_std: float = Field(1.0, ge=0, description="σ of every endpoint's noise (paper: 1)")
    stop_step: int | None = Field(
        None,
        ge=1,
        description="fixed t; null = the canonical single-endpoint stop step (paper: null, t=500)",
    )
    early_stopping: base.EarlyStopping = Field(
        base.EarlyStopping(max_epochs=500, patience=5, min_delta=0.0),
        description="the single-endpoint run that sets the canonical t, as ols_endpoint "
        "(paper: max_epochs 500, patience 5, min_delta 0)",
    )
    n_endpoints: int = Field(100, ge=1, description="endpoints in the pool (paper: 100)")
    pool: int = Field(0, ge=0, description="pool index j in the endpoint seeds (paper: 0)")
    heatmap_endpoints: int = Field(
        10,
        ge=1,
        description="m of the drawn Q̂ (paper: 10, the authors' newest plot; an older one: 100)",
    )
    preset: base.Preset

    @model_validator(mode="after")
    def _heatmap_within_pool(self):
        if self.heatmap_endpoints > self.n_endpoints:
            raise base.FieldError(
                "heatmap_endpoints",
                self.heatmap_endpoints,
                f"exceeds n_endpoints = {self.n_endpoints}; allowed: 1 .. n_endpoints (lower it "
                "or raise n_endpoints)",
            )
        return self


def fixed_step(settings: Settings) -> int:
    """``stop_step`` if set, else the canonical single-endpoint stop step at σ = noise_std."""
    if settings.stop_step is not None:
        return int(settings.stop_step)
    endpoint = _ols.canonical_endpoint(
        settings.ols_problem, settings.noise_std, settings.early_stopping
    )
    return endpoint.stop_step


@_ols.single_threaded_blas
def run(settings: Settings) -> dict[str, pd.DataFrame]:
    """Tables ``estimate`` (Q̂ at m = heatmap_endpoints, long) and ``error`` (per m = 1..M)."""
    problem = settings.ols_problem
    t = fixed_step(settings)
    seeds = _ols.pool_seeds(problem.seed, settings.pool, settings.n_endpoints)
    problems = _ols.endpoint_problems(problem, settings.noise_std, seeds)
    moments = np.stack([data.moment for data in problems])
    thetas = theory.gd_iterate(problems[0].gram, moments, t, problem.step_size)
    targets = np.stack(
        [_ols.target(data, theta) for data, theta in zip(problems, thetas, strict=True)]
    )
    lam = theory.early_stopping_penalty(problems[0].X, t, problem.step_size)
    distances = _ols.distance_curve(thetas, targets, lam)
    keys = {"preset": settings.preset, "pool": settings.pool, "stop_step": t}
    m = settings.heatmap_endpoints
    estimate = _ols.fit_symmetric(thetas[:m], targets[:m])
    error = pd.DataFrame(
        {
            **keys,
            "m": np.arange(1, len(distances) + 1),
            "distance_frobenius": distances,
            "theory_norm_frobenius": np.linalg.norm(lam),
            "relative_frobenius_error": distances / np.linalg.norm(lam),
        }
    )
    return {
        "estimate": TABLES["estimate"].frame(_ols.matrix_frame(estimate, **keys, m=m)),
        "error": TABLES["error"].frame(error),
    }
