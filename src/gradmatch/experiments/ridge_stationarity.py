"""Figure 1: scalar ridge regression, its three minima and the stationarity condition (Eq. 1-2).

The model is y = θ_true·x + ε with x ~ N(0, 1) and ε ~ N(0, σ²), n points drawn from
``numpy.random.default_rng(seed)`` (x first, then ε). With the mean squared error
L(θ) = (1/n) Σ (y_i − θ x_i)² (no 1/2 factor) and the penalty R(θ) = λθ², the minima are

    θ_OLS = (xᵀy/n) / (xᵀx/n),    θ_R = 0,    θ_ridge = (xᵀy/n) / (xᵀx/n + λ),

and at θ_ridge the stationarity condition of the paper (Eq. 1-2) holds:
∇R(θ_ridge) = 2λθ_ridge = −∇L(θ_ridge) = (2/n) Σ x_i (y_i − θ_ridge x_i).

Values: paper Appendix H.1 and the authors' ``make_tradeoff_vis_1d`` (n = 20, σ = 1.8,
θ_true = 2, λ = 0.8, seed 42, 600 θ values on [−0.5, 3.5]).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gradmatch import settings as base
from gradmatch.tables import Table, columns

COMMON = columns(
    ("penalty_strength", "float64", "λ of R(θ) = λθ²"),
    ("preset", "str", "scale preset"),
)
TABLES = {
    "curves": Table(
        columns(
            ("curve", "str", "mse | penalty | total"),
            ("theta", "float64", "θ on the grid"),
            ("value", "float64", "the curve at θ"),
        )
        + COMMON,
        key=("curve", "theta"),
    ),
    "points": Table(
        columns(
            ("minimum", "str", "ols | penalty | ridge"),
            ("curve", "str", "the curve it minimises"),
            ("theta", "float64", "the minimiser"),
            ("value", "float64", "the curve at the minimiser"),
        )
        + COMMON,
        key=("minimum",),
    ),
    "arrows": Table(
        columns(
            ("arrow", "str", "grad_penalty (∇R) | grad_mse (∇L)"),
            ("curve", "str", "the curve the tangent touches"),
            ("theta", "float64", "θ_ridge"),
            ("value", "float64", "the curve at θ_ridge"),
            ("slope", "float64", "the derivative at θ_ridge"),
        )
        + COMMON,
        key=("arrow",),
    ),
}
RESOURCES = base.Resources(runtime=5, mem_mb=1000)


class Settings(base.Settings):
    """Every value of Figure 1; defaults are the paper's."""

    n_samples: int = Field(20, ge=2, description="number of (x, y) points")
    noise_std: float = Field(1.8, ge=0, description="σ of the Gaussian noise ε")
    theta_true: float = Field(2.0, description="slope of the data-generating line")
    penalty_strength: float = Field(
        0.8, gt=0, description="λ in R(θ) = λθ² (> 0, so the ridge minimum differs from OLS)"
    )
    seed: int = Field(42, ge=0, description="numpy default_rng seed; x is drawn first, then ε")
    theta_min: float = Field(-0.5, description="left end of the θ grid of the curves")
    theta_max: float = Field(3.5, description="right end of the θ grid (> theta_min)")
    grid_points: int = Field(600, ge=2, description="number of θ values on the grid")
    preset: base.Preset

    @model_validator(mode="after")
    def _grid(self):
        if not self.theta_min < self.theta_max:
            raise base.FieldError(
                "theta_max",
                self.theta_max,
                f"must exceed theta_min = {self.theta_min}; allowed: theta_max > theta_min",
            )
        base.fits_in_memory(
            "grid_points",
            self.grid_points,
            (self.grid_points * self.n_samples + self.grid_points * 4) * 8,
            f"the θ grid against the data: grid_points {self.grid_points} × (n_samples "
            f"{self.n_samples} + 4 curves) × 8 bytes",
        )
        return self


def sample_data(settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """Draw x ~ N(0, 1), then ε ~ N(0, σ²), from one generator; return (x, y = θ_true·x + ε)."""
    rng = np.random.default_rng(settings.seed)
    x = rng.standard_normal(settings.n_samples)
    noise = rng.normal(0.0, settings.noise_std, settings.n_samples)
    return x, settings.theta_true * x + noise


def mse(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """L(θ) = (1/n) Σ (y_i − θ x_i)², for every θ in ``theta``."""
    residuals = y[:, None] - x[:, None] * np.atleast_1d(theta)[None, :]
    return np.mean(residuals**2, axis=0)


def mse_gradient(theta: float, x: np.ndarray, y: np.ndarray) -> float:
    """∇L(θ) = −(2/n) Σ x_i (y_i − θ x_i)."""
    return float(-2.0 * np.mean(x * (y - theta * x)))


def minima(x: np.ndarray, y: np.ndarray, lam: float) -> dict[str, float]:
    """Closed-form minimisers of L (OLS), of R = λθ² (zero) and of L + R (ridge)."""
    second_moment = float(np.dot(x, x)) / x.size
    cross_moment = float(np.dot(x, y)) / x.size
    if second_moment == 0.0:
        raise ValueError("ridge_stationarity: every x is zero, so θ_OLS is undefined; change seed")
    return {
        "ols": cross_moment / second_moment,
        "penalty": 0.0,
        "ridge": cross_moment / (second_moment + lam),
    }


def _curves(settings: Settings, x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    theta = np.linspace(settings.theta_min, settings.theta_max, settings.grid_points)
    loss = mse(theta, x, y)
    penalty = settings.penalty_strength * theta**2
    values = {"mse": loss, "penalty": penalty, "total": loss + penalty}
    frames = [
        pd.DataFrame({"curve": name, "theta": theta, "value": value})
        for name, value in values.items()
    ]
    return pd.concat(frames, ignore_index=True)


def _points(settings: Settings, x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    lam = settings.penalty_strength
    found = minima(x, y, lam)
    rows = []
    for name, curve in (("ols", "mse"), ("penalty", "penalty"), ("ridge", "total")):
        theta = found[name]
        loss = float(mse(theta, x, y)[0])
        value = {"mse": loss, "penalty": lam * theta**2, "total": loss + lam * theta**2}[curve]
        rows.append({"minimum": name, "curve": curve, "theta": theta, "value": value})
    return pd.DataFrame(rows)


def _arrows(settings: Settings, x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Both sides of Eq. 1-2 at θ_ridge: slope ∇R on the penalty curve, ∇L on the MSE curve.

    The two slopes are equal and opposite (∇R = −∇L) because θ_ridge is stationary for L + R.
    """
    lam = settings.penalty_strength
    theta = minima(x, y, lam)["ridge"]
    rows = [
        {
            "arrow": "grad_penalty",
            "curve": "penalty",
            "theta": theta,
            "value": lam * theta**2,
            "slope": 2.0 * lam * theta,
        },
        {
            "arrow": "grad_mse",
            "curve": "mse",
            "theta": theta,
            "value": float(mse(theta, x, y)[0]),
            "slope": mse_gradient(theta, x, y),
        },
    ]
    return pd.DataFrame(rows)


def run(settings: Settings) -> dict[str, pd.DataFrame]:
    """Tables ``curves`` (θ, value per curve), ``points`` (the minima), ``arrows`` (Eq. 1-2)."""
    x, y = sample_data(settings)
    tables = {
        "curves": _curves(settings, x, y),
        "points": _points(settings, x, y),
        "arrows": _arrows(settings, x, y),
    }
    for frame in tables.values():
        frame["penalty_strength"] = settings.penalty_strength
        frame["preset"] = settings.preset
    return {name: TABLES[name].frame(frame) for name, frame in tables.items()}
