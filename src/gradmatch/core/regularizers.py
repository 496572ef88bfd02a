"""Regularizer families R(θ, Λ) whose gradient is linear in the parameters Λ.

Gradient matching (paper Eq. 1-3) regresses the target −∇L(θ̂) on ∇_θ R(θ̂, Λ). Every family
here is linear in Λ, so ∇_θ R(θ, Λ) = A(θ) c(Λ) with a *design matrix* A(θ) of shape
``(p, n_unknowns(p))`` and a coefficient vector c. :meth:`Family.design` returns A(θ);
:meth:`Family.params` maps c to named parameters and :meth:`Family.coefficients` back.

``positive`` marks families whose coefficients are scales λ ≥ 0: the ``"nnls"`` method bounds
them at zero and the ``"adam"`` method log-parametrises them, λ = exp(β), as the authors did.

Conventions: θ is a float64 numpy vector of p entries (all model parameters, biases included);
h_β is PyTorch's ``smooth_l1_loss`` against 0, h_β(θ) = θ²/(2β) for |θ| < β and |θ| − β/2
otherwise, with h_β'(θ) = θ/β inside and sign(θ) outside (β = 0 is the plain absolute value).
This module imports numpy only; :class:`GradNormSquared` imports torch when it needs a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "DiagQuadratic",
    "ElasticNet",
    "Family",
    "GradNormSquared",
    "Ridge",
    "SmoothL1",
    "SymQuadratic",
]


def _as_vector(theta: Any, name: str = "theta") -> np.ndarray:
    if hasattr(theta, "detach"):
        theta = theta.detach().cpu().numpy()
    vector = np.asarray(theta, dtype=np.float64)
    if vector.ndim != 1:
        raise ValueError(f"{name} must be a vector of shape (p,), got shape {vector.shape}")
    return vector


def smooth_l1(theta: np.ndarray, beta: float) -> np.ndarray:
    """h_β(θ) element-wise: θ²/(2β) for |θ| < β, |θ| − β/2 otherwise (torch smooth_l1 vs 0)."""
    magnitude = np.abs(theta)
    if beta == 0:
        return magnitude
    return np.where(magnitude < beta, 0.5 * theta**2 / beta, magnitude - 0.5 * beta)


def smooth_l1_gradient(theta: np.ndarray, beta: float) -> np.ndarray:
    """h_β'(θ) element-wise: θ/β for |θ| < β, sign(θ) otherwise."""
    if beta == 0:
        return np.sign(theta)
    return np.where(np.abs(theta) < beta, theta / beta, np.sign(theta))


def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"beta (smoothing width of h_β) must be finite and >= 0, got {beta}")
    return beta


class Family:
    """A regularizer family R(θ, Λ) with ∇_θ R(θ, Λ) = design(θ) @ coefficients(Λ).

    Subclasses set ``names`` (the parameter names, in coefficient order) and ``positive``
    (whether all coefficients are scales λ ≥ 0), and implement :meth:`n_unknowns`,
    :meth:`design`, :meth:`params` and :meth:`penalty`.
    """

    names: tuple[str, ...] = ()
    positive: bool = True

    def n_unknowns(self, p: int) -> int:
        """Number of coefficients for a model with ``p`` parameters."""
        return len(self.names)

    def shapes(self, p: int) -> dict[str, tuple[int, ...]]:
        """Shape of each named parameter for a model with ``p`` parameters."""
        return {name: () for name in self.names}

    def design(self, theta: Any) -> np.ndarray:
        """Design matrix A(θ) of shape (p, n_unknowns(p)): column i is ∂∇R/∂c_i at θ."""
        raise NotImplementedError

    def params(self, coefficients: np.ndarray, p: int) -> dict[str, Any]:
        """Named parameters from the coefficient vector (scalars as float)."""
        coefficients = np.asarray(coefficients, dtype=np.float64)
        return {name: float(value) for name, value in zip(self.names, coefficients, strict=True)}

    def coefficients(self, params: dict[str, Any], p: int) -> np.ndarray:
        """Inverse of :meth:`params`: the coefficient vector c."""
        return np.array([float(params[name]) for name in self.names], dtype=np.float64)

    def gradient(self, theta: Any, params: dict[str, Any]) -> np.ndarray:
        """∇_θ R(θ, Λ) = A(θ) c(Λ)."""
        vector = _as_vector(theta)
        return self.design(vector) @ self.coefficients(params, vector.size)

    def penalty(self, theta: Any, params: dict[str, Any]) -> float:
        """R(θ, Λ)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Ridge(Family):
    """Ridge: R = λ Σ_j θ_j², ∇R = 2λθ. One scale, ``names = ("lambda",)``.

    Least squares gives the closed form λ̂ = θᵀ(−∇L) / (2θᵀθ) (paper, linear closed form).
    """

    names = ("lambda",)
    positive = True

    def design(self, theta: Any) -> np.ndarray:
        return 2.0 * _as_vector(theta)[:, None]

    def penalty(self, theta: Any, params: dict[str, Any]) -> float:
        return float(params["lambda"] * np.sum(_as_vector(theta) ** 2))


class SmoothL1(Family):
    """Smoothed lasso: R = λ Σ_j h_β(θ_j), ∇R = λ h_β'(θ). ``names = ("lambda",)``.

    Inside |θ| < β the penalty acts as ℓ2 with strength λ/(2β) (paper H.2).
    """

    names = ("lambda",)
    positive = True

    def __init__(self, beta: float = 1e-3) -> None:
        self.beta = _check_beta(beta)

    def design(self, theta: Any) -> np.ndarray:
        return smooth_l1_gradient(_as_vector(theta), self.beta)[:, None]

    def penalty(self, theta: Any, params: dict[str, Any]) -> float:
        return float(params["lambda"] * np.sum(smooth_l1(_as_vector(theta), self.beta)))

    def __repr__(self) -> str:
        return f"SmoothL1(beta={self.beta!r})"


class ElasticNet(Family):
    """Smoothed elastic net: R = λ1 Σ h_β(θ_j) + λ2 Σ θ_j², ∇R = λ1 h_β'(θ) + 2λ2 θ.

    ``names = ("lambda_l1", "lambda_l2")``; the default β = 1e-3 is the paper's smoothing (H.2).

    Relation to scikit-learn's ``ElasticNet(alpha, l1_ratio)``, which minimises
    (1/(2n))‖y − Xw‖² + alpha·l1_ratio‖w‖₁ + (alpha·(1 − l1_ratio)/2)‖w‖²: multiplying by 2
    gives our convention, the mean squared error (1/n)‖y − Xw‖² without ½ plus
    2·alpha·l1_ratio‖w‖₁ + alpha·(1 − l1_ratio)‖w‖², so with the target −∇ of that MSE the
    matched scales are λ1 = 2·alpha·l1_ratio and λ2 = alpha·(1 − l1_ratio) (for β below the
    smallest non-zero |w|, where h_β' = sign).
    """

    names = ("lambda_l1", "lambda_l2")
    positive = True

    def __init__(self, beta: float = 1e-3) -> None:
        self.beta = _check_beta(beta)

    def design(self, theta: Any) -> np.ndarray:
        vector = _as_vector(theta)
        return np.column_stack([smooth_l1_gradient(vector, self.beta), 2.0 * vector])

    def penalty(self, theta: Any, params: dict[str, Any]) -> float:
        vector = _as_vector(theta)
        l1_part = params["lambda_l1"] * np.sum(smooth_l1(vector, self.beta))
        return float(l1_part + params["lambda_l2"] * np.sum(vector**2))

    def __repr__(self) -> str:
        return f"ElasticNet(beta={self.beta!r})"


class DiagQuadratic(Family):
    """Diagonal quadratic form: R = θᵀ diag(q) θ, ∇R = 2 q ⊙ θ; q unconstrained (p unknowns).

    ``names = ("q",)``; ``params`` returns q as an array of shape (p,). From one endpoint the
    system is exactly determined: q_j = (−∇L)_j / (2θ_j). The design matrix is dense (p, p):
    meant for linear models and small networks (p up to a few thousand).
    """

    names = ("q",)
    positive = False

    def n_unknowns(self, p: int) -> int:
        return p

    def shapes(self, p: int) -> dict[str, tuple[int, ...]]:
        return {"q": (p,)}

    def design(self, theta: Any) -> np.ndarray:
        return np.diag(2.0 * _as_vector(theta))

    def params(self, coefficients: np.ndarray, p: int) -> dict[str, Any]:
        return {"q": np.asarray(coefficients, dtype=np.float64).reshape(p).copy()}

    def coefficients(self, params: dict[str, Any], p: int) -> np.ndarray:
        return np.asarray(params["q"], dtype=np.float64).reshape(p)

    def gradient(self, theta: Any, params: dict[str, Any]) -> np.ndarray:
        vector = _as_vector(theta)
        return 2.0 * self.coefficients(params, vector.size) * vector

    def penalty(self, theta: Any, params: dict[str, Any]) -> float:
        vector = _as_vector(theta)
        return float(np.sum(self.coefficients(params, vector.size) * vector**2))


class SymQuadratic(Family):
    """Symmetric quadratic form: R = θᵀ Q θ with Q = Qᵀ, ∇R = 2Qθ; p(p+1)/2 unknowns.

    The unknowns are the upper triangle of Q in ``numpy.triu_indices(p)`` order; ``params``
    returns the full symmetric matrix ``{"Q": (p, p) array}``. One endpoint gives p equations,
    so Q is identifiable from m ≥ (p + 1)/2 stacked endpoints (m ≥ 6 for p = 10; Fig. 4B).
    With the mean-squared-error target of early-stopped OLS, Q̂ = Λ_t of Eq. 5.
    """

    names = ("Q",)
    positive = False

    def n_unknowns(self, p: int) -> int:
        return p * (p + 1) // 2

    def shapes(self, p: int) -> dict[str, tuple[int, ...]]:
        return {"Q": (p, p)}

    def design(self, theta: Any) -> np.ndarray:
        vector = _as_vector(theta)
        p = vector.size
        rows, cols = np.triu_indices(p)
        design = np.zeros((p, rows.size))
        unknown = np.arange(rows.size)
        # Q_ab (a <= b) enters (2Qθ)_a with 2θ_b, and for a < b also (2Qθ)_b with 2θ_a.
        design[rows, unknown] += 2.0 * vector[cols]
        off_diagonal = rows != cols
        design[cols[off_diagonal], unknown[off_diagonal]] += 2.0 * vector[rows[off_diagonal]]
        return design

    def params(self, coefficients: np.ndarray, p: int) -> dict[str, Any]:
        rows, cols = np.triu_indices(p)
        matrix = np.zeros((p, p))
        matrix[rows, cols] = coefficients
        matrix[cols, rows] = coefficients
        return {"Q": matrix}

    def coefficients(self, params: dict[str, Any], p: int) -> np.ndarray:
        matrix = np.asarray(params["Q"], dtype=np.float64).reshape(p, p)
        return matrix[np.triu_indices(p)]

    def gradient(self, theta: Any, params: dict[str, Any]) -> np.ndarray:
        vector = _as_vector(theta)
        matrix = np.asarray(params["Q"], dtype=np.float64)
        return 2.0 * (0.5 * (matrix + matrix.T)) @ vector

    def penalty(self, theta: Any, params: dict[str, Any]) -> float:
        vector = _as_vector(theta)
        return float(vector @ np.asarray(params["Q"], dtype=np.float64) @ vector)


class GradNormSquared(Family):
    """Implicit gradient regularization: R = (λ/p)‖∇L(θ)‖², ∇R = (2λ/p) H(θ)∇L(θ).

    ``names = ("lambda",)``. For gradient descent with step η the analytic value is λ = ηp/4
    (Barrett & Dherin; paper H.5). The design column (2/p)·H∇L needs the loss: build the family
    with ``model, loss, X, y`` (then :meth:`design` evaluates H∇L at any θ by double backprop,
    see :func:`gradmatch.core.autodiff.hessian_gradient`), or pass ``hessian_gradient=`` to
    :meth:`design` directly.
    """

    names = ("lambda",)
    positive = True

    def __init__(self, model=None, loss: str | None = None, X=None, y=None) -> None:
        self.model, self.loss, self.X, self.y = model, loss, X, y

    def hessian_gradient(self, theta: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise ValueError(
                "GradNormSquared.design needs H∇L: build GradNormSquared(model, loss, X, y) "
                "or pass hessian_gradient= to design()"
            )
        from gradmatch.core import autodiff

        _, hessian_gradient = autodiff.hessian_gradient(
            self.model, self.loss, self.X, self.y, theta=theta
        )
        return hessian_gradient.detach().cpu().double().numpy()

    def design(self, theta: Any, hessian_gradient: Any = None) -> np.ndarray:
        vector = _as_vector(theta)
        if hessian_gradient is None:
            hessian_gradient = self.hessian_gradient(vector)
        column = _as_vector(hessian_gradient, "hessian_gradient")
        if column.shape != vector.shape:
            raise ValueError(
                f"hessian_gradient has shape {column.shape} but theta has shape {vector.shape}"
            )
        return (2.0 / vector.size) * column[:, None]

    def penalty(self, theta: Any, params: dict[str, Any]) -> float:
        if self.model is None:
            raise ValueError("GradNormSquared.penalty needs GradNormSquared(model, loss, X, y)")
        from gradmatch.core import autodiff

        gradient = autodiff.gradient(self.model, self.loss, self.X, self.y, theta=theta)
        vector = gradient.detach().cpu().double().numpy()
        return float(params["lambda"] * np.sum(vector**2) / vector.size)
