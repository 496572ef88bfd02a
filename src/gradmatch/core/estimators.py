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

Solvers by family (``Family.solver``, see :mod:`gradmatch.core.regularizers`): numpy inputs to an
ungrouped Ridge/SmoothL1/ElasticNet and every ``"adam"`` fit use the dense design (SVD
``lstsq`` and ``nnls`` as before); per-group families and torch inputs use normal equations
accumulated in float64 over chunks of θ on the inputs' device (no host copy; the design is never
formed); DiagQuadratic uses its per-coordinate closed form, SymQuadratic the structured SVD
solve (the dense design only for a rank-deficient or nnls fit, which must be small). Torch
inputs give torch coefficients on their device for DiagQuadratic and SymQuadratic; scalars are
floats either way.

Identifiability is judged by the rank of the stacked design (``Fit.rank``,
``Fit.rank_deficiency``), not by counting equations: a rank-deficient fit raises ``ValueError``
unless ``allow_underdetermined=True``, which returns the minimum-norm least-squares solution and
warns with :class:`UnderdeterminedWarning`.

Uncertainty (:mod:`gradmatch.core.uncertainty`): every fit carries HC1 standard errors
(``Fit.stderr``, assumption in ``Fit.se_method``) and 95 % intervals (``Fit.interval``).
For ``"nnls"`` and ``"adam"`` the same lstsq sandwich is evaluated at their coefficients and
residuals: it describes the sampling spread of the least-squares estimator around that point,
not the optimiser's own error (an unconverged Adam fit is not covered by it), and for nnls it
ignores the bound (a coefficient at 0 gets a symmetric interval).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from gradmatch.core import uncertainty
from gradmatch.core.adam import AdamOptions, adam_init, adam_options, fit_adam, target_stream
from gradmatch.core.regularizers import Family

__all__ = [
    "METHODS",
    "AdamOptions",
    "Fit",
    "UnderdeterminedWarning",
    "match_gradients",
    "match_trajectory",
]

METHODS = ("lstsq", "nnls", "adam")
CHUNK = 1 << 18  # coordinates per block of the chunked solvers (4 MB per float64 column)
DENSE_LIMIT = 5 * 10**7  # entries of a dense float64 design we agree to form (400 MB)
DENSE_SE_LIMIT = 2 * 10**7  # entries of the dense design for the SymQuadratic sandwich


class UnderdeterminedWarning(UserWarning):
    """A fit whose stacked design is rank deficient (Λ not identified; minimum-norm solution)."""


@dataclasses.dataclass(frozen=True)
class Fit:
    """Result of a gradient-matching fit.

    ``params``: name → float or ndarray (or dict group → float for per-group families).
    ``loss``: (1/N) Σ (∇R + ∇L)² over the N stacked equations (Eq. 3's objective).
    ``residual_ratio`` = ‖∇R + ∇L‖/‖∇L‖. ``cosine`` = cos(∇R, −∇L). ``r2`` = cosine² (the
    authors' projection R²). ``rank``: numerical rank of the stacked design;
    ``rank_deficiency`` = n_unknowns − rank > 0 means Λ is not identified (e.g. SymQuadratic
    from m < p endpoints: rank = p(p+1)/2 − (p−m)(p−m+1)/2; or ElasticNet with every |θ| < β)
    and lstsq returns the minimum-norm solution. ``coefficients``: the fitted vector c with
    ∇R = A c. ``epochs`` and ``history`` (monitored loss per epoch) for ``"adam"``.

    ``stderr``: standard error per coefficient, under the assumption stated in ``se_method``
    (by default HC1, heteroskedasticity-robust over the stacked coordinates, coordinates
    independent; see :mod:`gradmatch.core.uncertainty`); NaN where it does not exist, with the
    reason in ``se_method``. ``interval``: (low, high), ĉ ∓ 1.96·SE; ``stderr_params`` and
    ``interval_params`` give them by name, shaped like ``params``. ``stderr_source`` holds the
    standard errors or the function that computes them (SymQuadratic's sandwich is evaluated on
    first access of ``stderr``).
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
    coefficients: Any = dataclasses.field(repr=False)
    epochs: int | None = None
    history: tuple[float, ...] | None = dataclasses.field(default=None, repr=False)
    stderr_source: Any = dataclasses.field(default=None, repr=False, compare=False)
    se_method: str = ""
    family: Family | None = dataclasses.field(default=None, repr=False)

    @functools.cached_property
    def stderr(self) -> Any:
        """Standard error per coefficient (computed on first use when it is costly)."""
        source = self.stderr_source
        return source() if callable(source) else source

    @property
    def rank_deficiency(self) -> int:
        """n_unknowns − rank: the number of coefficient directions the data do not identify."""
        return self.n_unknowns - self.rank

    @property
    def interval(self) -> tuple[Any, Any]:
        """The 95 % interval (ĉ − 1.96·SE, ĉ + 1.96·SE) per coefficient."""
        half = uncertainty.Z95 * self.stderr
        return self.coefficients - half, self.coefficients + half

    def _by_name(self, values: Any) -> dict[str, Any]:
        if self.family is None:
            raise ValueError("this Fit was built without its family; use stderr / interval")
        p = _parameter_count(self.family, self.params)
        return self.family.params(values, p)

    @property
    def stderr_params(self) -> dict[str, Any]:
        """``stderr`` by name, shaped like ``params``."""
        return self._by_name(self.stderr)

    @property
    def interval_params(self) -> dict[str, tuple[Any, Any]]:
        """The 95 % interval by name: name → (low, high), shaped like ``params``."""
        low, high = (self._by_name(bound) for bound in self.interval)
        return {name: (low[name], high[name]) for name in low}


def _parameter_count(family: Family, params: dict[str, Any]) -> int:
    if "q" in params:
        return int(
            np.size(params["q"]) if not hasattr(params["q"], "numel") else params["q"].numel()
        )
    if "Q" in params:
        return int(params["Q"].shape[0])
    groups = getattr(family, "groups", None)
    return groups.size if groups is not None else 1


def _is_tensor(values: Any) -> bool:
    return hasattr(values, "detach") and hasattr(values, "device")


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


def _as_tensor(values: Any, name: str, like: Any):
    import torch

    tensor = values.detach() if _is_tensor(values) else torch.as_tensor(np.asarray(values))
    if _is_tensor(like):
        tensor = tensor.to(like.device)
    if not tensor.is_floating_point():
        tensor = tensor.double()
    if tensor.ndim not in (1, 2) or tensor.numel() == 0:
        raise ValueError(
            f"{name} must have shape (p,) or stacked endpoints (m, p), got shape "
            f"{tuple(tensor.shape)}"
        )
    # in chunks: torch.isfinite of the whole vector would cost several times its memory
    bad = sum(int((~torch.isfinite(part)).sum()) for part in tensor.reshape(-1).split(CHUNK))
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or inf value(s); pass finite values only")
    return tensor


def _check_pair(theta: Any, target: Any, names: tuple[str, str], on_torch: bool = False):
    if on_torch:
        like = theta if _is_tensor(theta) else target
        theta_array = _as_tensor(theta, names[0], like)
        target_array = _as_tensor(target, names[1], like)
    else:
        theta_array = _as_array(theta, names[0])
        target_array = _as_array(target, names[1])
    if tuple(theta_array.shape) != tuple(target_array.shape):
        raise ValueError(
            f"{names[0]} has shape {tuple(theta_array.shape)} but {names[1]} has shape "
            f"{tuple(target_array.shape)}; they must match: (p,) or stacked endpoints (m, p)"
        )
    if on_torch:
        return theta_array.reshape(-1, theta_array.shape[-1]), target_array.reshape(
            -1, target_array.shape[-1]
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


def _judge_rank(family: Family, rank: int, n_unknowns: int, shape: tuple, allow: bool) -> None:
    """Raise (or, with ``allow``, warn) when the stacked design does not identify Λ."""
    if rank >= n_unknowns:
        return
    m, p = shape
    message = (
        f"{family!r}: the stacked design of {m * p} equations ({m} endpoint(s) x {p} "
        f"parameters) has rank {rank} < {n_unknowns} unknowns (rank deficiency "
        f"{n_unknowns - rank}), so Λ is not identified; {family.identification(p, m)}"
    )
    if not allow:
        raise ValueError(
            f"{message}. Pass allow_underdetermined=True for the minimum-norm least-squares "
            f"solution"
        )
    warnings.warn(f"{message}; returning the minimum-norm solution", UnderdeterminedWarning, 3)


def _check_dense_size(family: Family, method: str, n_equations: int, n_unknowns: int) -> None:
    if n_equations * n_unknowns > DENSE_LIMIT:
        raise ValueError(
            f"{family!r} with method={method!r} needs the dense design of {n_equations} x "
            f"{n_unknowns} = {n_equations * n_unknowns:.3g} entries (limit {DENSE_LIMIT:.0e}); "
            f"use method='lstsq' with a family that has a structured solver, or fewer parameters"
        )


# ---- the dense path: the design as a numpy matrix --------------------------------------------


def _stacked_design(family: Family, thetas: np.ndarray) -> np.ndarray:
    return np.vstack([family.design(theta) for theta in thetas])


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
    return _summary(
        float(residual @ residual),
        float(prediction @ target),
        prediction_norm**2,
        target_norm**2,
        residual.size,
    )


def _summary(rss: float, cross: float, prediction_sq: float, target_sq: float, n: int) -> dict:
    """loss, residual ratio, cosine and R² from the sums Σr², Σ(Ac)b, Σ(Ac)², Σb²."""
    target_norm, prediction_norm = np.sqrt(target_sq), np.sqrt(prediction_sq)
    denominator = target_norm * prediction_norm
    cosine = float(cross / denominator) if denominator > 0 else 0.0
    return {
        "loss": float(rss / n),
        "residual_ratio": float(np.sqrt(rss) / target_norm) if target_norm > 0 else float("inf"),
        "cosine": cosine,
        "r2": cosine**2,
    }


def _dense_stderr(design: np.ndarray, residual: np.ndarray, rank: int) -> tuple[Any, str]:
    """HC1 standard errors of a dense fit (:func:`uncertainty.sandwich_or_reason`)."""

    def moments():
        return design.T @ design, (design * residual[:, None] ** 2).T @ design

    return uncertainty.sandwich_or_reason(*design.shape, rank, moments)


def _fit_dense(family, thetas, targets, method, normalize, adam, target_batches, allow) -> Fit:
    design = _stacked_design(family, thetas)
    stacked_target = targets.reshape(-1)
    n_equations, n_unknowns = design.shape
    scales = _column_scales(design) if normalize else np.ones(n_unknowns)
    scaled_design = design / scales
    epochs, history, rank = None, None, None
    if method == "lstsq":
        scaled_coefficients, rank = _solve_lstsq(scaled_design, stacked_target)
    else:
        rank = int(np.linalg.matrix_rank(scaled_design))
    _judge_rank(family, rank, n_unknowns, thetas.shape, allow)
    if method == "nnls":
        scaled_coefficients = _solve_nnls(scaled_design, stacked_target)
    elif method == "adam":
        options = adam_options(adam)
        batches = target_stream(target_batches, targets.shape)
        init = adam_init(family, options, thetas.shape[1])
        scaled_coefficients, epochs, history = fit_adam(
            scaled_design, stacked_target, family.positive, init, options, batches
        )
    coefficients = scaled_coefficients / scales
    stderr, se_method = _dense_stderr(design, design @ coefficients - stacked_target, rank)
    return Fit(
        params=family.params(coefficients, thetas.shape[1]),
        n_equations=n_equations,
        n_unknowns=n_unknowns,
        method=method,
        rank=rank,
        coefficients=coefficients,
        epochs=epochs,
        history=history,
        stderr_source=stderr,
        se_method=se_method,
        family=family,
        **_diagnostics(design, stacked_target, coefficients),
    )


# ---- the chunked path: normal equations of few-column families, in torch ---------------------


def _column_normal_equations(family, thetas, targets, chunk):
    """AᵀA, Aᵀb and bᵀb accumulated in float64 over design blocks (one pass)."""
    import torch

    n_unknowns = family.n_unknowns(thetas.shape[1])
    options = {"dtype": torch.float64, "device": thetas.device}
    gram = torch.zeros(n_unknowns, n_unknowns, **options)
    moment = torch.zeros(n_unknowns, **options)
    target_sq = torch.zeros((), **options)
    for theta, target in zip(thetas, targets, strict=True):
        for start, stop, columns, block in family.design_blocks(theta, chunk):
            values = target[start:stop].double()
            index = torch.as_tensor(columns, device=thetas.device)
            gram[index[:, None], index] += block.T @ block
            moment[index] += block.T @ values
            target_sq += values @ values
    return gram, moment, target_sq


def _solve_normal_equations(gram, moment, n_equations, method):
    """Minimum-norm (or non-negative) solution of AᵀA c = Aᵀb, and the numerical rank of A.

    The singular values of A are √eig(AᵀA); rank counts those above eps·max(N, k)·σ_max (the
    ``numpy.linalg.lstsq`` cutoff). Through AᵀA, singular values below ≈ 1e-8·σ_max are not
    resolved: a design that ill-conditioned is reported rank deficient.
    """
    import torch

    eigenvalues, vectors = torch.linalg.eigh(gram)
    singular = eigenvalues.clamp(min=0).sqrt()
    cutoff = np.finfo(np.float64).eps * max(n_equations, gram.shape[0]) * singular.max()
    cutoff = torch.maximum(cutoff, np.sqrt(np.finfo(np.float64).eps) * singular.max())
    keep = singular > cutoff
    rank = int(keep.sum())
    basis, values = vectors[:, keep], eigenvalues[keep]
    projected = basis.T @ moment
    if method == "lstsq":
        return basis @ (projected / values), rank
    from scipy.optimize import nnls

    root = (values.sqrt()[:, None] * basis.T).cpu().numpy()  # ‖Ac − b‖² = ‖Rc − d‖² + const
    reduced = (projected / values.sqrt()).cpu().numpy()
    solution, _ = nnls(root, reduced, maxiter=50 * gram.shape[0] + 100)
    return torch.as_tensor(solution, dtype=gram.dtype, device=gram.device), rank


def _column_residuals(family, thetas, targets, coefficients, chunk):
    """Second pass: Σr², Σ(Ac)b, Σ(Ac)² and the meat Aᵀdiag(r²)A at ``coefficients``."""
    import torch

    n_unknowns = coefficients.numel()
    options = {"dtype": torch.float64, "device": thetas.device}
    meat = torch.zeros(n_unknowns, n_unknowns, **options)
    sums = torch.zeros(3, **options)
    for theta, target in zip(thetas, targets, strict=True):
        for start, stop, columns, block in family.design_blocks(theta, chunk):
            values = target[start:stop].double()
            index = torch.as_tensor(columns, device=thetas.device)
            prediction = block @ coefficients[index]
            residual = prediction - values
            sums += torch.stack([residual @ residual, prediction @ values, prediction @ prediction])
            meat[index[:, None], index] += (block * residual[:, None] ** 2).T @ block
    return sums, meat


def _fit_columns(family, thetas, targets, method, normalize, allow, chunk) -> Fit:
    n_equations, p = thetas.numel(), thetas.shape[1]
    gram, moment, target_sq = _column_normal_equations(family, thetas, targets, chunk)
    norms = gram.diagonal().sqrt()
    scales = norms.where(norms > 0, 1.0) if normalize else gram.new_ones(norms.shape)
    scaled, rank = _solve_normal_equations(
        gram / (scales[:, None] * scales), moment / scales, n_equations, method
    )
    _judge_rank(family, rank, gram.shape[0], tuple(thetas.shape), allow)
    coefficients = scaled / scales
    sums, meat = _column_residuals(family, thetas, targets, coefficients, chunk)
    n_unknowns = gram.shape[0]
    stderr, se_method = uncertainty.sandwich_or_reason(
        n_equations, n_unknowns, rank, lambda: (gram.cpu().numpy(), meat.cpu().numpy())
    )
    rss, cross, prediction_sq = (float(value) for value in sums)
    values = coefficients.cpu().numpy()
    return Fit(
        params=family.params(values, p),
        n_equations=n_equations,
        n_unknowns=n_unknowns,
        method=method,
        rank=rank,
        coefficients=values,
        stderr_source=stderr,
        se_method=se_method,
        family=family,
        **_summary(rss, cross, prediction_sq, float(target_sq), n_equations),
    )


# ---- DiagQuadratic and SymQuadratic: structured solves, numpy or torch ------------------------


def _backend(array: Any):
    """(module, float64 cast, allocator) for a numpy array or a torch tensor (its device)."""
    if isinstance(array, np.ndarray):
        return np, (lambda values: values), (lambda size: np.empty(size))
    import torch

    return (
        torch,
        (lambda values: values.double()),
        (lambda size: torch.empty(size, dtype=torch.float64, device=array.device)),
    )


def _float(value: Any) -> float:
    return float(value)


def _fit_diagonal(family, thetas, targets, method, normalize, allow, chunk) -> Fit:
    """q̂_j = Σ_k θ_kj b_kj / (2 Σ_k θ_kj²), in O(mp) over column chunks (float64).

    The problem separates into p least-squares problems of one unknown, so coordinate j is
    identified exactly when θ_kj ≠ 0 for some k (a global SVD cutoff, eps·N·max‖column‖, would
    discard well-determined small coordinates at large p); otherwise q̂_j = 0, the minimum-norm
    value. ``normalize`` does not change the solution (column scaling cancels per coordinate).
    nnls is exact per coordinate: q̂_j = max(0, q̂_j). HC1 standard errors
    per coordinate, SE_j² = N/(N−k)·Σ_k r_kj²(2θ_kj)² / (4Σ_k θ_kj²)²; one endpoint leaves no
    residual degrees of freedom (NaN).
    """
    xp, f64, empty = _backend(thetas)
    m, p = thetas.shape
    n_equations = m * p
    q = empty(p)
    variance = empty(p) if m > 1 else None
    rss = cross = prediction_sq = target_sq = 0.0
    rank = 0
    for lo in range(0, p, chunk):
        theta, target = f64(thetas[:, lo : lo + chunk]), f64(targets[:, lo : lo + chunk])
        squares = (theta * theta).sum(0)
        identified = squares > 0
        rank += int(identified.sum())
        safe = xp.where(identified, squares, 1.0)
        value = xp.where(identified, (theta * target).sum(0) / (2 * safe), 0.0)
        if method == "nnls":
            value = xp.where(value > 0, value, 0.0)
        q[lo : lo + chunk] = value
        prediction = 2 * value * theta
        residual = prediction - target
        rss += _float((residual**2).sum())
        cross += _float((prediction * target).sum())
        prediction_sq += _float((prediction**2).sum())
        target_sq += _float((target**2).sum())
        if variance is not None:
            meat = ((residual * 2 * theta) ** 2).sum(0) / (4 * safe) ** 2
            variance[lo : lo + chunk] = xp.where(identified, meat, float("nan"))
    _judge_rank(family, rank, p, (m, p), allow)
    if variance is None:
        stderr, se_method = uncertainty.not_available(
            p, "one endpoint determines q exactly (N = k, no residual degrees of freedom)"
        )
    else:
        stderr = (variance * (n_equations / (n_equations - rank))) ** 0.5
        se_method = uncertainty.HC1 + "; per coordinate (diagonal design); NaN if q_j unidentified"
    return Fit(
        params=family.params(q, p),
        n_equations=n_equations,
        n_unknowns=p,
        method=method,
        rank=rank,
        coefficients=q,
        stderr_source=stderr,
        se_method=se_method,
        family=family,
        **_summary(rss, cross, prediction_sq, target_sq, n_equations),
    )


def _symmetric_rank(p: int, endpoint_rank: int) -> int:
    """Rank of the stacked SymQuadratic design: p(p+1)/2 − (p−r)(p−r+1)/2 for rank(Θ) = r."""
    free = p - endpoint_rank
    return p * (p + 1) // 2 - free * (free + 1) // 2


def _triu(xp, matrix):
    p = matrix.shape[0]
    if xp is np:
        return matrix[np.triu_indices(p)]
    rows, cols = xp.triu_indices(p, p, device=matrix.device)
    return matrix[rows, cols]


def _fit_symmetric(family, thetas, targets, decomposition) -> tuple:
    """min_Q ‖2ΘQ − B‖² over symmetric Q by the SVD Θ = V Σ Uᵀ (full rank):
    Q̃_ij = (σ_i W_ij + σ_j W_ji)/(2(σ_i² + σ_j²)) with W = VᵀBU, Q = U Q̃ Uᵀ."""
    xp, f64, _ = _backend(thetas)
    theta, target = f64(thetas), f64(targets)
    left, singular, right_t = decomposition
    weighted = singular[:, None] * (left.T @ target @ right_t.T)
    rotated = (weighted + weighted.T) / (2 * (singular[:, None] ** 2 + singular[None, :] ** 2))
    matrix = right_t.T @ rotated @ right_t
    matrix = 0.5 * (matrix + matrix.T)
    prediction = 2 * theta @ matrix
    residual = prediction - target
    m, p = theta.shape
    n_equations, n_unknowns = m * p, p * (p + 1) // 2
    if n_equations <= n_unknowns:  # the reason as the other fits give it
        stderr, se_method = uncertainty.sandwich_or_reason(
            n_equations, n_unknowns, n_unknowns, None
        )
    elif n_equations * n_unknowns > DENSE_SE_LIMIT:
        stderr, se_method = uncertainty.not_available(
            n_unknowns,
            f"the SymQuadratic sandwich needs the dense {n_equations} x {n_unknowns} design "
            f"(limit {DENSE_SE_LIMIT:.0e} entries)",
        )
    else:  # small: the sandwich on the host from the dense design
        host = (lambda values: values) if xp is np else (lambda values: values.cpu().numpy())
        se_method = uncertainty.HC1
        theta_host, residual_host = host(theta), host(residual).reshape(-1)

        def stderr():
            design = _stacked_design(family, theta_host)
            return _dense_stderr(design, residual_host, n_unknowns)[0]

    summary = _summary(
        _float((residual**2).sum()),
        _float((prediction * target).sum()),
        _float((prediction**2).sum()),
        _float((target**2).sum()),
        n_equations,
    )
    return _triu(xp, matrix), matrix, stderr, se_method, summary


def _structured(family, thetas, targets, method, normalize, allow) -> Fit:
    if family.solver == "diagonal":
        return _fit_diagonal(family, thetas, targets, method, normalize, allow, CHUNK)
    xp, f64, _ = _backend(thetas)
    m, p = thetas.shape
    decomposition = xp.linalg.svd(f64(thetas), full_matrices=False)
    singular = decomposition[1]
    cutoff = np.finfo(np.float64).eps * max(m, p) * _float(singular.max())
    rank = _symmetric_rank(p, int((singular > cutoff).sum()))
    n_unknowns = family.n_unknowns(p)
    if rank < n_unknowns or method != "lstsq":
        _judge_rank(family, rank, n_unknowns, (m, p), allow)
        # the minimum-norm (or nnls) solution needs the dense design: small problems only
        _check_dense_size(family, method, m * p, n_unknowns)
        host = (
            (lambda values: values) if xp is np else (lambda v: v.detach().cpu().double().numpy())
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnderdeterminedWarning)  # warned above
            return _fit_dense(
                family, host(thetas), host(targets), method, normalize, None, None, True
            )
    coefficients, matrix, stderr, se_method, summary = _fit_symmetric(
        family, thetas, targets, decomposition
    )
    return Fit(
        params={"Q": matrix},
        n_equations=m * p,
        n_unknowns=n_unknowns,
        method=method,
        rank=rank,
        coefficients=coefficients,
        stderr_source=stderr,
        se_method=se_method,
        family=family,
        **summary,
    )


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
    ``theta`` and ``target`` may be numpy arrays or torch tensors (any float dtype, any device;
    accumulation in float64 on that device, see the module docstring).
    A rank-deficient stacked design (Λ not identified, judged by rank, not by counting
    equations) raises ``ValueError`` naming the rank and what the family needs, unless
    ``allow_underdetermined=True``: then it warns (:class:`UnderdeterminedWarning`) and lstsq
    returns the minimum-norm solution, as ``torch.linalg.lstsq``/SVD did for the authors'
    Fig. 7 at m = 1.
    """
    family = _check_family(family)
    method = _check_method(method)
    if target_batches is not None and method != "adam":
        raise ValueError(f"target_batches needs method='adam', got method={method!r}")
    if adam is not None and method != "adam":
        raise ValueError(f"adam options need method='adam', got method={method!r}")
    on_torch = _is_tensor(theta) or _is_tensor(target)
    dense = method == "adam" or family.solver == "dense"
    chunked = family.solver == "columns" and (on_torch or getattr(family, "groups", None))
    keep_torch = on_torch and not dense
    thetas, targets = _check_pair(theta, target, ("theta", "target"), keep_torch)
    if dense or (family.solver == "columns" and not chunked):
        m, p = thetas.shape
        _check_dense_size(family, method, m * p, family.n_unknowns(p))
        return _fit_dense(
            family, thetas, targets, method, normalize, adam, target_batches, allow_underdetermined
        )
    if family.solver == "columns":
        if not keep_torch:
            import torch

            thetas, targets = torch.from_numpy(thetas), torch.from_numpy(targets)
        return _fit_columns(
            family, thetas, targets, method, normalize, allow_underdetermined, CHUNK
        )
    return _structured(family, thetas, targets, method, normalize, allow_underdetermined)


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
