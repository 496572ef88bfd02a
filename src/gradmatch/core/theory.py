"""Closed-form theory for early-stopped least squares (paper Eq. 5; Ali et al., 2019).

Gradient descent θ_{t+1} = θ_t + ε Xᵀ(y − Xθ_t)/n from θ_0 = 0 (GD on (1/2n)‖y − Xθ‖²) reaches
at step t exactly the minimiser of (1/n)‖y − Xθ‖² + θᵀ Λ_t θ, with

    Λ_t = V S [(I − εS)^(−t) − I]^(−1) Vᵀ,   XᵀX/n = V S Vᵀ,          (Eq. 5)

so θ_t = (XᵀX + nΛ_t)^(−1) Xᵀy. In the matching convention the target is −∇L of the mean
squared error without ½, (2/n)Xᵀ(y − Xθ_t) = 2Λ_tθ_t = ∇R for R = θᵀΛ_tθ: a SymQuadratic fit of
stacked endpoints recovers Λ_t. Everything here is float64 numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "early_stopping_penalty",
    "gradient_descent_path",
    "linear_mse_target",
    "penalized_least_squares",
]


def _matrix(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a matrix of shape (n, p), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf; pass finite values only")
    return array


def _vector(values: Any, name: str, size: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf; pass finite values only")
    return array


def early_stopping_penalty(X: Any, steps: int, step_size: float) -> np.ndarray:
    """Λ_t of Eq. 5 for ``steps`` = t gradient-descent steps of size ``step_size`` = ε.

    Requires ε < 1/s_max (s_max the largest eigenvalue of XᵀX/n) and t ≥ 1. Directions with
    eigenvalue 0 get the limit s/((1 − εs)^(−t) − 1) → 1/(εt).
    """
    design = _matrix(X, "X")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    step_size = float(step_size)
    eigenvalues, eigenvectors = np.linalg.eigh(design.T @ design / design.shape[0])
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    largest = float(eigenvalues.max())
    if not 0 < step_size < 1 / largest:
        raise ValueError(
            f"step_size must lie in (0, 1/s_max) = (0, {1 / largest:.6g}) with s_max the largest "
            f"eigenvalue of X^T X / n, got {step_size}"
        )
    # (1 − εs)^(−t) − 1 = expm1(−t log1p(−εs)), accurate for small εs.
    growth = np.expm1(-int(steps) * np.log1p(-step_size * eigenvalues))
    limit = 1.0 / (step_size * int(steps))
    safe_growth = np.where(growth > 0, growth, 1.0)
    penalty = np.where(eigenvalues > 0, eigenvalues / safe_growth, limit)
    matrix = (eigenvectors * penalty) @ eigenvectors.T
    return 0.5 * (matrix + matrix.T)


def penalized_least_squares(X: Any, y: Any, Q: Any) -> np.ndarray:
    """θ = (XᵀX + nQ)^(−1) Xᵀy, the minimiser of (1/n)‖y − Xθ‖² + θᵀQθ.

    ``Q`` is a (p, p) matrix, a (p,) diagonal, or a scalar ridge strength.
    """
    design = _matrix(X, "X")
    n, p = design.shape
    response = _vector(y, "y", n)
    penalty = np.asarray(Q, dtype=np.float64)
    if penalty.ndim == 0:
        penalty = float(penalty) * np.eye(p)
    elif penalty.shape == (p,):
        penalty = np.diag(penalty)
    elif penalty.shape != (p, p):
        raise ValueError(f"Q must be a scalar, shape ({p},) or ({p}, {p}); got {penalty.shape}")
    return np.linalg.solve(design.T @ design + n * penalty, design.T @ response)


def gradient_descent_path(
    X: Any, y: Any, steps: int, step_size: float, theta0: Any = None
) -> np.ndarray:
    """Iterates θ_0..θ_steps of θ_{t+1} = θ_t + ε Xᵀ(y − Xθ_t)/n, shape (steps + 1, p)."""
    design = _matrix(X, "X")
    n, p = design.shape
    response = _vector(y, "y", n)
    theta = np.zeros(p) if theta0 is None else _vector(theta0, "theta0", p).copy()
    gram, moment = design.T @ design / n, design.T @ response / n
    path = np.empty((int(steps) + 1, p))
    path[0] = theta
    for step in range(1, int(steps) + 1):
        theta = theta + step_size * (moment - gram @ theta)
        path[step] = theta
    return path


def linear_mse_target(X: Any, y: Any, theta: Any) -> np.ndarray:
    """−∇L for L = (1/n)‖y − Xθ‖² (mean squared error without ½): (2/n)Xᵀ(y − Xθ).

    ``theta`` may be (p,) or stacked (m, p); the result has the same shape.
    """
    design = _matrix(X, "X")
    n, p = design.shape
    response = _vector(y, "y", n)
    thetas = np.asarray(theta, dtype=np.float64)
    if thetas.shape[-1] != p or thetas.ndim not in (1, 2):
        raise ValueError(f"theta must have shape ({p},) or (m, {p}), got {thetas.shape}")
    residual = response - thetas @ design.T
    return 2.0 / n * residual @ design
