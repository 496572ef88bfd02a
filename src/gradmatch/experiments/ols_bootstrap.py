"""Fig. 7A-E: Λ̂ from bootstrap resamples of one noisy OLS dataset, against Λ_t of the original X.

The canonical endpoint is the seed-56 problem at σ = ``noise_std`` (10), trained as in
``ols_endpoint`` (GD with the early-stopping replay); its stop step t fixes the step of every
bootstrap endpoint. Bootstrap endpoint k of pool j resamples n rows with replacement
(``torch.randint`` seeded with ``bootstrap_seed`` + 100 + j·10000 + k), runs GD on (X_b, y_b)
from 0 for exactly t steps and gives the target −∇L_b = (2/n)X_bᵀ(y_b − X_bθ_b). Endpoint 1 of
the stack is the canonical one (target from the original data), endpoints 2..M the first M − 1
resamples. Q̂_m is the symmetric fit of Eq. 3 to the first m (minimum-norm while m·p < 55), and
the curve is ‖Q̂_m − Λ_t‖_F with the zero baseline ‖Λ_t‖_F (the error of predicting Q = 0).
The system is only approximately consistent (each resample has its own Λ), hence a floor.

Values: the authors' ``ols_bootstrap_recovery`` (18519919) and plot composite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradmatch.data.synthetic import OLSProblem, bootstrap_indices
from gradmatch.experiments import _ols

SECTION = "ols_bootstrap"


@dataclass(frozen=True)
class Settings:
    """Fig. 7 A-E; defaults are the authors' code values."""

    seed: int = 56  # DGP seed
    n_samples: int = 1000  # n
    n_features: int = 10  # p
    beta_scale: float = 3.0  # β = beta_scale · N(0, I)
    noise_std: float = 10.0  # σ of the baseline (rule linear_regression_ols_noisy)
    step_size: float = 0.01  # ε
    stop_step: int | None = None  # fixed t; null = the canonical endpoint's stop step
    max_epochs: int = 500  # canonical run (as ols_endpoint)
    patience: int = 5  # its EarlyStopping patience
    min_delta: float = 0.0  # its EarlyStopping min_delta
    n_endpoints: int = 100  # stacked endpoints: the canonical one + n_endpoints − 1 resamples
    bootstrap_seed: int = 42  # resample k of pool j: bootstrap_seed + 100 + j·10000 + k
    pool: int = 0  # pool index j
    heatmap_m: tuple[int, ...] = (1, 50, 100)  # m of the drawn Λ̂_m (panels B, C, D)
    preset: str = "default"  # recorded in every table

    def __post_init__(self) -> None:
        _ols.check_positive(
            SECTION,
            n_samples=self.n_samples,
            n_features=self.n_features,
            step_size=self.step_size,
            n_endpoints=self.n_endpoints,
        )
        _ols.check_early_stopping(SECTION, self.max_epochs, self.patience, self.min_delta)
        if self.stop_step is not None and self.stop_step < 1:
            raise ValueError(f"{SECTION}.stop_step must be >= 1 or null, got {self.stop_step}")
        bad = [m for m in self.heatmap_m if not 1 <= m <= self.n_endpoints]
        if not self.heatmap_m or bad:
            raise ValueError(
                f"{SECTION}.heatmap_m must list m in [1, n_endpoints={self.n_endpoints}], got "
                f"{self.heatmap_m}"
            )


def resample_counts(seeds: list[int], n: int) -> np.ndarray:
    """How often each of the n rows is drawn in each resample, shape (K, n)."""
    return np.stack([np.bincount(bootstrap_indices(seed, n), minlength=n) for seed in seeds])


def resample_moments(problem: OLSProblem, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """X_bᵀX_b/n (K, p, p) and X_bᵀy_b/n (K, p) for the resamples seeded by ``seeds``."""
    n = problem.X.shape[0]
    counts = resample_counts(seeds, n)
    return resample_grams(counts, problem.X), counts @ (problem.X * problem.y[:, None]) / n


def resample_grams(counts: np.ndarray, X: np.ndarray) -> np.ndarray:
    """X_bᵀX_b/n = Xᵀdiag(c_b)X/n for each row of ``counts``, shape (K, p, p)."""
    return np.einsum("kn,ni,nj->kij", counts.astype(np.float64), X, X, optimize=True) / X.shape[0]


def bootstrap_endpoints(
    problem: OLSProblem, seeds: list[int], steps: int, step_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """θ_b at ``steps`` GD steps on each resample and its target 2(X_bᵀy_b − X_bᵀX_bθ_b)/n."""
    grams, moments = resample_moments(problem, seeds)
    thetas = _ols.gd_iterate(grams, moments, steps, step_size)
    return thetas, 2.0 * (moments - np.einsum("kij,kj->ki", grams, thetas))


def resample_seeds(settings: Settings, count: int, pool: int) -> list[int]:
    """bootstrap_seed + 100 + pool·10000 + k for k = 0..count−1."""
    base = settings.bootstrap_seed + _ols.ENDPOINT_SEED_OFFSET + pool * _ols.SEED_STRIDE
    return [base + k for k in range(count)]


@_ols.single_threaded_blas
def run(settings: Settings) -> dict[str, pd.DataFrame]:
    """Tables ``theory`` (Λ_t), ``estimates`` (Λ̂_m at heatmap_m) and ``distance`` (per m)."""
    canonical = _ols.canonical_endpoint(settings, settings.noise_std)
    t = canonical.stop_step if settings.stop_step is None else int(settings.stop_step)
    problem = canonical.problem
    theta0 = (
        canonical.theta
        if t == canonical.stop_step
        else _ols.gd_iterate(problem.gram, problem.moment[None, :], t, settings.step_size)[0]
    )
    seeds = resample_seeds(settings, settings.n_endpoints - 1, settings.pool)
    thetas, targets = bootstrap_endpoints(problem, seeds, t, settings.step_size)
    thetas = np.vstack([theta0, thetas])
    targets = np.vstack([_ols.target(problem, theta0), targets])
    lam = _ols.theory(problem.X, t, settings.step_size)
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
        "theory": _ols.matrix_frame(lam, **keys),
        "estimates": pd.concat(estimates, ignore_index=True),
        "distance": distance,
    }
