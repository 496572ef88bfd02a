"""Fig. 7F: bootstrap recovery error ‖Q̂ − Λ_t‖_F at m = M against the noise level σ, over pools.

X and β come from the seed-``seed`` generator (X, then β); for every σ the response is
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

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from gradmatch.data.synthetic import draw_noise, generator, sample_ols
from gradmatch.experiments import _ols
from gradmatch.experiments.ols_bootstrap import resample_counts, resample_grams

SECTION = "ols_bootstrap_sigma"
PAPER_SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 14.0, 20.0)


@dataclass(frozen=True)
class Settings:
    """Fig. 7F; defaults are the authors' code values (``ols_bootstrap_sigma_sweep``)."""

    seed: int = 56  # DGP seed of X and β
    n_samples: int = 1000  # n
    n_features: int = 10  # p
    beta_scale: float = 3.0  # β = beta_scale · N(0, I)
    noise_stds: tuple[float, ...] = PAPER_SIGMAS  # σ values of the sweep
    noise_seed_offset: int = 7919  # ε is drawn from a generator seeded seed + noise_seed_offset
    step_size: float = 0.01  # ε of GD
    stop_step: int = 500  # fixed t of every resample
    n_endpoints: int = 100  # resamples per pool (m of the fit)
    n_pools: int = 5  # independent pools of resamples
    bootstrap_seed: int = 1_000_000  # resample k of pool j: bootstrap_seed + j·10000 + k
    preset: str = "default"  # recorded in every table

    def __post_init__(self) -> None:
        _ols.check_positive(
            SECTION,
            n_samples=self.n_samples,
            n_features=self.n_features,
            step_size=self.step_size,
            stop_step=self.stop_step,
            n_endpoints=self.n_endpoints,
            n_pools=self.n_pools,
        )
        if not self.noise_stds or min(self.noise_stds) < 0:
            raise ValueError(
                f"{SECTION}.noise_stds must be a non-empty list of σ >= 0, got {self.noise_stds}"
            )


def pool_distances(settings: Settings, X, signal, noise, lam, pool: int) -> list[dict]:
    """One row per σ for one pool; the resamples are shared across σ, as in the authors' code.

    With counts c_b of resample b, X_bᵀy_b/n = Xᵀ(c_b ⊙ (Xβ))/n + σ·Xᵀ(c_b ⊙ ε)/n.
    """
    n = X.shape[0]
    base = settings.bootstrap_seed + pool * _ols.SEED_STRIDE
    counts = resample_counts([base + k for k in range(settings.n_endpoints)], n)
    grams = resample_grams(counts, X)
    signal_moments, noise_moments = (
        counts @ (X * signal[:, None]) / n,
        counts @ (X * noise[:, None]) / n,
    )
    rows = []
    for sigma in settings.noise_stds:
        moments = signal_moments + sigma * noise_moments
        thetas = _ols.gd_iterate(grams, moments, settings.stop_step, settings.step_size)
        targets = 2.0 * (moments - np.einsum("kij,kj->ki", grams, thetas))
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
    problem = sample_ols(
        settings.seed, settings.n_samples, settings.n_features, 0.0, settings.beta_scale
    )
    noise = draw_noise(
        generator(settings.seed + settings.noise_seed_offset), settings.n_samples, 1.0
    )
    lam = _ols.theory(problem.X, settings.stop_step, settings.step_size)
    rows = [
        row
        for pool in tqdm(range(settings.n_pools), desc="pools")
        for row in pool_distances(settings, problem.X, problem.X @ problem.beta, noise, lam, pool)
    ]
    frame = pd.DataFrame(rows)
    frame.insert(0, "preset", settings.preset)
    frame.insert(3, "stop_step", settings.stop_step)
    frame["zero_baseline_frobenius"] = float(np.linalg.norm(lam))
    return frame.sort_values(["noise_std", "pool"], ignore_index=True)
