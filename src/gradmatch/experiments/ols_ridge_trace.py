"""Fig. 4E: the scalar ridge penalty λ̂_t along one GD trajectory, three ways, against tr(Λ_t)/p.

One GD trajectory θ_{t+1} = θ_t + εXᵀ(y − Xθ_t)/n on the seed-56 problem (global block
``ols_problem``; no early stopping).
At each checkpoint t, with the target −∇L(θ_t) = (2/n)Xᵀ(y − Xθ_t) (mean squared error, no ½)
and R = λ‖θ‖² (∇R = 2λθ), the stationarity fit of paper Eq. 3 is

- ``lambda_hat_lstsq``: the exact least-squares λ̂ = θ_tᵀ(−∇L)/(2θ_tᵀθ_t) = θ_tᵀΛ_tθ_t/θ_tᵀθ_t;
- ``lambda_hat_adam``: the authors' procedure (``adam_fit``: λ = exp(β), β from 0, Adam lr 0.05,
  ≤ 30000 epochs, patience 2000, min_delta 0), each checkpoint fitted independently;
- ``lambda_closed_form``: −θ_tᵀg/(2θ_tᵀθ_t) with g = ∇L(θ_t) (equal to lstsq), and
  ``lambda_closed_form_prev`` with g = ∇L(θ_{t−1}) as the authors' code evaluated it;
- ``lambda_theory``: tr(Λ_t)/p with Λ_t from Eq. 5 (λ̂ is a Rayleigh quotient of Λ_t, so
  ≈ tr(Λ_t)/p when Λ_t ≈ cI). At t = 1, Λ_1 = (I − εS)/ε ≈ 99·I.

Values: the authors' ``lambda_vs_epochs`` (600c43a5).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gradmatch import settings as base
from gradmatch.core import theory
from gradmatch.core.estimators import match_gradients
from gradmatch.core.regularizers import Ridge
from gradmatch.data import synthetic
from gradmatch.experiments import _ols
from gradmatch.tables import Table, columns

PAPER_CHECKPOINTS = (1, 2, 5, 10, 20, 50, 100, 150, 200, 300, 500, 1000)
TABLES = {
    "ridge_trace": Table(
        columns(
            ("preset", "str", "scale preset"),
            ("noise_std", "float64", "σ of the noise ε"),
            ("step", "int64", "checkpoint t of the GD trajectory", "steps"),
            ("lambda_hat_lstsq", "float64", "λ̂_t of R = λ‖θ‖², exact least squares"),
            ("lambda_hat_adam", "float64", "λ̂_t by the authors' Adam fit"),
            ("adam_epochs", "int64", "epochs the Adam fit ran", "epochs"),
            ("lambda_closed_form", "float64", "−θ_tᵀ∇L(θ_t)/(2θ_tᵀθ_t)"),
            ("lambda_closed_form_prev", "float64", "−θ_tᵀ∇L(θ_{t−1})/(2θ_tᵀθ_t), as the authors"),
            ("lambda_theory", "float64", "tr(Λ_t)/p, Λ_t of paper Eq. 5"),
            ("lambda_rayleigh", "float64", "θ_tᵀΛ_tθ_t/θ_tᵀθ_t"),
            ("fit_residual_ratio_lstsq", "float64", "‖∇R + ∇L‖/‖∇L‖ of the lstsq fit"),
            ("fit_cosine_lstsq", "float64", "cos(∇R, −∇L) of the lstsq fit"),
        ),
        key=("step",),
        doc="one row per checkpoint: λ̂_t three ways against tr(Λ_t)/p",
    )
}
RESOURCES = base.Resources(threads=1, runtime=20, mem_mb=1000)

Step = Annotated[int, Field(ge=1)]


class Settings(base.Settings):
    """Panel E; defaults are the authors' code values (``lambda_vs_epochs``)."""

    ols_problem: base.OLSProblemBlock
    noise_std: float = Field(1.0, ge=0, description="σ of the noise ε (paper: 1)")
    checkpoints: tuple[Step, ...] = Field(
        PAPER_CHECKPOINTS,
        min_length=1,
        description="GD steps t at which λ̂_t is fitted (paper: 1, 2, 5, ..., 500, 1000)",
    )
    adam_fit: base.AdamFit = Field(
        base.AdamFit(lr=0.05, max_epochs=30000, patience=2000, min_delta=0.0, init=1.0),
        description="the authors' Adam fit of λ from λ = 1 (β = log λ = 0) (code: lr 0.05, "
        "max_epochs 30000, patience 2000, min_delta 0, init 1)",
    )
    preset: base.Preset

    @model_validator(mode="after")
    def _distinct(self):
        base.distinct("checkpoints", self.checkpoints)
        return self


def closed_form(theta: np.ndarray, gradient: np.ndarray) -> float:
    """λ̂ = −θᵀg/(2θᵀθ) for R = λ‖θ‖² and g = ∇L."""
    return float(-theta @ gradient / (2.0 * theta @ theta))


def adam_options(settings: Settings):
    """The :class:`~gradmatch.core.estimators.AdamOptions` of ``adam_fit`` (init on λ)."""
    fit = settings.adam_fit
    return fit.options() if fit.init is None else fit.options(init={"lambda": fit.init})


def checkpoint_row(settings: Settings, data: synthetic.OLSData, path: np.ndarray, t: int) -> dict:
    """Every λ̂ of one checkpoint t."""
    theta, target = path[t], _ols.target(data, path[t])
    exact = match_gradients(Ridge(), theta, target)
    adam = match_gradients(Ridge(), theta, target, method="adam", adam=adam_options(settings))
    lam = theory.early_stopping_penalty(data.X, t, settings.ols_problem.step_size)
    return {
        "step": t,
        "lambda_hat_lstsq": exact.params["lambda"],
        "lambda_hat_adam": adam.params["lambda"],
        "adam_epochs": adam.epochs,
        "lambda_closed_form": closed_form(theta, -target),
        "lambda_closed_form_prev": closed_form(theta, -_ols.target(data, path[t - 1])),
        "lambda_theory": float(np.trace(lam)) / settings.ols_problem.n_features,
        "lambda_rayleigh": float(theta @ lam @ theta / (theta @ theta)),
        "fit_residual_ratio_lstsq": exact.residual_ratio,
        "fit_cosine_lstsq": exact.cosine,
    }


@_ols.single_threaded_blas
def run(settings: Settings) -> pd.DataFrame:
    """One row per checkpoint: λ̂ (lstsq, Adam, closed forms), tr(Λ_t)/p and θᵀΛθ/θᵀθ."""
    data = synthetic.sample_ols(settings.ols_problem, settings.noise_std)
    steps = sorted(set(settings.checkpoints))
    step_size = settings.ols_problem.step_size
    path = theory.gd_path(data.gram, data.moment[None, :], steps[-1], step_size)[:, 0]
    frame = pd.DataFrame([checkpoint_row(settings, data, path, t) for t in steps])
    frame.insert(0, "preset", settings.preset)
    frame.insert(1, "noise_std", settings.noise_std)
    return TABLES["ridge_trace"].frame(frame)
