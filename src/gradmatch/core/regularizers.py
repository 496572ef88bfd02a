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
This module imports numpy only; :class:`GradNormSquared` imports torch when it needs a model,
and :meth:`Family.design_blocks` works on the torch tensors it is given.

How the estimator solves each family (``Family.solver``): ``"columns"`` (Ridge, SmoothL1,
ElasticNet, and their per-group forms) by normal equations accumulated in float64 over chunks
of θ (:meth:`Family.design_blocks`, never more than a chunk of the design in memory);
``"diagonal"`` (DiagQuadratic) by its per-coordinate closed form, O(mp); ``"symmetric"``
(SymQuadratic) by a structured solve from the SVD of the stacked endpoints (no p²-row design);
``"dense"`` (GradNormSquared) from :meth:`Family.design`.

Identifiability is judged by the rank of the stacked design, not by counting equations:
SymQuadratic from m endpoints spanning r dimensions has rank p(p+1)/2 − (p−r)(p−r+1)/2, so it
needs m ≥ p linearly independent endpoints (p = 10 for Fig. 4B: 55 unknowns, rank 45 at m = 6).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradmatch.core.groups import ParameterGroups, as_groups

__all__ = [
    "SOLVERS",
    "DiagQuadratic",
    "ElasticNet",
    "Family",
    "GradNormSquared",
    "Ridge",
    "SmoothL1",
    "SymQuadratic",
]


SOLVERS = ("columns", "diagonal", "symmetric", "dense")


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


def _smooth_l1_gradient_torch(theta, beta: float):
    """h_β'(θ) for a torch tensor (same formula as :func:`smooth_l1_gradient`)."""
    if beta == 0:
        return theta.sign()
    return theta.div(beta).where(theta.abs() < beta, theta.sign())


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
    solver: str = "dense"

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

    def design_blocks(self, theta: Any, chunk: int):
        """Yield (start, stop, columns, block): rows start..stop of A(θ), restricted to the
        coefficient indices ``columns`` (zero elsewhere), as float64 torch tensors of at most
        ``chunk`` rows. Only ``solver = "columns"`` families implement it."""
        raise NotImplementedError(f"{self!r} has no chunked design (solver {self.solver!r})")

    def identification(self, p: int, m: int) -> str:
        """What the family needs for a full-rank stacked design (used in error messages)."""
        return "its design columns must be linearly independent at the given θ"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _ColumnFamily(Family):
    """A family whose design columns act coordinate-wise: A_j· = f(θ_j), optionally per group.

    Ungrouped, ``names`` has one scale per column. With ``groups`` (see
    :mod:`gradmatch.core.groups`) each column is split by group: column i of group g is f_i(θ)
    on the coordinates of g and 0 elsewhere, the coefficient vector is name-major
    (c = [λ_{name0,g0}, …, λ_{name0,gG}, λ_{name1,g0}, …]) and ``params`` returns for each name
    a dict group name → float.
    """

    solver = "columns"
    column_names: tuple[str, ...] = ()

    def __init__(self, groups: Any = None) -> None:
        self.groups: ParameterGroups | None = None if groups is None else as_groups(groups)
        self.names = self.column_names

    # the coordinate-wise columns f_i(θ), numpy (p, k0) and torch (n, k0)
    def _columns(self, vector: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _columns_torch(self, vector):
        raise NotImplementedError

    def _n_groups(self) -> int:
        return 1 if self.groups is None else len(self.groups.names)

    def n_unknowns(self, p: int) -> int:
        return len(self.column_names) * self._n_groups()

    def shapes(self, p: int) -> dict[str, tuple[int, ...]]:
        if self.groups is None:
            return {name: () for name in self.names}
        return {name: (self._n_groups(),) for name in self.names}

    def design(self, theta: Any) -> np.ndarray:
        vector = _as_vector(theta)
        columns = self._columns(vector)
        if self.groups is None:
            return columns
        self.groups.check_size(vector.size)
        n_groups = self._n_groups()
        design = np.zeros((vector.size, columns.shape[1] * n_groups))
        for start, stop, group in self.groups.segments:
            for column in range(columns.shape[1]):
                design[start:stop, column * n_groups + group] = columns[start:stop, column]
        return design

    def design_blocks(self, theta: Any, chunk: int):
        p = int(theta.numel())
        k0, n_groups = len(self.column_names), self._n_groups()
        if self.groups is None:
            segments = ((0, p, 0),)
        else:
            self.groups.check_size(p)
            segments = self.groups.segments
        for start, stop, group in segments:
            columns = [column * n_groups + group for column in range(k0)]
            for low in range(start, stop, chunk):
                high = min(low + chunk, stop)
                block = self._columns_torch(theta[low:high].double())
                yield low, high, columns, block

    def params(self, coefficients: np.ndarray, p: int) -> dict[str, Any]:
        values = np.asarray(coefficients, dtype=np.float64).reshape(-1)
        if self.groups is None:
            return super().params(values, p)
        n_groups = self._n_groups()
        return {
            name: {
                group: float(values[index * n_groups + position])
                for position, group in enumerate(self.groups.names)
            }
            for index, name in enumerate(self.names)
        }

    def coefficients(self, params: dict[str, Any], p: int) -> np.ndarray:
        if self.groups is None:
            return super().coefficients(params, p)
        parts = []
        for name in self.names:
            value = params[name]
            if isinstance(value, dict):
                missing = sorted(set(self.groups.names) - set(value))
                if missing:
                    raise ValueError(f"params[{name!r}] lacks groups {missing}")
                value = [value[group] for group in self.groups.names]
            parts.append(np.broadcast_to(np.asarray(value, dtype=np.float64), (self._n_groups(),)))
        return np.concatenate(parts)

    def _weighted_sum(self, params: dict[str, Any], name: str, values: np.ndarray) -> float:
        """Σ_j λ_name(j) values_j: λ · Σ values ungrouped, Σ_g λ_g Σ_{j∈g} values_j grouped."""
        if self.groups is None:
            return float(params[name] * np.sum(values))
        self.groups.check_size(values.size)
        index, n_groups = self.names.index(name), self._n_groups()
        scales = self.coefficients(params, values.size)[index * n_groups : (index + 1) * n_groups]
        return float(
            sum(
                scales[group] * np.sum(values[start:stop])
                for start, stop, group in self.groups.segments
            )
        )

    def identification(self, p: int, m: int) -> str:
        where = "in every group" if self.groups is not None else ""
        return (
            f"each column ({', '.join(self.column_names)}) needs θ ≠ 0 {where}".rstrip()
            + "; more endpoints do not help a zero or collinear column"
        )

    def _repr_groups(self) -> str:
        return "" if self.groups is None else f"groups={list(self.groups.names)}"


class Ridge(_ColumnFamily):
    """Ridge: R = λ Σ_j θ_j², ∇R = 2λθ. One scale, ``names = ("lambda",)``.

    Least squares gives the closed form λ̂ = θᵀ(−∇L) / (2θᵀθ) (paper, linear closed form).
    ``Ridge(groups=parameter_groups(model))``: R = Σ_g λ_g Σ_{j∈g} θ_j², one λ per group, with
    the closed form λ̂_g = θ_gᵀ(−∇L)_g / (2θ_gᵀθ_g); ``params["lambda"]`` is then a dict
    group name → λ̂_g.
    """

    column_names = ("lambda",)
    positive = True

    def __init__(self, groups: Any = None) -> None:
        super().__init__(groups)

    def _columns(self, vector: np.ndarray) -> np.ndarray:
        return 2.0 * vector[:, None]

    def _columns_torch(self, vector):
        return 2.0 * vector[:, None]

    def penalty(self, theta: Any, params: dict[str, Any]) -> float:
        return self._weighted_sum(params, "lambda", _as_vector(theta) ** 2)

    def __repr__(self) -> str:
        return f"Ridge({self._repr_groups()})"


class SmoothL1(_ColumnFamily):
    """Smoothed lasso: R = λ Σ_j h_β(θ_j), ∇R = λ h_β'(θ). ``names = ("lambda",)``.

    Inside |θ| < β the penalty acts as ℓ2 with strength λ/(2β) (paper H.2). ``groups=``: one λ
    per parameter group (see :class:`Ridge`).
    """

    column_names = ("lambda",)
    positive = True

    def __init__(self, beta: float = 1e-3, groups: Any = None) -> None:
        super().__init__(groups)
        self.beta = _check_beta(beta)

    def _columns(self, vector: np.ndarray) -> np.ndarray:
        return smooth_l1_gradient(vector, self.beta)[:, None]

    def _columns_torch(self, vector):
        return _smooth_l1_gradient_torch(vector, self.beta)[:, None]

    def penalty(self, theta: Any, params: dict[str, Any]) -> float:
        return self._weighted_sum(params, "lambda", smooth_l1(_as_vector(theta), self.beta))

    def __repr__(self) -> str:
        groups = self._repr_groups()
        return f"SmoothL1(beta={self.beta!r}{', ' + groups if groups else ''})"


class ElasticNet(_ColumnFamily):
    """Smoothed elastic net: R = λ1 Σ h_β(θ_j) + λ2 Σ θ_j², ∇R = λ1 h_β'(θ) + 2λ2 θ.

    ``names = ("lambda_l1", "lambda_l2")``; the default β = 1e-3 is the paper's smoothing (H.2).
    ``groups=``: one (λ1, λ2) pair per parameter group (see :class:`Ridge`).

    Relation to scikit-learn's ``ElasticNet(alpha, l1_ratio)``, which minimises
    (1/(2n))‖y − Xw‖² + alpha·l1_ratio‖w‖₁ + (alpha·(1 − l1_ratio)/2)‖w‖²: multiplying by 2
    gives our convention, the mean squared error (1/n)‖y − Xw‖² without ½ plus
    2·alpha·l1_ratio‖w‖₁ + alpha·(1 − l1_ratio)‖w‖², so with the target −∇ of that MSE the
    matched scales are λ1 = 2·alpha·l1_ratio and λ2 = alpha·(1 − l1_ratio) (for β below the
    smallest non-zero |w|, where h_β' = sign).

    Identifiability: with every |θ_j| < β, h_β'(θ) = θ/β is collinear with 2θ and (λ1, λ2) is
    not identified (only λ1/(2β) + λ2 is); some |θ_j| ≥ β are needed (in every group).
    """

    column_names = ("lambda_l1", "lambda_l2")
    positive = True

    def __init__(self, beta: float = 1e-3, groups: Any = None) -> None:
        super().__init__(groups)
        self.beta = _check_beta(beta)

    def _columns(self, vector: np.ndarray) -> np.ndarray:
        return np.column_stack([smooth_l1_gradient(vector, self.beta), 2.0 * vector])

    def _columns_torch(self, vector):
        import torch

        return torch.stack([_smooth_l1_gradient_torch(vector, self.beta), 2.0 * vector], dim=1)

    def penalty(self, theta: Any, params: dict[str, Any]) -> float:
        vector = _as_vector(theta)
        l1_part = self._weighted_sum(params, "lambda_l1", smooth_l1(vector, self.beta))
        return float(l1_part + self._weighted_sum(params, "lambda_l2", vector**2))

    def identification(self, p: int, m: int) -> str:
        where = " in every group" if self.groups is not None else ""
        return (
            f"ElasticNet needs some |θ_j| ≥ β = {self.beta:g}{where}: with every |θ| < β, "
            f"h_β'(θ) = θ/β is collinear with 2θ and only λ1/(2β) + λ2 is identified; more "
            f"endpoints with the same property do not help"
        )

    def __repr__(self) -> str:
        groups = self._repr_groups()
        return f"ElasticNet(beta={self.beta!r}{', ' + groups if groups else ''})"


class DiagQuadratic(Family):
    """Diagonal quadratic form: R = θᵀ diag(q) θ, ∇R = 2 q ⊙ θ; q unconstrained (p unknowns).

    ``names = ("q",)``; ``params`` returns q as an array of shape (p,). The stacked problem
    separates by coordinate, so the estimator solves it in closed form, O(mp), without a design:
    q̂_j = Σ_k θ_kj (−∇L_k)_j / (2 Σ_k θ_kj²) (one endpoint: q̂_j = (−∇L)_j / (2θ_j)); a coordinate
    that is zero in every endpoint is not identified (q̂_j = 0, the minimum-norm value).
    :meth:`design` (dense (p, p), for the ``"adam"`` method and tests) is for small p only.
    """

    names = ("q",)
    positive = False
    solver = "diagonal"

    def identification(self, p: int, m: int) -> str:
        return "every coordinate j needs θ_kj ≠ 0 in at least one endpoint"

    def n_unknowns(self, p: int) -> int:
        return p

    def shapes(self, p: int) -> dict[str, tuple[int, ...]]:
        return {"q": (p,)}

    def design(self, theta: Any) -> np.ndarray:
        return np.diag(2.0 * _as_vector(theta))

    def params(self, coefficients: np.ndarray, p: int) -> dict[str, Any]:
        if hasattr(coefficients, "detach"):  # torch inputs keep q on their device
            return {"q": coefficients.reshape(p)}
        return {"q": np.asarray(coefficients, dtype=np.float64).reshape(p)}

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
    but counting equations is not enough: Q ↦ (2Qθ_k)_k vanishes on every symmetric Q supported
    on the orthogonal complement of span{θ_k}, so m endpoints spanning r dimensions give a
    stacked design of rank p(p+1)/2 − (p−r)(p−r+1)/2, and Q is identified only from m ≥ p
    linearly independent endpoints (m ≥ 10 for p = 10; Fig. 4B). With the mean-squared-error
    target of early-stopped OLS, Q̂ = Λ_t of Eq. 5.

    The estimator solves min_Q Σ_k ‖2Qθ_k − b_k‖² through the SVD Θ = V diag(σ) Uᵀ of the
    stacked endpoints Θ (m × p): in the basis U, Q̃_ij = (σ_i W_ij + σ_j W_ji)/(2(σ_i² + σ_j²))
    with W = Vᵀ B U (the normal equations ΘᵀΘQ + QΘᵀΘ = (ΘᵀB + BᵀΘ)/2), in O(mp² + p³)
    without the (mp) × p(p+1)/2 design.
    """

    names = ("Q",)
    positive = False
    solver = "symmetric"

    def identification(self, p: int, m: int) -> str:
        return (
            f"SymQuadratic needs m ≥ p = {p} linearly independent endpoints "
            f"(rank p(p+1)/2 − (p−r)(p−r+1)/2 for endpoints spanning r dimensions)"
        )

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

    def identification(self, p: int, m: int) -> str:
        return "GradNormSquared needs H∇L ≠ 0 at θ"

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
