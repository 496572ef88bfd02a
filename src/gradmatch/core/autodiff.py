"""Parameters, loss gradients and Hessian-vector products for any torch model.

θ is the flat vector of ``model.parameters()`` (in that order). Every function evaluates the
model *functionally* at a given θ (``torch.func.functional_call``), so the model's own weights
are never changed. Losses: ``"mse"`` = mean squared error over all outputs without ½ (torch
``MSELoss``), ``"cross_entropy"`` = mean cross-entropy with integer labels.

- :func:`flat_parameters`: θ as one float64 numpy vector.
- :func:`loss_gradient`: the matching target −∇L(θ̂) as a vector-Jacobian product (Appendix D),
  (∂L/∂ŷ)ᵀ J_θ ŷ with ∂L/∂ŷ = 2(ŷ − y)/(nk) (MSE) or (softmax(ŷ) − onehot(y))/n (CE),
  accumulated over batches of ``batch_size`` rows, returned as a float64 tensor.
- :func:`loss_value`: L(θ) itself, as a float.
- :func:`gradient`, :func:`hessian_vector_product`, :func:`hessian_gradient`: ∇L(θ), H(θ)v and
  (∇L, H∇L) by double backpropagation, in the model's dtype.

Precision follows the model: call ``model.double()`` and pass float64 data for float64 results.

Inputs are checked before any computation, each error naming the shapes or dtypes given and the
ones expected: X and y must have the same number of rows; for ``"cross_entropy"`` y holds integer
class indices of shape (n,) in 0..k−1 for k model outputs (float labels, which would be truncated,
labels of shape (n, 1) and soft labels of shape (n, k) are rejected); X must be floating point
with the width of the model's first linear layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.func import functional_call

__all__ = [
    "LOSSES",
    "flat_parameters",
    "gradient",
    "hessian_gradient",
    "hessian_vector_product",
    "loss_gradient",
    "loss_value",
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


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _first_layer(model: torch.nn.Module) -> torch.nn.Module | None:
    """The first module that holds parameters of its own (the layer that reads X)."""
    for module in model.modules():
        if any(True for _ in module.parameters(recurse=False)):
            return module
    return None


def _check_inputs(model: torch.nn.Module, inputs: torch.Tensor) -> None:
    """X must be floating point and as wide as the model's first linear layer expects."""
    layer = _first_layer(model)
    reads_values = isinstance(layer, (torch.nn.Linear, torch.nn.modules.conv._ConvNd))
    if reads_values and not inputs.is_floating_point():
        raise ValueError(
            f"X has dtype {inputs.dtype} but the model's first layer {type(layer).__name__} "
            f"computes in {layer.weight.dtype}; pass floating-point inputs (e.g. X.float() / 255)"
        )
    if isinstance(layer, torch.nn.Linear) and inputs.ndim == 2:
        if inputs.shape[1] != layer.in_features:
            raise ValueError(
                f"X of shape {_shape(inputs)} does not fit the model: its first layer "
                f"{layer} expects inputs of shape (n, {layer.in_features})"
            )


def _check_labels(labels: torch.Tensor, loss: str, inputs: torch.Tensor) -> None:
    """Row count for every loss; integer class indices of shape (n,) for cross-entropy."""
    n = inputs.shape[0]
    if labels.ndim == 0:
        raise ValueError(f"y is a scalar ({labels.dtype}); pass one target per row of X ({n})")
    if labels.shape[0] != n:
        raise ValueError(
            f"X of shape {_shape(inputs)} has {n} rows but y of shape {_shape(labels)} has "
            f"{labels.shape[0]}; they must match"
        )
    if loss != "cross_entropy":
        return
    expected = f"cross_entropy takes integer class indices of shape ({n},)"
    if labels.ndim == 2 and labels.shape[1] == 1:
        raise ValueError(
            f"y of shape {_shape(labels)} ({labels.dtype}): {expected}; pass y.reshape(-1)"
        )
    if labels.ndim == 2 and labels.is_floating_point():
        raise ValueError(
            f"y of shape {_shape(labels)} ({labels.dtype}) looks like soft labels (one "
            f"probability per class), which loss 'cross_entropy' does not support: {expected}"
        )
    if labels.ndim != 1:
        raise ValueError(f"y of shape {_shape(labels)} ({labels.dtype}): {expected}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(
            f"y has dtype {labels.dtype}: {expected} (a torch integer dtype such as int64); "
            "float labels would be truncated (0.9 to class 0). Convert whole-number labels "
            "with y.long(), or use loss 'mse' for real-valued targets"
        )


def _check_classes(labels: torch.Tensor, output: torch.Tensor, loss: str) -> None:
    """Cross-entropy labels must index the model's k outputs: 0 <= y < k."""
    if loss != "cross_entropy" or labels.numel() == 0:
        return
    if output.ndim != 2:
        raise ValueError(
            f"loss 'cross_entropy' needs model outputs of shape (n, k); got {_shape(output)}"
        )
    classes = output.shape[1]
    low, high = torch.stack(torch.aminmax(labels)).tolist()
    if low < 0 or high >= classes:
        raise ValueError(
            f"y holds class label {low if low < 0 else high} but the model has {classes} outputs; "
            f"cross_entropy class labels must lie in 0..{classes - 1}"
        )


def _batches(
    X: Any,
    y: Any,
    batch_size: int | None,
    device: torch.device,
    dtype=None,
    *,
    model: torch.nn.Module,
    loss: str,
):
    inputs = torch.as_tensor(X)
    if dtype is not None and inputs.is_floating_point() and inputs.dtype != dtype:
        inputs = inputs.to(dtype)  # float data follow the model's precision
    labels = torch.as_tensor(y)
    if inputs.ndim == 0:
        raise ValueError(f"X is a scalar ({inputs.dtype}); pass a tensor of shape (n, ...)")
    n = inputs.shape[0]
    _check_labels(labels, loss, inputs)
    if n == 0:
        raise ValueError("X is empty; pass at least one row")
    _check_inputs(model, inputs)
    size = n if batch_size is None else int(batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    for start in range(0, n, size):
        yield inputs[start : start + size].to(device), labels[start : start + size].to(device), n


def _mse_targets(output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The regression targets in the shape and dtype of the model's outputs (one per output)."""
    if labels.numel() != output.numel():
        raise ValueError(
            f"loss 'mse': y has {labels.numel()} values for {output.numel()} model outputs"
        )
    return labels.reshape(output.shape).to(output.dtype)


def _mean_loss(output: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "mse":
        return torch.nn.functional.mse_loss(output, _mse_targets(output, labels))
    return torch.nn.functional.cross_entropy(output, labels.long())


def _output_gradient(output: torch.Tensor, labels: torch.Tensor, loss: str, n: int):
    """∂(mean loss over all n rows)/∂ŷ for one batch (closed form, Appendix D)."""
    if loss == "mse":
        outputs_per_row = output.numel() // output.shape[0]
        residual = output - _mse_targets(output, labels)
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
    for inputs, labels, n in _batches(X, y, batch_size, device, dtype, model=model, loss=loss):
        output = model(inputs) if trainable else functional_call(model, params, (inputs,))
        _check_classes(labels, output, loss)
        weights = _output_gradient(output.detach(), labels, loss, n)
        grads = torch.autograd.grad(output, list(params.values()), grad_outputs=weights)
        total -= torch.cat([g.reshape(-1) for g in grads]).double()
    return total


def _loss_at(model, loss, theta, inputs, labels) -> torch.Tensor:
    output = functional_call(model, _split(model, theta), (inputs,))
    _check_classes(labels, output, loss)
    return _mean_loss(output, labels, loss)


def _batch_losses(model, loss, point, X, y, batch_size):
    """Each batch's mean loss at θ = ``point``, weighted by its share of the rows, so that the
    weighted losses (and their derivatives) sum to the full-data mean: L = Σ_b (|b|/n) L_b."""
    for inputs, labels, n in _batches(
        X, y, batch_size, point.device, point.dtype, model=model, loss=loss
    ):
        yield _loss_at(model, loss, point, inputs, labels) * (inputs.shape[0] / n)


def loss_value(
    model: torch.nn.Module,
    loss: str,
    X: Any,
    y: Any,
    theta: Any = None,
    *,
    batch_size: int | None = None,
) -> float:
    """L(θ), the mean loss over (X, y), as a float; θ defaults to the model's weights."""
    loss = _check_loss(loss)
    point = _flat_tensor(model, theta)
    total = 0.0
    with torch.no_grad():
        for value in _batch_losses(model, loss, point, X, y, batch_size):
            total += float(value)
    return total


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
    for value in _batch_losses(model, loss, point, X, y, batch_size):
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
    for value in _batch_losses(model, loss, point, X, y, batch_size):
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
    ((inputs, labels, _),) = list(
        _batches(X, y, None, point.device, point.dtype, model=model, loss=loss)
    )
    (grad,) = torch.autograd.grad(
        _loss_at(model, loss, point, inputs, labels), point, create_graph=True
    )
    (product,) = torch.autograd.grad(grad, point, grad_outputs=grad.detach())
    return grad.detach(), product
