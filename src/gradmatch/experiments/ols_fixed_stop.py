"""Fig. 4B: the full symmetric Λ̂ from m endpoints all stopped at the same step t.

All endpoints share the seed-56 design X. Endpoint k of pool j draws β_k = 3·N(0, I) and then
ε_k = σ·N(0, I) from a generator seeded with seed + 100 + j·10000 + k, and runs GD
θ_{s+1} = θ_s + εXᵀ(y_k − Xθ_s)/n from 0 for exactly t steps (t = the canonical stop step of
``ols_endpoint`` unless ``stop_step`` is set). Stacking the equations 2Qθ_k = (2/n)Xᵀ(y_k − Xθ_k)
(paper Eq. 3 with R = θᵀQθ, Section 2.2) gives a consistent system, because every θ_k solves the
same ridge problem with Λ_t (Eq. 5); Q has p(p+1)/2 = 55 unknowns, so Q̂_m = Λ_t exactly once
m·p ≥ 55 (m ≥ 6).

Values: the authors' ``ols_full_matrix_recovery --stop-step t`` (600c43a5). Their newest plot
draws Q̂ from the first 10 endpoints of pool 0 (``heatmap_endpoints``); an older one used 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradmatch.data.synthetic import resample_response, sample_ols
from gradmatch.experiments import _ols

SECTION = "ols_fixed_stop"


@dataclass(frozen=True)
class Settings:
    """Panel B; defaults are the authors' code values (H.3, ``ols_full_matrix_recovery``)."""

    seed: int = 56  # DGP seed: X comes from it, endpoint seeds are offset from it
    n_samples: int = 1000  # n
    n_features: int = 10  # p
    beta_scale: float = 3.0  # β_k = beta_scale · N(0, I)
    noise_std: float = 1.0  # σ
    step_size: float = 0.01  # ε
    stop_step: int | None = None  # fixed t; null = the canonical single-endpoint stop step
    max_epochs: int = 500  # single-endpoint run that sets the canonical t (as ols_endpoint)
    patience: int = 5  # its EarlyStopping patience
    min_delta: float = 0.0  # its EarlyStopping min_delta
    n_endpoints: int = 100  # endpoints in the pool
    pool: int = 0  # pool index j in the endpoint seeds
    heatmap_endpoints: int = 10  # m of the drawn Q̂ (newest plot: 10; older plot: 100)
    preset: str = "default"  # recorded in every table

    def __post_init__(self) -> None:
        _ols.check_positive(
            SECTION,
            n_samples=self.n_samples,
            n_features=self.n_features,
            step_size=self.step_size,
            n_endpoints=self.n_endpoints,
            heatmap_endpoints=self.heatmap_endpoints,
        )
        _ols.check_early_stopping(SECTION, self.max_epochs, self.patience, self.min_delta)
        if self.stop_step is not None and self.stop_step < 1:
            raise ValueError(f"{SECTION}.stop_step must be >= 1 or null, got {self.stop_step}")
        if self.heatmap_endpoints > self.n_endpoints:
            raise ValueError(
                f"{SECTION}.heatmap_endpoints ({self.heatmap_endpoints}) exceeds n_endpoints "
                f"({self.n_endpoints}); lower it or raise n_endpoints"
            )


def fixed_step(settings) -> int:
    """``stop_step`` if set, else the canonical single-endpoint stop step at σ = noise_std."""
    if settings.stop_step is not None:
        return int(settings.stop_step)
    return _ols.canonical_endpoint(settings, settings.noise_std).stop_step


def endpoint_seeds(settings, pool: int) -> list[int]:
    """seed + 100 + pool·10000 + k for k = 0..n_endpoints−1 (the authors' endpoint seeds)."""
    base = settings.seed + _ols.ENDPOINT_SEED_OFFSET + pool * _ols.SEED_STRIDE
    return [base + k for k in range(settings.n_endpoints)]


def endpoint_problems(settings, pool: int) -> list:
    """The pool's problems: shared X (seed ``seed``), fresh β_k and ε_k per endpoint."""
    X = sample_ols(settings.seed, settings.n_samples, settings.n_features, 0.0).X
    return [
        resample_response(X, seed, settings.noise_std, settings.beta_scale)
        for seed in endpoint_seeds(settings, pool)
    ]


@_ols.single_threaded_blas
def run(settings: Settings) -> dict[str, pd.DataFrame]:
    """Tables ``estimate`` (Q̂ at m = heatmap_endpoints, long) and ``error`` (per m = 1..M)."""
    t = fixed_step(settings)
    problems = endpoint_problems(settings, settings.pool)
    moments = np.stack([problem.moment for problem in problems])
    thetas = _ols.gd_iterate(problems[0].gram, moments, t, settings.step_size)
    targets = np.stack(
        [_ols.target(problem, theta) for problem, theta in zip(problems, thetas, strict=True)]
    )
    lam = _ols.theory(problems[0].X, t, settings.step_size)
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
    return {"estimate": _ols.matrix_frame(estimate, **keys, m=m), "error": error}
