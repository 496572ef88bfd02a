"""Implicit gradient regularization λ̂ by gradient matching along GD steps (paper Eq. 6).

:func:`estimate_igr`: at each of T probe points θ_t (full-batch GD steps θ_{t+1} = θ_t − ηg_t),
r_t = (Δθ_flow − Δθ_GD)/η with Δθ_flow the RK4 gradient-flow displacement over time η
(:func:`gradmatch.core.flows.rk4`) and Δθ_GD = −ηg_t, and λ̂ = (p/2)⟨Hg, r⟩/⟨Hg, Hg⟩ over the
stacked pairs, with residual ratio ‖r − (2λ̂/p)Hg‖/‖r‖. Theory: r ≈ (η/2)Hg, so λ̂ ≈ ηp/4.
:func:`fit_igr` is the same fit on pairs already stacked. The result is an :class:`IGRFit`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from gradmatch.core.autodiff import _check_loss, _flat_tensor, hessian_gradient
from gradmatch.core.flows import _flow_field, rk4
from gradmatch.progress import progress_bar

__all__ = ["IGRFit", "estimate_igr", "fit_igr"]


@dataclasses.dataclass(frozen=True)
class IGRFit:
    """Result of :func:`estimate_igr` (paper Eq. 6).

    ``lambda_hat`` = (p/2)⟨Hg, r⟩/⟨Hg, Hg⟩; ``lambda_theory`` = ηp/4; ``residual_ratio`` =
    ‖r − (2λ̂/p)Hg‖/‖r‖; ``grad_norm_squared`` = R_IG = ‖∇L(θ_0)‖²/p at the first probe point;
    ``hessian_gradients`` and ``residuals`` (T, p) only with ``keep_vectors=True``.
    """

    lambda_hat: float
    lambda_theory: float
    residual_ratio: float
    grad_norm_squared: float
    n_params: int
    probe_steps: int
    lr: float
    hessian_gradients: np.ndarray | None = dataclasses.field(default=None, repr=False)
    residuals: np.ndarray | None = dataclasses.field(default=None, repr=False)


def fit_igr(hessian_gradients: Any, residuals: Any, p: int | None = None) -> tuple[float, float]:
    """Eq. 6 on stacked pairs: (λ̂, residual ratio) with λ̂ = (p/2)⟨Hg, r⟩/⟨Hg, Hg⟩."""
    products = np.atleast_2d(np.asarray(hessian_gradients, dtype=np.float64))
    targets = np.atleast_2d(np.asarray(residuals, dtype=np.float64))
    if products.shape != targets.shape:
        raise ValueError(
            f"hessian_gradients has shape {products.shape} but residuals has {targets.shape}"
        )
    size = products.shape[1] if p is None else int(p)
    slope = float(np.sum(products * targets) / np.sum(products * products))
    residual_ratio = float(np.linalg.norm(targets - slope * products) / np.linalg.norm(targets))
    return 0.5 * size * slope, residual_ratio


def estimate_igr(
    model: torch.nn.Module,
    loss: str,
    X: Any,
    y: Any,
    lr: float,
    *,
    theta: Any = None,
    probe_steps: int = 5,
    substeps: int = 10,
    batch_size: int | None = None,
    keep_vectors: bool = False,
    progress: bool = False,
) -> IGRFit:
    """Implicit gradient regularization λ̂ by Eq. 6 from ``probe_steps`` full-batch GD steps.

    Defaults follow the authors (paper H.5): 5 probe steps with η_probe = ``lr``, RK4 with 10
    substeps of size η/10. Starts at ``theta`` (the model's weights if None).
    """
    loss = _check_loss(loss)
    lr = float(lr)
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr (the step size η) must be finite and > 0, got {lr}")
    if int(probe_steps) != probe_steps or probe_steps < 1:
        raise ValueError(f"probe_steps must be an integer >= 1, got {probe_steps!r}")
    point = _flat_tensor(model, theta).double()
    size = point.numel()
    flow_field = _flow_field(model, loss, X, y, batch_size, None)
    cross = squares = target_squares = 0.0
    kept_products, kept_residuals, grad_norm_squared = [], [], None
    probes = range(int(probe_steps))
    for _ in progress_bar(probes, desc="IGR probe", unit="steps", enabled=progress, leave=True):
        grad, product = hessian_gradient(model, loss, X, y, point, batch_size=batch_size)
        grad, product = grad.double(), product.double()
        if grad_norm_squared is None:
            grad_norm_squared = float(grad @ grad) / size
        flow_displacement = rk4(flow_field, point, lr, substeps)
        residual = (flow_displacement + lr * grad) / lr
        cross += float(product @ residual)
        squares += float(product @ product)
        target_squares += float(residual @ residual)
        if keep_vectors:
            kept_products.append(product.cpu().numpy())
            kept_residuals.append(residual.cpu().numpy())
        point = point - lr * grad
    slope = cross / squares
    misfit = max(target_squares - 2 * slope * cross + slope**2 * squares, 0.0)
    return IGRFit(
        lambda_hat=0.5 * size * slope,
        lambda_theory=lr * size / 4.0,
        residual_ratio=float(np.sqrt(misfit / target_squares)),
        grad_norm_squared=float(grad_norm_squared),
        n_params=size,
        probe_steps=int(probe_steps),
        lr=lr,
        hessian_gradients=np.stack(kept_products) if keep_vectors else None,
        residuals=np.stack(kept_residuals) if keep_vectors else None,
    )
