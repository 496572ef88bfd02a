"""Fig. 4A/C and 7A baseline: one early-stopped OLS fit, its theory Λ_t and its diagonal estimate.

For each σ in ``noise_stds`` (1 for Fig. 4, 10 for the Fig. 7 baseline): draw the seed-56
problem (``gradmatch.data.synthetic``), run GD θ_{t+1} = θ_t + εXᵀ(y − Xθ_t)/n from 0 for up to
``max_epochs`` steps with the Lightning early-stopping replay (patience, min_delta on the mean
squared error), and record the actual stop step t. Then

- Panel A: Λ_t = V S[(I − εS)^(−t) − I]^(−1)Vᵀ (paper Eq. 5, Ali et al. 2019);
- Panel C: the diagonal fit R = θᵀdiag(q)θ of Eq. 3 on this one endpoint, exactly determined:
  q̂_j = [(1/n)Xᵀ(y − Xθ̂)]_j / θ̂_j (``lstsq``), and the authors' Adam fit (q from 0, lr 1e-2,
  ≤ 5000 epochs, patience 150); and the retrained weights θ̂^Λ = (XᵀX + n·diag(q̂))^(−1)Xᵀy,
  which equal θ̂ exactly although diag(q̂) ≠ Λ_t.

Values: paper H.3 and the authors' ``linear_regression_ols`` (470ff328). They trained in float32;
we compute in float64 from the same float32 random draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradmatch.core.estimators import AdamOptions, match_gradients
from gradmatch.core.regularizers import DiagQuadratic
from gradmatch.core.theory import penalized_least_squares
from gradmatch.experiments import _ols

SECTION = "ols_endpoint"


@dataclass(frozen=True)
class Settings:
    """The single-endpoint run; defaults are the authors' values (H.3, code)."""

    seed: int = 56  # torch.Generator seed of the DGP (X, then β, then ε)
    n_samples: int = 1000  # n, rows of X
    n_features: int = 10  # p, columns of X
    beta_scale: float = 3.0  # β = beta_scale · N(0, I)
    noise_stds: tuple[float, ...] = (1.0, 10.0)  # σ of each run: Fig. 4 (1) and Fig. 7 (10)
    step_size: float = 0.01  # ε of GD on (1/2n)‖y − Xθ‖²
    max_epochs: int = 500  # Lightning max_epochs (one full-batch step each)
    patience: int = 5  # EarlyStopping patience on train/loss
    min_delta: float = 0.0  # EarlyStopping min_delta (0: any decrease counts)
    adam_lr: float = 1e-2  # Adam learning rate of the authors' diagonal fit
    adam_max_epochs: int = 5000  # Adam epoch cap of the diagonal fit
    adam_patience: int = 150  # Adam early-stopping patience of the diagonal fit
    preset: str = "default"  # recorded in every table (filled from the global key)

    def __post_init__(self) -> None:
        _ols.check_positive(
            SECTION,
            n_samples=self.n_samples,
            n_features=self.n_features,
            step_size=self.step_size,
            adam_lr=self.adam_lr,
            adam_max_epochs=self.adam_max_epochs,
            adam_patience=self.adam_patience,
        )
        _ols.check_early_stopping(SECTION, self.max_epochs, self.patience, self.min_delta)
        if not self.noise_stds or min(self.noise_stds) < 0:
            raise ValueError(
                f"{SECTION}.noise_stds must be a non-empty list of σ >= 0, got {self.noise_stds}"
            )


def diagonal_fits(endpoint: _ols.Endpoint, settings: Settings) -> dict[str, np.ndarray]:
    """q̂ by exact least squares and by the authors' Adam procedure, with their retrained θ."""
    problem = endpoint.problem
    target = _ols.target(problem, endpoint.theta)
    exact = match_gradients(DiagQuadratic(), endpoint.theta, target)
    options = AdamOptions(
        lr=settings.adam_lr, max_epochs=settings.adam_max_epochs, patience=settings.adam_patience
    )
    adam = match_gradients(DiagQuadratic(), endpoint.theta, target, method="adam", adam=options)
    return {
        "q_hat_lstsq": exact.params["q"],
        "q_hat_adam": adam.params["q"],
        "theta_retrained_lstsq": penalized_least_squares(problem.X, problem.y, exact.params["q"]),
        "theta_retrained_adam": penalized_least_squares(problem.X, problem.y, adam.params["q"]),
        "fit_residual_ratio_lstsq": np.full(problem.X.shape[1], exact.residual_ratio),
        "adam_epochs": np.full(problem.X.shape[1], adam.epochs),
    }


def one_run(settings: Settings, noise_std: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Endpoint table (one row per coordinate) and Λ_t table for one σ."""
    endpoint = _ols.canonical_endpoint(settings, noise_std)
    lam = _ols.theory(endpoint.problem.X, endpoint.stop_step, settings.step_size)
    keys = {
        "preset": settings.preset,
        "noise_std": float(noise_std),
        "stop_step": endpoint.stop_step,
    }
    columns = {
        "coordinate": np.arange(settings.n_features),
        "beta_true": endpoint.problem.beta,
        "theta_hat": endpoint.theta,
        "lambda_theory_diag": np.diag(lam).copy(),
        **diagonal_fits(endpoint, settings),
    }
    table = pd.DataFrame(
        {
            **keys,
            "max_epochs": settings.max_epochs,
            "final_loss_mse": endpoint.final_loss,
            **columns,
        }
    )
    return table, _ols.matrix_frame(lam, **keys)


@_ols.single_threaded_blas
def run(settings: Settings) -> dict[str, pd.DataFrame]:
    """Tables ``endpoint`` (σ, coordinate: β, θ̂, q̂, retrained θ) and ``theory`` (Λ_t, long)."""
    parts = [one_run(settings, sigma) for sigma in settings.noise_stds]
    return {
        "endpoint": pd.concat([part[0] for part in parts], ignore_index=True),
        "theory": pd.concat([part[1] for part in parts], ignore_index=True),
    }
