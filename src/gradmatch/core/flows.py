"""RK4 integration of the gradient flow and of the modified flow for any torch model.

- :func:`rk4`: classical Runge-Kutta over time T with k substeps of size T/k; it returns the
  displacement θ(T) − θ(0), accumulated in float64.
- :func:`gradient_flow` integrates dθ/dt = −∇L(θ) and :func:`modified_flow` the modified flow
  dθ/dt = −∇L − (η/2)H∇L of L̃ = L + (η/4)‖∇L‖² (Barrett & Dherin), both from θ(0) = ``theta``
  (the model's weights if None), with ∇L and H∇L from :mod:`gradmatch.core.autodiff`.

Precision follows the model: call ``model.double()`` and pass float64 data for float64 flows
(displacements are accumulated in float64 either way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from gradmatch.core.autodiff import _check_loss, _flat_tensor, gradient, hessian_gradient

__all__ = ["gradient_flow", "modified_flow", "rk4"]


def rk4(
    field: Callable[[torch.Tensor], torch.Tensor],
    theta0: torch.Tensor,
    time: float,
    substeps: int,
) -> torch.Tensor:
    """Displacement θ(T) − θ(0) of dθ/dt = field(θ) by classical RK4, k substeps of size T/k.

    The displacement is accumulated in float64; ``field`` receives and returns float64.
    """
    if int(substeps) != substeps or substeps < 1:
        raise ValueError(f"substeps must be an integer >= 1, got {substeps!r}")
    start = theta0.detach().double()
    step = float(time) / int(substeps)
    displacement = torch.zeros_like(start)
    for _ in range(int(substeps)):
        point = start + displacement
        k1 = field(point)
        k2 = field(point + 0.5 * step * k1)
        k3 = field(point + 0.5 * step * k2)
        k4 = field(point + step * k3)
        displacement = displacement + (step / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return displacement


def _flow_field(model, loss, X, y, batch_size, lr: float | None):
    def field(point: torch.Tensor) -> torch.Tensor:
        if lr is None:
            return -gradient(model, loss, X, y, point, batch_size=batch_size).double()
        grad, product = hessian_gradient(model, loss, X, y, point, batch_size=batch_size)
        return -(grad.double() + 0.5 * lr * product.double())

    return field


def gradient_flow(
    model: torch.nn.Module,
    loss: str,
    X: Any,
    y: Any,
    time: float,
    *,
    theta: Any = None,
    substeps: int = 10,
    batch_size: int | None = None,
) -> torch.Tensor:
    """θ(T) of the gradient flow dθ/dt = −∇L(θ) from θ(0) = ``theta``, RK4 (float64 tensor)."""
    return _integrate(model, loss, X, y, time, theta, substeps, batch_size, None)


def modified_flow(
    model: torch.nn.Module,
    loss: str,
    X: Any,
    y: Any,
    time: float,
    lr: float,
    *,
    theta: Any = None,
    substeps: int = 10,
    batch_size: int | None = None,
) -> torch.Tensor:
    """θ(T) of the modified flow dθ/dt = −∇L − (η/2)H∇L with η = ``lr``, RK4 (float64)."""
    return _integrate(model, loss, X, y, time, theta, substeps, batch_size, float(lr))


def _integrate(model, loss, X, y, time, theta, substeps, batch_size, lr) -> torch.Tensor:
    """RK4 of the gradient flow (``lr`` None) or of the modified flow with step ``lr``."""
    loss = _check_loss(loss)
    start = _flat_tensor(model, theta)
    field = _flow_field(model, loss, X, y, batch_size, lr)
    return start.double() + rk4(field, start, time, substeps)
