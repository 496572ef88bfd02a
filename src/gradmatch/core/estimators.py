"""Gradient-matching estimators: Λ̂ from stationarity (Eq. 3) and from trajectories (Eq. 4).

Eq. 3: Λ̂ = argmin_Λ (1/(mp)) Σ_k Σ_j (∂_j R(θ̂_k, Λ) + ∂_j L_k(θ̂_k))², stacked over m endpoints
(Section 2.2). Every family is linear in its coefficients c, ∇R(θ) = A(θ)c, so Eq. 3 is the linear
least-squares problem min_c ‖A c − b‖² with A the stacked design matrices and b the stacked
targets −∇L. Three solvers:

- ``method="lstsq"``: the exact minimiser (``numpy.linalg.lstsq``, SVD, float64).
- ``method="nnls"``: the same with every coefficient ≥ 0 (``scipy.optimize.nnls``).
- ``method="adam"``: the authors' procedure, for fidelity comparisons. Scales of ``positive``
  families are log-parametrised, λ = exp(β), and unconstrained families (DiagQuadratic,
  SymQuadratic) are fitted directly; the loss is the mean squared error over the coordinates;
  Adam with early stopping on the monitored fit loss (Lightning semantics: an epoch improves
  when loss < best − min_delta; stop after ``patience`` epochs without improvement) and an
  optional ReduceLROnPlateau. Options in :class:`AdamOptions`.

Stochastic matching (the authors' neural-network fits, Fig. 3 and Fig. 5)::

    fit = match_gradients(family, theta, target, method="adam",
                          adam=AdamOptions(lr=1e-2, max_epochs=1000, patience=50),
                          target_batches=lambda epoch: (loss_gradient(model, "mse", xb, yb)
                                                        for xb, yb in train_loader))

``target_batches(epoch)`` returns an iterable of target vectors −∇L_batch(θ̂) (numpy or torch,
shape of ``target``). Each Adam step uses one of them; the monitored value of an epoch (for early
stopping and the plateau scheduler) is the fit loss of its last batch, as Lightning logs it.
``target`` (e.g. the full-data −∇L) is then used only for the returned diagnostics.

``normalize=True`` is Appendix G.1: each design column g_i (the gradient of penalty i with unit
coefficient) is divided by its norm, the coefficients a_i are fitted, and λ_i = a_i/‖g_i‖.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from gradmatch.core.adam import AdamOptions, adam_init, adam_options, fit_adam, target_stream
from gradmatch.core.regularizers import Family

__all__ = ["METHODS", "AdamOptions", "Fit", "match_gradients", "match_trajectory"]

METHODS = ("lstsq", "nnls", "adam")


@dataclasses.dataclass(frozen=True)
class Fit:
    """Result of a gradient-matching fit.

    ``params``: name → float or ndarray. ``loss``: (1/N) Σ (∇R + ∇L)² over the N stacked
    equations (Eq. 3's objective). ``residual_ratio`` = ‖∇R + ∇L‖/‖∇L‖. ``cosine`` =
    cos(∇R, −∇L). ``r2`` = cosine² (the authors' projection R²). ``rank``: numerical rank of
    the stacked design matrix; rank < n_unknowns means Λ is not identified (e.g. SymQuadratic
    from m < p endpoints: rank = p(p+1)/2 − (p−m)(p−m+1)/2; or ElasticNet with every |θ| < β)
    and lstsq returns the minimum-norm solution. ``coefficients``: the fitted
    vector c with ∇R = A c. ``epochs`` and ``history`` (monitored loss per epoch) for ``"adam"``.
    """

    params: dict[str, Any]
    loss: float
    residual_ratio: float
    cosine: float
    r2: float
    n_equations: int
    n_unknowns: int
    rank: int
    method: str
    coefficients: np.ndarray = dataclasses.field(repr=False)
    epochs: int | None = None
    history: tuple[float, ...] | None = dataclasses.field(default=None, repr=False)


def _as_array(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in (1, 2) or array.size == 0:
        raise ValueError(
            f"{name} must have shape (p,) or stacked endpoints (m, p), got shape {array.shape}"
        )
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or inf value(s); pass finite values only")
    return array


def _check_pair(theta: Any, target: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    theta_array = _as_array(theta, names[0])
    target_array = _as_array(target, names[1])
    if theta_array.shape != target_array.shape:
        raise ValueError(
            f"{names[0]} has shape {theta_array.shape} but {names[1]} has shape "
            f"{target_array.shape}; they must match: (p,) or stacked endpoints (m, p)"
        )
    return np.atleast_2d(theta_array), np.atleast_2d(target_array)


def _check_family(family: Any) -> Family:
    if not isinstance(family, Family):
        raise ValueError(
            f"family must be a gradmatch regularizer family (Ridge, SmoothL1, ElasticNet, "
            f"DiagQuadratic, SymQuadratic, GradNormSquared), got {type(family).__name__}"
        )
    return family


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    return method


def _stacked_design(family: Family, thetas: np.ndarray) -> np.ndarray:
    return np.vstack([family.design(theta) for theta in thetas])


def _check_counts(
    family: Family, n_equations: int, n_unknowns: int, shape: tuple, allow: bool
) -> None:
    if n_unknowns <= n_equations or allow:
        return
    m, p = shape
    needed = math.ceil(n_unknowns / p)
    raise ValueError(
        f"{family!r} has {n_unknowns} unknowns but theta/target give only {n_equations} "
        f"equations ({m} endpoint(s) x {p} parameters); stack at least {needed} endpoints as "
        f"arrays of shape (m, {p}), or pass allow_underdetermined=True for the minimum-norm "
        f"least-squares solution"
    )


def _column_scales(design: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(design, axis=0)
    return np.where(norms > 0, norms, 1.0)


def _solve_lstsq(design: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, int]:
    solution, _, rank, _ = np.linalg.lstsq(design, target, rcond=None)
    return solution, int(rank)


def _solve_nnls(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    solution, _ = nnls(design, target, maxiter=50 * design.shape[1] + 100)
    return solution


def _diagnostics(design: np.ndarray, target: np.ndarray, coefficients: np.ndarray) -> dict:
    prediction = design @ coefficients
    residual = prediction - target
    target_norm = float(np.linalg.norm(target))
    prediction_norm = float(np.linalg.norm(prediction))
    denominator = target_norm * prediction_norm
    cosine = float(prediction @ target / denominator) if denominator > 0 else 0.0
    return {
        "loss": float(np.mean(residual**2)),
        "residual_ratio": float(np.linalg.norm(residual) / target_norm)
        if target_norm > 0
        else float("inf"),
        "cosine": cosine,
        "r2": cosine**2,
    }


def match_gradients(
    family: Family,
    theta: Any,
    target: Any,
    *,
    method: str = "lstsq",
    normalize: bool = False,
    adam: AdamOptions | dict | None = None,
    target_batches: Callable[[int], Iterable[Any]] | None = None,
    allow_underdetermined: bool = False,
) -> Fit:
    """Fit Λ̂ so that ∇R(θ̂, Λ̂) matches −∇L(θ̂) (paper Eq. 3), stacking endpoints (Section 2.2).

    ``theta`` and ``target`` are arrays of shape (p,) or (m, p); ``target`` is −∇L at ``theta``
    (e.g. :func:`gradmatch.loss_gradient`). ``method`` is ``"lstsq"``, ``"nnls"`` or ``"adam"``
    (see the module docstring; ``adam`` takes :class:`AdamOptions` or a dict of its fields, and
    ``target_batches`` makes the adam fit stochastic). ``normalize=True`` is Appendix G.1.
    A family with more unknowns than equations raises ``ValueError`` unless
    ``allow_underdetermined=True`` (then lstsq returns the minimum-norm solution, as
    ``torch.linalg.lstsq``/SVD did for the authors' Fig. 7 at m = 1).
    """
    family = _check_family(family)
    method = _check_method(method)
    thetas, targets = _check_pair(theta, target, ("theta", "target"))
    if target_batches is not None and method != "adam":
        raise ValueError(f"target_batches needs method='adam', got method={method!r}")
    if adam is not None and method != "adam":
        raise ValueError(f"adam options need method='adam', got method={method!r}")
    design = _stacked_design(family, thetas)
    stacked_target = targets.reshape(-1)
    n_equations, n_unknowns = design.shape
    _check_counts(family, n_equations, n_unknowns, thetas.shape, allow_underdetermined)
    scales = _column_scales(design) if normalize else np.ones(n_unknowns)
    scaled_design = design / scales
    epochs, history, rank = None, None, None
    if method == "lstsq":
        scaled_coefficients, rank = _solve_lstsq(scaled_design, stacked_target)
    elif method == "nnls":
        scaled_coefficients = _solve_nnls(scaled_design, stacked_target)
    else:
        options = adam_options(adam)
        batches = target_stream(target_batches, targets.shape)
        init = adam_init(family, options, thetas.shape[1])
        scaled_coefficients, epochs, history = fit_adam(
            scaled_design, stacked_target, family.positive, init, options, batches
        )
    coefficients = scaled_coefficients / scales
    return Fit(
        params=family.params(coefficients, thetas.shape[1]),
        n_equations=n_equations,
        n_unknowns=n_unknowns,
        method=method,
        rank=int(np.linalg.matrix_rank(scaled_design)) if rank is None else rank,
        coefficients=coefficients,
        epochs=epochs,
        history=history,
        **_diagnostics(design, stacked_target, coefficients),
    )


def match_trajectory(
    family: Family,
    thetas: Any,
    updates: Any,
    grads: Any,
    lr: float,
    *,
    method: str = "lstsq",
    normalize: bool = False,
    adam: AdamOptions | dict | None = None,
    allow_underdetermined: bool = False,
) -> Fit:
    """Trajectory form (paper Eq. 4): θ_{t+1} − θ_t = −η(∇L(θ_t) + ∇R(θ_t)).

    ``thetas`` (T, p) are the iterates θ_t, ``updates`` (T, p) the steps Δθ_t = θ_{t+1} − θ_t and
    ``grads`` (T, p) the loss gradients ∇L(θ_t) (not negated), ``lr`` the step size η. Regresses
    the target −Δθ_t/η − ∇L(θ_t) on ∇R(θ_t), stacked over the steps; with Δθ = 0 this is the
    stationarity condition of :func:`match_gradients`.
    """
    lr = float(lr)
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr (the step size η) must be finite and > 0, got {lr}")
    theta_array, update_array = _check_pair(thetas, updates, ("thetas", "updates"))
    _, grad_array = _check_pair(thetas, grads, ("thetas", "grads"))
    target = -update_array / lr - grad_array
    return match_gradients(
        family,
        theta_array,
        target,
        method=method,
        normalize=normalize,
        adam=adam,
        allow_underdetermined=allow_underdetermined,
    )
