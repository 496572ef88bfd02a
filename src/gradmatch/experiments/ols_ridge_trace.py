"""Fig. 4E: the scalar ridge penalty λ̂_t along one GD trajectory, three ways, against tr(Λ_t)/p.

One GD trajectory θ_{t+1} = θ_t + εXᵀ(y − Xθ_t)/n on the seed-56 problem (no early stopping).
At each checkpoint t, with the target −∇L(θ_t) = (2/n)Xᵀ(y − Xθ_t) (mean squared error, no ½)
and R = λ‖θ‖² (∇R = 2λθ), the stationarity fit of paper Eq. 3 is

- ``lambda_hat_lstsq``: the exact least-squares λ̂ = θ_tᵀ(−∇L)/(2θ_tᵀθ_t) = θ_tᵀΛ_tθ_t/θ_tᵀθ_t;
- ``lambda_hat_adam``: the authors' procedure (λ = exp(β), β from 0, Adam lr 0.05, ≤ 30000
  epochs, patience 2000, min_delta 0), each checkpoint fitted independently;
- ``lambda_closed_form``: −θ_tᵀg/(2θ_tᵀθ_t) with g = ∇L(θ_t) (equal to lstsq), and
  ``lambda_closed_form_prev`` with g = ∇L(θ_{t−1}) as the authors' code evaluated it;
- ``lambda_theory``: tr(Λ_t)/p with Λ_t from Eq. 5 (λ̂ is a Rayleigh quotient of Λ_t, so
  ≈ tr(Λ_t)/p when Λ_t ≈ cI). At t = 1, Λ_1 = (I − εS)/ε ≈ 99·I.

Values: the authors' ``lambda_vs_epochs`` (600c43a5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradmatch.core.estimators import AdamOptions, match_gradients
from gradmatch.core.regularizers import Ridge
from gradmatch.data.synthetic import sample_ols
from gradmatch.experiments import _ols

SECTION = "ols_ridge_trace"
PAPER_CHECKPOINTS = (1, 2, 5, 10, 20, 50, 100, 150, 200, 300, 500, 1000)


@dataclass(frozen=True)
class Settings:
    """Panel E; defaults are the authors' code values (``lambda_vs_epochs``)."""

    seed: int = 56  # DGP seed
    n_samples: int = 1000  # n
    n_features: int = 10  # p
    beta_scale: float = 3.0  # β = beta_scale · N(0, I)
    noise_std: float = 1.0  # σ
    step_size: float = 0.01  # ε
    checkpoints: tuple[int, ...] = PAPER_CHECKPOINTS  # GD steps t at which λ̂_t is fitted
    adam_lr: float = 0.05  # Adam learning rate of the authors' fit
    adam_max_epochs: int = 30000  # Adam epoch cap
    adam_patience: int = 2000  # Adam early-stopping patience on the fit loss
    adam_min_delta: float = 0.0  # Adam early-stopping min_delta
    adam_init: float = 1.0  # starting λ (β = log λ = 0)
    preset: str = "default"  # recorded in every table

    def __post_init__(self) -> None:
        _ols.check_positive(
            SECTION,
            n_samples=self.n_samples,
            n_features=self.n_features,
            step_size=self.step_size,
            adam_lr=self.adam_lr,
            adam_max_epochs=self.adam_max_epochs,
            adam_patience=self.adam_patience,
            adam_init=self.adam_init,
        )
        if not self.checkpoints or min(self.checkpoints) < 1:
            raise ValueError(f"{SECTION}.checkpoints must list steps >= 1, got {self.checkpoints}")
        if self.adam_min_delta < 0:
            raise ValueError(f"{SECTION}.adam_min_delta must be >= 0, got {self.adam_min_delta}")


def closed_form(theta: np.ndarray, gradient: np.ndarray) -> float:
    """λ̂ = −θᵀg/(2θᵀθ) for R = λ‖θ‖² and g = ∇L."""
    return float(-theta @ gradient / (2.0 * theta @ theta))


def checkpoint_row(settings: Settings, problem, path: np.ndarray, t: int) -> dict:
    """Every λ̂ of one checkpoint t."""
    theta, target = path[t], _ols.target(problem, path[t])
    exact = match_gradients(Ridge(), theta, target)
    options = AdamOptions(
        lr=settings.adam_lr,
        max_epochs=settings.adam_max_epochs,
        patience=settings.adam_patience,
        min_delta=settings.adam_min_delta,
        init={"lambda": settings.adam_init},
    )
    adam = match_gradients(Ridge(), theta, target, method="adam", adam=options)
    lam = _ols.theory(problem.X, t, settings.step_size)
    return {
        "step": t,
        "lambda_hat_lstsq": exact.params["lambda"],
        "lambda_hat_adam": adam.params["lambda"],
        "adam_epochs": adam.epochs,
        "lambda_closed_form": closed_form(theta, -target),
        "lambda_closed_form_prev": closed_form(theta, -_ols.target(problem, path[t - 1])),
        "lambda_theory": float(np.trace(lam)) / settings.n_features,
        "lambda_rayleigh": float(theta @ lam @ theta / (theta @ theta)),
        "fit_residual_ratio_lstsq": exact.residual_ratio,
        "fit_cosine_lstsq": exact.cosine,
    }


@_ols.single_threaded_blas
def run(settings: Settings) -> pd.DataFrame:
    """One row per checkpoint: λ̂ (lstsq, Adam, closed forms), tr(Λ_t)/p and θᵀΛθ/θᵀθ."""
    problem = sample_ols(
        settings.seed,
        settings.n_samples,
        settings.n_features,
        settings.noise_std,
        settings.beta_scale,
    )
    steps = sorted(set(settings.checkpoints))
    path = _ols.gd_path(problem.gram, problem.moment[None, :], steps[-1], settings.step_size)[:, 0]
    rows = [checkpoint_row(settings, problem, path, t) for t in steps]
    frame = pd.DataFrame(rows)
    frame.insert(0, "preset", settings.preset)
    frame.insert(1, "noise_std", settings.noise_std)
    return frame
