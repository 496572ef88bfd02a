"""Fig. 4A/C and 7A baseline: one early-stopped OLS fit, its theory Λ_t and its diagonal estimate.

For each σ in ``noise_stds`` (1 for Fig. 4, 10 for the Fig. 7 baseline): draw the seed-56
problem (global block ``ols_problem``; ``gradmatch.data.synthetic``), run GD
θ_{t+1} = θ_t + εXᵀ(y − Xθ_t)/n from 0 for up to ``early_stopping.max_epochs`` steps with the
Lightning early-stopping replay (patience, min_delta on the mean squared error), and record the
actual stop step t. Then

- Panel A: Λ_t = V S[(I − εS)^(−t) − I]^(−1)Vᵀ (paper Eq. 5, Ali et al. 2019);
- Panel C: the diagonal fit R = θᵀdiag(q)θ of Eq. 3 on this one endpoint, exactly determined:
  q̂_j = [(1/n)Xᵀ(y − Xθ̂)]_j / θ̂_j (``lstsq``), and the authors' Adam fit (``adam_fit``: q from
  0, lr 1e-2, ≤ 5000 epochs, patience 150); and the retrained weights
  θ̂^Λ = (XᵀX + n·diag(q̂))^(−1)Xᵀy, which equal θ̂ exactly although diag(q̂) ≠ Λ_t.

Values: paper H.3 and the authors' ``linear_regression_ols`` (470ff328). They trained in float32;
we compute in float64 from the same float32 random draws.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gradmatch import settings as base
from gradmatch.core import theory
from gradmatch.core.estimators import match_gradients
from gradmatch.core.regularizers import DiagQuadratic
from gradmatch.experiments import _ols
from gradmatch.tables import Table, columns

KEYS = columns(
    ("preset", "str", "scale preset"),
    ("noise_std", "float64", "σ of the run's noise ε"),
    ("stop_step", "int64", "t, the step where the early-stopping replay stopped GD", "steps"),
)
TABLES = {
    "endpoint": Table(
        KEYS
        + columns(
            ("max_epochs", "int64", "GD step cap of the run (early_stopping.max_epochs)", "steps"),
            ("final_loss_mse", "float64", "(1/n)‖y − Xθ̂‖² at the stop step"),
            ("coordinate", "int64", "coordinate j of θ"),
            ("beta_true", "float64", "β_j of the data-generating process"),
            ("theta_hat", "float64", "θ̂_j = θ_t, the early-stopped weight"),
            ("lambda_theory_diag", "float64", "(Λ_t)_jj of paper Eq. 5"),
            ("q_hat_lstsq", "float64", "q̂_j of R = θᵀdiag(q)θ, exact least squares"),
            ("q_hat_adam", "float64", "q̂_j by the authors' Adam fit"),
            ("theta_retrained_lstsq", "float64", "θ_j of (XᵀX + n·diag(q̂_lstsq))⁻¹Xᵀy"),
            ("theta_retrained_adam", "float64", "θ_j of (XᵀX + n·diag(q̂_adam))⁻¹Xᵀy"),
            ("fit_residual_ratio_lstsq", "float64", "‖∇R + ∇L‖/‖∇L‖ of the lstsq fit"),
            ("adam_epochs", "int64", "epochs the Adam fit ran", "epochs"),
        ),
        key=("noise_std", "coordinate"),
        doc="one row per (σ, coordinate): the endpoint, its Λ_t diagonal and the diagonal fits",
    ),
    "theory": Table(
        KEYS + _ols.MATRIX_COLUMNS,
        key=("noise_std", "row", "col"),
        doc="Λ_t of paper Eq. 5 at each run's stop step, long (row, col, value)",
    ),
}
RESOURCES = base.Resources(threads=1, runtime=10, mem_mb=1000)

NoiseStd = Annotated[float, Field(ge=0)]


class Settings(base.Settings):
    """The single-endpoint run; defaults are the authors' values (H.3, code)."""

    ols_problem: base.OLSProblemBlock
    noise_stds: tuple[NoiseStd, ...] = Field(
        (1.0, 10.0),
        min_length=1,
        description="σ of each run: Fig. 4 (1) and the Fig. 7 baseline (10) (paper: 1 and 10)",
    )
    early_stopping: base.EarlyStopping = Field(
        base.EarlyStopping(max_epochs=500, patience=5, min_delta=0.0),
        description="Lightning EarlyStopping on the training MSE; one full-batch GD step per "
        "epoch (paper: max_epochs 500, patience 5, no minimum improvement)",
    )
    adam_fit: base.AdamFit = Field(
        base.AdamFit(lr=1e-2, max_epochs=5000, patience=150),
        description="the authors' Adam fit of the diagonal q (paper/code: lr 1e-2, max_epochs "
        "5000, patience 150)",
    )
    preset: base.Preset

    @model_validator(mode="after")
    def _distinct(self):
        base.distinct("noise_stds", self.noise_stds)
        return self


def diagonal_fits(endpoint: _ols.Endpoint, settings: Settings) -> dict[str, np.ndarray]:
    """q̂ by exact least squares and by the authors' Adam procedure, with their retrained θ."""
    problem = endpoint.problem
    target = _ols.target(problem, endpoint.theta)
    exact = match_gradients(DiagQuadratic(), endpoint.theta, target)
    options = settings.adam_fit.options()
    adam = match_gradients(DiagQuadratic(), endpoint.theta, target, method="adam", adam=options)
    n_features = problem.X.shape[1]
    return {
        "q_hat_lstsq": exact.params["q"],
        "q_hat_adam": adam.params["q"],
        "theta_retrained_lstsq": theory.penalized_least_squares(
            problem.X, problem.y, exact.params["q"]
        ),
        "theta_retrained_adam": theory.penalized_least_squares(
            problem.X, problem.y, adam.params["q"]
        ),
        "fit_residual_ratio_lstsq": np.full(n_features, exact.residual_ratio),
        "adam_epochs": np.full(n_features, adam.epochs),
    }


def one_run(settings: Settings, noise_std: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Endpoint table (one row per coordinate) and Λ_t table for one σ."""
    problem = settings.ols_problem
    endpoint = _ols.canonical_endpoint(problem, noise_std, settings.early_stopping)
    lam = theory.early_stopping_penalty(endpoint.problem.X, endpoint.stop_step, problem.step_size)
    keys = {
        "preset": settings.preset,
        "noise_std": float(noise_std),
        "stop_step": endpoint.stop_step,
    }
    table = pd.DataFrame(
        {
            **keys,
            "max_epochs": settings.early_stopping.max_epochs,
            "final_loss_mse": endpoint.final_loss,
            "coordinate": np.arange(problem.n_features),
            "beta_true": endpoint.problem.beta,
            "theta_hat": endpoint.theta,
            "lambda_theory_diag": np.diag(lam).copy(),
            **diagonal_fits(endpoint, settings),
        }
    )
    return table, _ols.matrix_frame(lam, **keys)


@_ols.single_threaded_blas
def run(settings: Settings) -> dict[str, pd.DataFrame]:
    """Tables ``endpoint`` (σ, coordinate: β, θ̂, q̂, retrained θ) and ``theory`` (Λ_t, long)."""
    parts = [one_run(settings, sigma) for sigma in settings.noise_stds]
    return {
        name: TABLES[name].frame(pd.concat([part[index] for part in parts], ignore_index=True))
        for index, name in enumerate(("endpoint", "theory"))
    }
