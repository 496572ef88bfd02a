"""Closed-form theory for early-stopped least squares (paper Eq. 5; Ali et al., 2019).

Gradient descent θ_{t+1} = θ_t + ε Xᵀ(y − Xθ_t)/n from θ_0 = 0 (GD on (1/2n)‖y − Xθ‖²) reaches
at step t exactly the minimiser of (1/n)‖y − Xθ‖² + θᵀ Λ_t θ, with

    Λ_t = V S [(I − εS)^(−t) − I]^(−1) Vᵀ,   XᵀX/n = V S Vᵀ,          (Eq. 5)

so θ_t = (XᵀX + nΛ_t)^(−1) Xᵀy. In the matching convention the target is −∇L of the mean
squared error without ½, (2/n)Xᵀ(y − Xθ_t) = 2Λ_tθ_t = ∇R for R = θᵀΛ_tθ: a SymQuadratic fit of
stacked endpoints recovers Λ_t. Everything here is float64 numpy.

Gradient descent is written once, in the moment form θ_{t+1} = θ_t + ε(b − Aθ_t) with
A = XᵀX/n and b = Xᵀy/n, batched over K problems (:func:`gd_path`, :func:`gd_iterate`; A is
(p, p) when the problems share a design, (K, p, p) for bootstrap resamples, whose moments are
Xᵀdiag(c)X/n and Xᵀ(c ⊙ y)/n for row counts c). Its target is :func:`mse_target`,
−∇L = 2(b − Aθ). :func:`gradient_descent_path` and :func:`linear_mse_target` are the same
computations for one (X, y). :func:`mse_path` is the loss along a path and
:func:`early_stopping_steps` replays Lightning's ``EarlyStopping(mode="min")`` over it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "early_stopping_penalty",
    "early_stopping_steps",
    "gd_iterate",
    "gd_path",
    "gradient_descent_path",
    "gram",
    "linear_mse_target",
    "moment",
    "mse_path",
    "mse_target",
    "penalized_least_squares",
    "resampled_grams",
    "resampled_moments",
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
    eigenvalues, eigenvectors = np.linalg.eigh(gram(design))
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


def gram(X: np.ndarray) -> np.ndarray:
    """A = XᵀX/n, the Hessian of (1/2n)‖y − Xθ‖²."""
    return X.T @ X / X.shape[0]


def moment(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """b = Xᵀy/n."""
    return X.T @ y / X.shape[0]


def resampled_grams(counts: np.ndarray, X: np.ndarray) -> np.ndarray:
    """X_bᵀX_b/n = Xᵀdiag(c_b)X/n for each row c_b of ``counts`` (K, n), shape (K, p, p)."""
    return np.einsum("kn,ni,nj->kij", counts.astype(np.float64), X, X, optimize=True) / X.shape[0]


def resampled_moments(counts: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """X_bᵀy_b/n = Xᵀ(c_b ⊙ y)/n for each row c_b of ``counts`` (K, n), shape (K, p)."""
    return counts @ (X * y[:, None]) / X.shape[0]


def _apply(A: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """Aθ for each θ: A (p, p) shared, or (K, p, p) with θ (K, p)."""
    if A.ndim == 2:
        return thetas @ A.T
    return np.einsum("kij,kj->ki", A, thetas)


def gd_path(
    A: np.ndarray,
    b: np.ndarray,
    steps: int,
    step_size: float,
    theta0: np.ndarray | None = None,
) -> np.ndarray:
    """Iterates θ_0..θ_steps of θ_{t+1} = θ_t + ε(b − Aθ_t), shape (steps + 1, K, p).

    A is (p, p) or (K, p, p); b is (K, p); θ_0 = ``theta0`` (None: 0).
    """
    path = np.zeros((int(steps) + 1, *b.shape))
    if theta0 is not None:
        path[0] = theta0
    for step in range(int(steps)):
        path[step + 1] = path[step] + step_size * (b - _apply(A, path[step]))
    return path


def gd_iterate(A: np.ndarray, b: np.ndarray, steps: int, step_size: float) -> np.ndarray:
    """θ_steps alone (no stored path): the update of :func:`gd_path`, shape of b."""
    theta = np.zeros_like(b)
    for _ in range(int(steps)):
        theta = theta + step_size * (b - _apply(A, theta))
    return theta


def mse_target(A: np.ndarray, b: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """−∇L = 2(b − Aθ) = (2/n)Xᵀ(y − Xθ) for the mean squared error without ½.

    Shapes as in :func:`gd_path`; ``theta`` may also be one (p,) vector with a (p, p) A.
    """
    return 2.0 * (b - _apply(A, theta))


def gradient_descent_path(
    X: Any, y: Any, steps: int, step_size: float, theta0: Any = None
) -> np.ndarray:
    """Iterates θ_0..θ_steps of θ_{t+1} = θ_t + ε Xᵀ(y − Xθ_t)/n, shape (steps + 1, p).

    The update of :func:`gd_path` for one problem, started at ``theta0`` (None: 0).
    """
    design = _matrix(X, "X")
    n, p = design.shape
    response = _vector(y, "y", n)
    start = None if theta0 is None else _vector(theta0, "theta0", p)
    return gd_path(gram(design), moment(design, response)[None, :], steps, step_size, start)[:, 0]


def linear_mse_target(X: Any, y: Any, theta: Any) -> np.ndarray:
    """−∇L for L = (1/n)‖y − Xθ‖² (mean squared error without ½): (2/n)Xᵀ(y − Xθ).

    ``theta`` may be (p,) or stacked (m, p); the result has the same shape (:func:`mse_target`).
    """
    design = _matrix(X, "X")
    n, p = design.shape
    response = _vector(y, "y", n)
    thetas = np.asarray(theta, dtype=np.float64)
    if thetas.shape[-1] != p or thetas.ndim not in (1, 2):
        raise ValueError(f"theta must have shape ({p},) or (m, {p}), got {thetas.shape}")
    return mse_target(gram(design), moment(design, response), thetas)


def mse_path(path: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """(1/n)‖y_k − Xθ‖² along ``path`` (T + 1, K, p) for the K responses ``Y`` (K, n) on one
    design X; shape (T + 1, K).

    Written as L_min,k + (θ − θ_ols,k)ᵀA(θ − θ_ols,k), equal to the residual form, so that tiny
    late decreases are not lost to cancellation.
    """
    A = gram(X)
    losses = np.empty(path.shape[:2])
    for k, y in enumerate(Y):
        ols, *_ = np.linalg.lstsq(X, y, rcond=None)
        floor = float(np.mean((y - X @ ols) ** 2))
        offset = path[:, k, :] - ols
        losses[:, k] = floor + np.einsum("ti,ij,tj->t", offset, A, offset)
    return losses


def early_stopping_steps(losses: Any, patience: int, min_delta: float):
    """Replay Lightning ``EarlyStopping(mode="min", patience, min_delta)`` over loss traces.

    ``losses`` is (T + 1,) or (T + 1, K): row e is the loss at θ_e, which Lightning monitors at
    the end of epoch e (before that epoch's update). An epoch improves when
    loss < best − min_delta; after ``patience`` epochs in a row without improvement training
    stops at the end of epoch e, leaving θ_{e+1}. Returns that step e + 1 per trace (an int for
    one trace, an array for K), or T when the callback never fires (the authors'
    ``callback_stop_step``).
    """
    traces = np.asarray(losses, dtype=np.float64)
    single = traces.ndim == 1
    traces = traces[:, None] if single else traces
    n_steps = traces.shape[0] - 1
    best = np.full(traces.shape[1], np.inf)
    wait = np.zeros(traces.shape[1], dtype=int)
    stop = np.full(traces.shape[1], n_steps)
    running = np.ones(traces.shape[1], dtype=bool)
    for epoch in range(n_steps):
        improved = traces[epoch] < best - min_delta
        best = np.where(running & improved, traces[epoch], best)
        wait = np.where(improved, 0, wait + 1)
        fired = running & (wait >= patience)
        stop[fired] = epoch + 1
        running &= ~fired
        if not running.any():
            break
    return int(stop[0]) if single else stop
