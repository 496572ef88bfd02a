"""Fig. 7F: bootstrap recovery error ‖Q̂ − Λ_t‖_F at m = M against the noise level σ, over pools.

X and β come from the seed-``seed`` generator of the global block ``ols_problem`` (X, then β);
for every σ the response is
y = Xβ + σε with ε ~ N(0, I) from a separate generator seeded with seed + 7919, so only the
noise scale changes. For each pool j, M resamples (``torch.randint`` seeded with
``bootstrap_seed`` + j·10000 + k, all bootstrap draws, no canonical endpoint) run GD from 0 for
exactly ``stop_step`` steps; Q̂ is the symmetric fit of Eq. 3 to all M endpoints and the
distance is taken to Λ_t of the original X (Eq. 5), with the zero baseline ‖Λ_t‖_F. The spread
of θ across resamples scales as σ/√n, so recovery beats the baseline only for large σ.

Values: the authors' ``ols_bootstrap_sigma_sweep`` (600c43a5): t = 500, M = 100, 5 pools,
σ ∈ {0.5, 1, 1.5, 2, 3, 4, 6, 8, 10, 14, 20}.
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
from gradmatch.progress import progress_bar
from gradmatch.tables import Table, columns

PAPER_SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 14.0, 20.0)
TABLES = {
    "sigma_sweep": Table(
        columns(
            ("preset", "str", "scale preset"),
            ("noise_std", "float64", "σ of the noise"),
            ("pool", "int64", "pool index j of the resample seeds"),
            ("stop_step", "int64", "t, the GD step of every resample", "steps"),
            ("distance_frobenius", "float64", "‖Q̂ − Λ_t‖_F, Q̂ fitted on all n_endpoints"),
            ("theta_std", "float64", "mean over coordinates of the std of θ_b across resamples"),
            ("zero_baseline_frobenius", "float64", "‖Λ_t‖_F, the error of predicting Q = 0"),
        ),
        key=("noise_std", "pool"),
        doc="one row per (σ, pool): bootstrap recovery error against the zero baseline",
    )
}
RESOURCES = base.Resources(threads=1, runtime=20, mem_mb=2000)

NoiseStd = Annotated[float, Field(ge=0)]


class Settings(base.Settings):
    """Fig. 7F; defaults are the authors' code values (``ols_bootstrap_sigma_sweep``)."""

    ols_problem: base.OLSProblemBlock
    noise_stds: tuple[NoiseStd, ...] = Field(
        PAPER_SIGMAS,
        min_length=1,
        description="σ values of the sweep (paper: 0.5, 1, 1.5, 2, 3, 4, 6, 8, 10, 14, 20)",
    )
    noise_seed_offset: int = Field(
        7919,
        ge=0,
        description="ε is drawn from a generator seeded ols_problem.seed + noise_seed_offset "
        "(paper: 7919)",
    )
    stop_step: int = Field(500, ge=1, description="fixed t of every resample (paper: 500)")
    n_endpoints: int = Field(100, ge=1, description="resamples per pool, m of the fit (paper: 100)")
    n_pools: int = Field(5, ge=1, description="independent pools of resamples (paper: 5)")
    bootstrap_seed: int = Field(
        1_000_000,
        ge=0,
        description="resample k of pool j: bootstrap_seed + j·10000 + k (paper: 1000000)",
    )
    preset: base.Preset

    @model_validator(mode="after")
    def _distinct(self):
        base.distinct("noise_stds", self.noise_stds)
        return self


def pool_distances(settings: Settings, X, signal, noise, lam, pool: int) -> list[dict]:
    """One row per σ for one pool; the resamples are shared across σ, as in the authors' code.

    With counts c_b of resample b, X_bᵀy_b/n = Xᵀ(c_b ⊙ (Xβ))/n + σ·Xᵀ(c_b ⊙ ε)/n.
    """
    base_seed = settings.bootstrap_seed + pool * _ols.SEED_STRIDE
    seeds = [base_seed + k for k in range(settings.n_endpoints)]
    counts = synthetic.bootstrap_counts(seeds, X.shape[0])
    grams = theory.resampled_grams(counts, X)
    signal_moments = theory.resampled_moments(counts, X, signal)
    noise_moments = theory.resampled_moments(counts, X, noise)
    step_size = settings.ols_problem.step_size
    rows = []
    for sigma in settings.noise_stds:
        moments = signal_moments + sigma * noise_moments
        thetas = theory.gd_iterate(grams, moments, settings.stop_step, step_size)
        targets = theory.mse_target(grams, moments, thetas)
        estimate = _ols.fit_symmetric(thetas, targets)
        rows.append(
            {
                "noise_std": float(sigma),
                "pool": pool,
                "distance_frobenius": float(np.linalg.norm(estimate - lam)),
                "theta_std": float(thetas.std(axis=0, ddof=1).mean()),
            }
        )
    return rows


@_ols.single_threaded_blas
def run(settings: Settings) -> pd.DataFrame:
    """One row per (σ, pool): ‖Q̂ − Λ_t‖_F, the zero baseline ‖Λ_t‖_F and the θ spread."""
    problem = settings.ols_problem
    data = synthetic.sample_ols(problem, 0.0)
    noise_gen = synthetic.generator(problem.seed + settings.noise_seed_offset)
    noise = synthetic.draw_noise(noise_gen, problem.n_samples, 1.0)
    lam = theory.early_stopping_penalty(data.X, settings.stop_step, problem.step_size)
    signal = data.X @ data.beta
    rows = [
        row
        for pool in progress_bar(
            range(settings.n_pools), desc="ols_bootstrap_sigma: pools", unit="pools", leave=True
        )
        for row in pool_distances(settings, data.X, signal, noise, lam, pool)
    ]
    frame = pd.DataFrame(rows)
    frame.insert(0, "preset", settings.preset)
    frame.insert(3, "stop_step", settings.stop_step)
    frame["zero_baseline_frobenius"] = float(np.linalg.norm(lam))
    frame = frame.sort_values(["noise_std", "pool"], ignore_index=True)
    return TABLES["sigma_sweep"].frame(frame)
