"""Loss gradients, Hessian-gradient products and RK4 gradient flows for any torch model.

θ is the flat vector of ``model.parameters()`` (in that order). Every function evaluates the
model *functionally* at a given θ (``torch.func.functional_call``), so the model's own weights
are never changed. Losses: ``"mse"`` = mean squared error over all outputs without ½ (torch
``MSELoss``), ``"cross_entropy"`` = mean cross-entropy with integer labels.

- :func:`loss_gradient`: the matching target −∇L(θ̂) as a vector-Jacobian product (Appendix D),
  (∂L/∂ŷ)ᵀ J_θ ŷ with ∂L/∂ŷ = 2(ŷ − y)/(nk) (MSE) or (softmax(ŷ) − onehot(y))/n (CE),
  accumulated over batches of ``batch_size`` rows, returned as a float64 tensor.
- :func:`gradient`, :func:`hessian_vector_product`, :func:`hessian_gradient`: ∇L and H∇L by
  double backpropagation.
- :func:`rk4`: classical Runge-Kutta over time T with k substeps of size T/k;
  :func:`gradient_flow` integrates dθ/dt = −∇L and :func:`modified_flow` the modified flow
  dθ/dt = −∇L − (η/2)H∇L of L̃ = L + (η/4)‖∇L‖² (Barrett & Dherin).
- :func:`estimate_igr`: paper Eq. 6. At each of T probe points θ_t (full-batch GD steps
  θ_{t+1} = θ_t − ηg_t), r_t = (Δθ_flow − Δθ_GD)/η with Δθ_flow the RK4 gradient-flow
  displacement over time η and Δθ_GD = −ηg_t, and λ̂ = (p/2)⟨Hg, r⟩/⟨Hg, Hg⟩ over the stacked
  pairs, with residual ratio ‖r − (2λ̂/p)Hg‖/‖r‖. Theory: r ≈ (η/2)Hg, so λ̂ ≈ ηp/4.

Precision follows the model: call ``model.double()`` and pass float64 data for float64 flows
(displacements are accumulated in float64 either way).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.func import functional_call
from tqdm.auto import tqdm

__all__ = [
    "LOSSES",
    "IGRFit",
    "estimate_igr",
    "fit_igr",
    "flat_parameters",
    "gradient",
    "gradient_flow",
    "hessian_gradient",
    "hessian_vector_product",
    "loss_gradient",
    "modified_flow",
    "rk4",
]

LOSSES = ("mse", "cross_entropy")


def _check_loss(loss: str) -> str:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
    return loss


def _parameters(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    named = list(model.named_parameters())
    if not named:
        raise ValueError(f"model {type(model).__name__} has no parameters")
    return named


def _model_dtype_device(model: torch.nn.Module) -> tuple[torch.dtype, torch.device]:
    first = _parameters(model)[0][1]
    return first.dtype, first.device


def flat_parameters(model: torch.nn.Module) -> np.ndarray:
    """θ as one float64 numpy vector, in ``model.parameters()`` order."""
    return torch.cat([p.detach().reshape(-1) for _, p in _parameters(model)]).cpu().double().numpy()


def _flat_tensor(model: torch.nn.Module, theta: Any) -> torch.Tensor:
    """θ as a flat tensor in the model's dtype and device (the current weights if None)."""
    dtype, device = _model_dtype_device(model)
    size = sum(p.numel() for _, p in _parameters(model))
    if theta is None:
        return torch.cat([p.detach().reshape(-1) for _, p in _parameters(model)])
    vector = torch.as_tensor(np.asarray(theta) if not torch.is_tensor(theta) else theta)
    vector = vector.detach().to(device=device, dtype=dtype).reshape(-1)
    if vector.numel() != size:
        raise ValueError(f"theta has {vector.numel()} entries but the model has {size} parameters")
    if not torch.isfinite(vector).all():
        raise ValueError("theta contains NaN or inf; pass finite values only")
    return vector


def _split(model: torch.nn.Module, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    views, start = {}, 0
    for name, parameter in _parameters(model):
        views[name] = theta[start : start + parameter.numel()].view_as(parameter)
        start += parameter.numel()
    return views


def _batches(X: Any, y: Any, batch_size: int | None, device: torch.device, dtype=None):
    inputs = torch.as_tensor(X)
    if dtype is not None and inputs.is_floating_point() and inputs.dtype != dtype:
        inputs = inputs.to(dtype)  # float data follow the model's precision
    labels = torch.as_tensor(y)
    n = inputs.shape[0]
    if labels.shape[0] != n:
        raise ValueError(f"X has {n} rows but y has {labels.shape[0]}; they must match")
    if n == 0:
        raise ValueError("X is empty; pass at least one row")
    size = n if batch_size is None else int(batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    for start in range(0, n, size):
        yield inputs[start : start + size].to(device), labels[start : start + size].to(device), n


def _mean_loss(output: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "mse":
        if labels.numel() != output.numel():
            raise ValueError(
                f"loss 'mse': y has {labels.numel()} values for {output.numel()} model outputs"
            )
        return torch.nn.functional.mse_loss(output, labels.reshape(output.shape).to(output.dtype))
    return torch.nn.functional.cross_entropy(output, labels.long())


def _output_gradient(output: torch.Tensor, labels: torch.Tensor, loss: str, n: int):
    """∂(mean loss over all n rows)/∂ŷ for one batch (closed form, Appendix D)."""
    if loss == "mse":
        if labels.numel() != output.numel():
            raise ValueError(
                f"loss 'mse': y has {labels.numel()} values for {output.numel()} model outputs"
            )
        outputs_per_row = output.numel() // output.shape[0]
        residual = output - labels.reshape(output.shape).to(output.dtype)
        return 2.0 * residual / (n * outputs_per_row)
    probabilities = torch.softmax(output, dim=-1)
    onehot = torch.nn.functional.one_hot(labels.long(), output.shape[-1]).to(output.dtype)
    return (probabilities - onehot) / n


def loss_gradient(
    model: torch.nn.Module, loss: str, X: Any, y: Any, *, batch_size: int | None = None
) -> torch.Tensor:
    """−∇_θ L(θ̂) of the mean loss over (X, y), flat, as a float64 tensor on the model's device.

    Computed as the vector-Jacobian product (∂L/∂ŷ)ᵀ J_θ ŷ (Appendix D), over batches of
    ``batch_size`` rows (all rows at once if None). The model is evaluated in its current mode:
    call ``model.eval()`` first when it has dropout or batch norm.
    """
    loss = _check_loss(loss)
    dtype, device = _model_dtype_device(model)
    named = _parameters(model)
    # Differentiate through the model's own parameters when they require grad (fast path);
    # torch.autograd.grad leaves their .grad untouched. Frozen models go through functional_call.
    trainable = all(p.requires_grad for _, p in named)
    params = {name: p if trainable else p.detach().requires_grad_(True) for name, p in named}
    total = torch.zeros(sum(p.numel() for _, p in named), dtype=torch.float64, device=device)
    for inputs, labels, n in _batches(X, y, batch_size, device, dtype):
        output = model(inputs) if trainable else functional_call(model, params, (inputs,))
        weights = _output_gradient(output.detach(), labels, loss, n)
        grads = torch.autograd.grad(output, list(params.values()), grad_outputs=weights)
        total -= torch.cat([g.reshape(-1) for g in grads]).double()
    return total


def _loss_at(model, loss, theta, inputs, labels) -> torch.Tensor:
    return _mean_loss(functional_call(model, _split(model, theta), (inputs,)), labels, loss)


def gradient(
    model: torch.nn.Module,
    loss: str,
    X: Any,
    y: Any,
    theta: Any = None,
    *,
    batch_size: int | None = None,
) -> torch.Tensor:
    """∇L(θ) (not negated), flat, in the model's dtype; θ defaults to the model's weights."""
    loss = _check_loss(loss)
    point = _flat_tensor(model, theta).requires_grad_(True)
    total = torch.zeros_like(point, requires_grad=False)
    for inputs, labels, n in _batches(X, y, batch_size, point.device, point.dtype):
        value = _loss_at(model, loss, point, inputs, labels) * (inputs.shape[0] / n)
        total += torch.autograd.grad(value, point)[0]
    return total


def hessian_vector_product(
    model: torch.nn.Module,
    loss: str,
    X: Any,
    y: Any,
    vector: Any,
    theta: Any = None,
    *,
    batch_size: int | None = None,
) -> torch.Tensor:
    """H(θ)v by double backpropagation: ∇_θ⟨∇L(θ), v⟩."""
    loss = _check_loss(loss)
    point = _flat_tensor(model, theta).requires_grad_(True)
    direction = _flat_tensor(model, vector)
    total = torch.zeros_like(direction)
    for inputs, labels, n in _batches(X, y, batch_size, point.device, point.dtype):
        value = _loss_at(model, loss, point, inputs, labels) * (inputs.shape[0] / n)
        (grad,) = torch.autograd.grad(value, point, create_graph=True)
        total += torch.autograd.grad(grad, point, grad_outputs=direction)[0]
    return total


def hessian_gradient(
    model: torch.nn.Module,
    loss: str,
    X: Any,
    y: Any,
    theta: Any = None,
    *,
    batch_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(g, Hg) with g = ∇L(θ) and Hg = H(θ)∇L(θ), by double backpropagation."""
    loss = _check_loss(loss)
    if batch_size is not None:
        grad = gradient(model, loss, X, y, theta, batch_size=batch_size)
        return grad, hessian_vector_product(model, loss, X, y, grad, theta, batch_size=batch_size)
    point = _flat_tensor(model, theta).requires_grad_(True)
    ((inputs, labels, _),) = list(_batches(X, y, None, point.device, point.dtype))
    (grad,) = torch.autograd.grad(
        _loss_at(model, loss, point, inputs, labels), point, create_graph=True
    )
    (product,) = torch.autograd.grad(grad, point, grad_outputs=grad.detach())
    return grad.detach(), product


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
    n_parameters: int
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
    for _ in tqdm(range(int(probe_steps)), desc="IGR probe", disable=not progress):
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
        n_parameters=size,
        probe_steps=int(probe_steps),
        lr=lr,
        hessian_gradients=np.stack(kept_products) if keep_vectors else None,
        residuals=np.stack(kept_residuals) if keep_vectors else None,
    )
