"""Parameters, loss gradients and Hessian-vector products for any torch model.

θ is the flat vector of the parameters that count, in ``model.named_parameters()`` order (all
of them unless ``params`` chooses a subset). Every function evaluates the model
*functionally* at a given θ (``torch.func.functional_call``) or differentiates through its own
weights with ``torch.autograd.grad``, so the model's weights and their ``.grad`` are never
changed.

The interface is the one of the curvature libraries (f-dangel/curvlinops): a model, a loss, the
parameters that count and data as any iterable of batches.

- ``loss_fn``: an ``nn.Module`` loss whose ``reduction`` is ``"mean"`` or ``"sum"`` (read from
  the module; ``"batchmean"`` too, for ``KLDivLoss``), any other callable
  ``loss_fn(output, target) -> scalar`` together with an explicit ``reduction=`` saying what it
  computes, or one of the shortcuts :data:`LOSSES`: ``"mse"`` = mean squared error over all
  outputs without ½ (torch ``MSELoss``), ``"cross_entropy"`` = mean cross-entropy with integer
  labels. Outputs of shape (n, …, k) with labels of shape (n, …) (a sequence model: batch ×
  tokens × vocabulary) give the mean over every position, ``CrossEntropyLoss()(out.flatten(0,
  -2), y.flatten())``.
- ``data``: a pair ``(X, y)`` cut into batches of ``batch_size`` rows, or any iterable of
  ``(inputs, targets)`` batches (a DataLoader). ``inputs`` is a tensor (``model(X)``), a tuple
  of tensors (``model(*inputs)``) or a dict (``model(**inputs)``).
- ``params``: ``None`` (every parameter), a list of parameter names, or a predicate
  ``(name, parameter) -> bool`` (:func:`select_parameters`).

Batches combine into the exact full-data gradient of the loss's reduction:

    sum:  ∇L = Σ_b ∇L_b;     mean:  ∇L = Σ_b m_b ∇L_b / Σ_b m_b,

with m_b the number of loss terms of batch b: the elements of the unreduced loss (targets
equal to ``ignore_index`` left out, and for class-weighted ``CrossEntropyLoss``/``NLLLoss``
the sum of the weights, as torch divides by), the batch's rows for ``"batchmean"``, and for a
plain function with ``reduction="mean"`` the batch's rows (the function is assumed to average
over its rows, each with the same number of terms).

- :func:`flat_parameters`: θ as one float64 numpy vector.
- :func:`loss_gradient`: the matching target −∇L(θ̂) (Appendix D), flat, float64; for the
  string losses on a pair (X, y) as the closed-form vector-Jacobian product (∂L/∂ŷ)ᵀ J_θ ŷ with
  ∂L/∂ŷ = 2(ŷ − y)/N (MSE, N outputs) or (softmax(ŷ) − onehot(y))/N (CE, N positions).
- :func:`loss_value`: L(θ) itself, as a float.
- :func:`gradient`, :func:`hessian_vector_product`, :func:`hessian_gradient`: ∇L(θ), H(θ)v and
  (∇L, H∇L) by double backpropagation, in the model's dtype, for the string losses.

Precision follows the model: call ``model.double()`` and pass float64 data for float64 results
(floating-point data are converted to the model's dtype).

Inputs are checked before any computation, each error naming the shapes or dtypes given and the
ones expected: X and y must have the same number of rows; for ``"cross_entropy"`` y holds integer
class indices of shape (n,) (or (n, …) for outputs (n, …, k)) in 0..k−1 for k model outputs
(float labels, which would be truncated, labels of shape (n, 1) and soft labels of shape (n, k)
are rejected); X must be floating point with the width of the model's first linear layer.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

__all__ = [
    "LOSSES",
    "REDUCTIONS",
    "flat_parameters",
    "gradient",
    "hessian_gradient",
    "hessian_vector_product",
    "loss_gradient",
    "loss_value",
    "select_parameters",
]

LOSSES = ("mse", "cross_entropy")
REDUCTIONS = ("mean", "sum", "batchmean")

ParamSelection = Sequence[str] | Callable[[str, torch.nn.Parameter], bool] | None


def _check_loss(loss: str) -> str:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
    return loss


def _parameters(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    named = list(model.named_parameters())
    if not named:
        raise ValueError(f"model {type(model).__name__} has no parameters")
    return named


def select_parameters(
    model: torch.nn.Module, params: ParamSelection = None
) -> list[tuple[str, torch.Tensor]]:
    """(name, parameter) of the parameters that count, in ``named_parameters()`` order.

    ``params`` is None (all), names (``["fc.weight", "fc.bias"]``) or a predicate
    ``(name, parameter) -> bool`` (``lambda name, p: name.startswith("head.")``).
    """
    named = _parameters(model)
    if params is None:
        return named
    if callable(params):
        chosen = [(name, p) for name, p in named if params(name, p)]
        if not chosen:
            raise ValueError(
                f"params: the predicate chose none of the {len(named)} parameters of "
                f"{type(model).__name__} (names: {[name for name, _ in named][:8]}...)"
            )
        return chosen
    if isinstance(params, str) or not isinstance(params, Iterable):
        raise TypeError(
            f"params must be None, a list of parameter names or a predicate (name, parameter) "
            f"-> bool, got {params!r}"
        )
    wanted = list(params)
    unknown = sorted(set(wanted) - {name for name, _ in named})
    if unknown:
        raise ValueError(
            f"params: {unknown} are not parameters of {type(model).__name__}; its parameters "
            f"are {[name for name, _ in named]}"
        )
    if not wanted:
        raise ValueError("params: an empty list of names; pass None for every parameter")
    return [(name, p) for name, p in named if name in set(wanted)]


def _model_dtype_device(model: torch.nn.Module) -> tuple[torch.dtype, torch.device]:
    first = _parameters(model)[0][1]
    return first.dtype, first.device


def flat_parameters(model: torch.nn.Module, params: ParamSelection = None) -> np.ndarray:
    """θ as one float64 numpy vector, in ``named_parameters()`` order (``params``: a subset)."""
    chosen = select_parameters(model, params)
    return torch.cat([p.detach().reshape(-1) for _, p in chosen]).cpu().double().numpy()


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


def _check_labels(labels: torch.Tensor, loss: str, inputs: Any) -> None:
    """Row count for every loss; integer class indices for cross-entropy (the shape against the
    model's outputs is checked once they exist, by :func:`_check_classes`)."""
    n = _rows(inputs)
    if labels.ndim == 0:
        raise ValueError(f"y is a scalar ({labels.dtype}); pass one target per row of X ({n})")
    if labels.shape[0] != n:
        raise ValueError(
            f"X of shape {_describe(inputs)} has {n} rows but y of shape {_shape(labels)} has "
            f"{labels.shape[0]}; they must match"
        )
    if loss != "cross_entropy":
        return
    expected = f"cross_entropy takes integer class indices of shape {_shape(labels)}"
    if labels.ndim == 2 and labels.is_floating_point():
        raise ValueError(
            f"y of shape {_shape(labels)} ({labels.dtype}) looks like soft labels (one "
            f"probability per class), which loss 'cross_entropy' does not support: "
            f"cross_entropy takes integer class indices of shape ({n},)"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(
            f"y has dtype {labels.dtype}: {expected} (a torch integer dtype such as int64); "
            "float labels would be truncated (0.9 to class 0). Convert whole-number labels "
            "with y.long(), or use loss 'mse' for real-valued targets"
        )


def _check_classes(
    labels: torch.Tensor, output: torch.Tensor, loss: str, rows: int | None = None
) -> None:
    """Cross-entropy labels must have the outputs' shape without the class axis and index the
    model's k outputs: 0 <= y < k. ``rows``: the row count of the whole data, for messages."""
    if loss != "cross_entropy":
        return
    if output.ndim < 2:
        raise ValueError(
            f"loss 'cross_entropy' needs model outputs of shape (n, k) or (n, ..., k); got "
            f"{_shape(output)}"
        )
    positions = _shape(output)[:-1]
    if _shape(labels) != positions:
        n = labels.shape[0] if rows is None else rows
        given = f"y of shape {(n, *_shape(labels)[1:])} ({labels.dtype})"
        expected = f"cross_entropy takes integer class indices of shape {(n, *positions[1:])}"
        if output.ndim == 2 and labels.numel() == output.shape[0]:
            raise ValueError(f"{given}: {expected}; pass y.reshape(-1)")
        raise ValueError(f"{given}: {expected} for model outputs of shape {_shape(output)}")
    if labels.numel() == 0:
        return
    classes = output.shape[-1]
    low, high = torch.stack(torch.aminmax(labels)).tolist()
    if low < 0 or high >= classes:
        raise ValueError(
            f"y holds class label {low if low < 0 else high} but the model has {classes} outputs; "
            f"cross_entropy class labels must lie in 0..{classes - 1}"
        )


# ------------------------------------------------------------------ data


def _is_array(value: Any) -> bool:
    return torch.is_tensor(value) or isinstance(value, np.ndarray)


def _tensors(inputs: Any) -> list[torch.Tensor]:
    if isinstance(inputs, dict):
        return [v for v in inputs.values() if torch.is_tensor(v)]
    if isinstance(inputs, (tuple, list)):
        return [v for v in inputs if torch.is_tensor(v)]
    return [inputs] if torch.is_tensor(inputs) else []


def _rows(inputs: Any) -> int:
    tensors = _tensors(inputs)
    if not tensors or tensors[0].ndim == 0:
        raise ValueError(
            f"X is a scalar or holds no tensor ({type(inputs).__name__}); pass a tensor of "
            "shape (n, ...), a tuple of such tensors or a dict of them"
        )
    return tensors[0].shape[0]


def _describe(inputs: Any) -> str:
    if torch.is_tensor(inputs):
        return str(_shape(inputs))
    if isinstance(inputs, dict):
        return "{" + ", ".join(f"{k!r}: {_shape(v)}" for k, v in inputs.items()) + "}"
    return "(" + ", ".join(str(_shape(v)) for v in _tensors(inputs)) + ")"


def _map(inputs: Any, function: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``function`` applied to every tensor of a tensor, tuple or dict of inputs."""
    if isinstance(inputs, dict):
        return {k: function(v) if torch.is_tensor(v) else v for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return tuple(function(v) if torch.is_tensor(v) else v for v in inputs)
    return function(inputs)


def _to_model(value: Any, device: torch.device, dtype: torch.dtype | None) -> Any:
    """Tensors on the model's device; floating-point ones in its dtype (data follow the model)."""

    def move(tensor: torch.Tensor) -> torch.Tensor:
        if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        return tensor.to(device)

    return _map(value, move)


def _as_tensors(inputs: Any) -> Any:
    if isinstance(inputs, (dict, tuple, list)):
        return inputs
    return torch.as_tensor(inputs)


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
    """(inputs, labels, n) per batch of ``batch_size`` rows of the pair (X, y), checked first."""
    inputs = _as_tensors(X)
    if torch.is_tensor(inputs) and dtype is not None:
        if inputs.is_floating_point() and inputs.dtype != dtype:
            inputs = inputs.to(dtype)  # float data follow the model's precision
    labels = torch.as_tensor(y)
    if torch.is_tensor(inputs) and inputs.ndim == 0:
        raise ValueError(f"X is a scalar ({inputs.dtype}); pass a tensor of shape (n, ...)")
    n = _rows(inputs)
    _check_labels(labels, loss, inputs)
    if n == 0:
        raise ValueError("X is empty; pass at least one row")
    if torch.is_tensor(inputs):
        _check_inputs(model, inputs)
    size = n if batch_size is None else int(batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    for start in range(0, n, size):
        rows = slice(start, start + size)
        batch = _to_model(_map(inputs, lambda t, rows=rows: t[rows]), device, dtype)
        yield batch, labels[rows].to(device), n


def _is_pair(data: Any) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2 and _is_array(data[1])


def _stream(
    data: Any, batch_size: int | None, model: torch.nn.Module, loss: _Loss
) -> Iterator[tuple[Any, Any]]:
    """(inputs, targets) per batch, on the model's device: a pair cut into ``batch_size`` rows,
    or the batches of an iterable as they come."""
    dtype, device = _model_dtype_device(model)
    if _is_pair(data):
        batches = _batches(*data, batch_size, device, dtype, model=model, loss=loss.name or "")
        for inputs, labels, _ in batches:
            yield inputs, _to_model(labels, device, dtype)
        return
    if batch_size is not None:
        raise ValueError(
            f"batch_size={batch_size} cuts a pair (X, y) into batches; data of type "
            f"{type(data).__name__} brings its own batches (set the DataLoader's batch_size)"
        )
    if not isinstance(data, Iterable) or torch.is_tensor(data):
        raise TypeError(
            f"data must be a pair (X, y) or an iterable of (inputs, targets) batches such as a "
            f"DataLoader, got {type(data).__name__}"
        )
    for index, batch in enumerate(data):
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            what = f"a dict with keys {sorted(batch)}" if isinstance(batch, dict) else type(batch)
            raise ValueError(
                f"data: batch {index} is {what}; each batch must be a pair (inputs, targets), "
                "e.g. ((b['x'], b['y']) for b in loader)"
            )
        inputs, targets = _as_tensors(batch[0]), batch[1]
        if torch.is_tensor(inputs):
            _check_inputs(model, inputs)
        if loss.name is not None:
            _check_labels(torch.as_tensor(targets), loss.name, inputs)
        yield _to_model(inputs, device, dtype), _to_model(targets, device, dtype)


def _forward(model: torch.nn.Module, leaves: dict[str, torch.Tensor] | None, inputs: Any):
    """model(X), model(*X) or model(**X); at the given parameter tensors when ``leaves``."""
    args, kwargs = (), {}
    if isinstance(inputs, dict):
        kwargs = inputs
    elif isinstance(inputs, (tuple, list)):
        args = tuple(inputs)
    else:
        args = (inputs,)
    if leaves is None:
        return model(*args, **kwargs)
    return functional_call(model, leaves, args, kwargs)


# ------------------------------------------------------------------ losses


def _mse_targets(output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The regression targets in the shape and dtype of the model's outputs (one per output)."""
    if labels.numel() != output.numel():
        raise ValueError(
            f"loss 'mse': y has {labels.numel()} values for {output.numel()} model outputs"
        )
    return labels.reshape(output.shape).to(output.dtype)


def _mean_loss(output: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """The mean loss of one batch: over every output (mse), over every position (CE)."""
    if loss == "mse":
        return torch.nn.functional.mse_loss(output, _mse_targets(output, labels))
    if output.ndim > 2:  # (n, ..., k) with labels (n, ...): the mean over all positions
        return torch.nn.functional.cross_entropy(output.flatten(0, -2), labels.reshape(-1).long())
    return torch.nn.functional.cross_entropy(output, labels.long())


@dataclasses.dataclass(frozen=True)
class _Loss:
    """A loss and its reduction; ``name`` is set for the string shortcuts."""

    function: Callable[[Any, Any], torch.Tensor]
    reduction: str
    name: str | None = None

    def __call__(self, output, target) -> torch.Tensor:
        if self.name is not None:
            _check_classes(target, output, self.name)
            return _mean_loss(output, target, self.name)
        value = self.function(output, target)
        if not torch.is_tensor(value) or value.ndim != 0:
            shape = _shape(value) if torch.is_tensor(value) else type(value).__name__
            raise ValueError(
                f"loss_fn returned {shape}, not a scalar tensor; construct it with reduction "
                "'mean' or 'sum'"
            )
        return value

    def terms(self, output: torch.Tensor, target: Any) -> float:
        """m_b, the denominator of the batch's mean (module docstring)."""
        if self.name == "mse":
            return float(output.numel())
        if self.name == "cross_entropy":
            return float(target.numel())
        if self.reduction == "batchmean" or not isinstance(self.function, torch.nn.Module):
            return float(_rows(target) if _tensors(target) else output.shape[0])
        module = self.function
        index_targets = torch.is_tensor(target) and not target.is_floating_point()
        if isinstance(module, (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss)) and index_targets:
            kept = target[target != module.ignore_index]
            weight = getattr(module, "weight", None)
            return float(kept.numel() if weight is None else weight[kept].sum())
        unreduced = copy.copy(module)
        unreduced.reduction = "none"
        with torch.no_grad():
            return float(unreduced(output.detach(), target).numel())


def _resolve_loss(loss_fn: Any, reduction: str | None) -> _Loss:
    """The loss and its reduction, from a shortcut, a loss module or a function + reduction."""
    if isinstance(loss_fn, str):
        _check_loss(loss_fn)
        if reduction not in (None, "mean"):
            raise ValueError(
                f"loss {loss_fn!r} is a mean; for reduction={reduction!r} pass a loss module, "
                f"e.g. torch.nn.MSELoss(reduction={reduction!r})"
            )
        return _Loss(_mean_loss, "mean", loss_fn)
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be one of {list(LOSSES)}, an nn.Module loss or a function "
            f"(output, target) -> scalar, got {loss_fn!r}"
        )
    own = getattr(loss_fn, "reduction", None) if isinstance(loss_fn, torch.nn.Module) else None
    label = type(loss_fn).__name__ if own is not None else getattr(loss_fn, "__name__", "loss_fn")
    if own is not None and reduction is not None and reduction != own:
        raise ValueError(
            f"reduction={reduction!r} contradicts {label}(reduction={own!r}); leave reduction "
            "unset for a loss module"
        )
    chosen = own if own is not None else reduction
    if chosen is None:
        raise ValueError(
            f"loss_fn {label} does not say its reduction: pass reduction='mean' (it averages "
            "over the rows of a batch, each row with the same number of terms: batches are "
            "weighted by their rows) or reduction='sum' (it sums: batches are added)"
        )
    if chosen not in REDUCTIONS:
        raise ValueError(
            f"{label} has reduction {chosen!r}; the gradient needs a scalar loss: use one of "
            f"{list(REDUCTIONS)}"
        )
    return _Loss(loss_fn, chosen)


# ------------------------------------------------------------------ the matching target


def _leaves(chosen: list[tuple[str, torch.Tensor]]) -> tuple[dict[str, torch.Tensor], bool]:
    """The tensors to differentiate: the model's own parameters when they all require grad
    (torch.autograd.grad leaves their .grad untouched), else detached copies that do."""
    trainable = all(p.requires_grad for _, p in chosen)
    leaves = {name: p if trainable else p.detach().requires_grad_(True) for name, p in chosen}
    return leaves, trainable


def _flat(grads, leaves: dict[str, torch.Tensor]) -> torch.Tensor:
    """One float64 vector; a parameter the loss does not reach contributes zeros."""
    parts = [
        torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
        for g, p in zip(grads, leaves.values(), strict=True)
    ]
    return torch.cat(parts).double()


def _output_gradient(output: torch.Tensor, labels: torch.Tensor, loss: str, n: int):
    """∂(mean loss over all n rows)/∂ŷ for one batch (closed form, Appendix D)."""
    if loss == "mse":
        outputs_per_row = output.numel() // output.shape[0]
        residual = output - _mse_targets(output, labels)
        return 2.0 * residual / (n * outputs_per_row)
    probabilities = torch.softmax(output, dim=-1)
    onehot = torch.nn.functional.one_hot(labels.long(), output.shape[-1]).to(output.dtype)
    positions_per_row = labels.numel() // labels.shape[0]
    return (probabilities - onehot) / (n * positions_per_row)


def _closed_form_gradient(model, loss: str, X, y, batch_size, chosen) -> torch.Tensor:
    """−∇L for a string loss on a pair (X, y) by the closed-form VJP, batch by batch."""
    dtype, device = _model_dtype_device(model)
    leaves, trainable = _leaves(chosen)
    total = torch.zeros(sum(p.numel() for p in leaves.values()), dtype=torch.float64, device=device)
    for inputs, labels, n in _batches(X, y, batch_size, device, dtype, model=model, loss=loss):
        output = _forward(model, None if trainable else leaves, inputs)
        _check_classes(labels, output, loss, rows=n)
        weights = _output_gradient(output.detach(), labels, loss, n)
        grads = torch.autograd.grad(
            output, list(leaves.values()), grad_outputs=weights, allow_unused=True
        )
        total -= _flat(grads, leaves)
    return total


def _batched_gradient(model, loss: _Loss, data, batch_size, chosen) -> torch.Tensor:
    """−∇L over the batches of ``data``: Σ_b ∇L_b (sum) or Σ_b m_b ∇L_b / Σ_b m_b (mean)."""
    _, device = _model_dtype_device(model)
    leaves, trainable = _leaves(chosen)
    total = torch.zeros(sum(p.numel() for p in leaves.values()), dtype=torch.float64, device=device)
    terms, batches = 0.0, 0
    for inputs, targets in _stream(data, batch_size, model, loss):
        output = _forward(model, None if trainable else leaves, inputs)
        value = loss(output, targets)
        grads = torch.autograd.grad(value, list(leaves.values()), allow_unused=True)
        weight = 1.0 if loss.reduction == "sum" else loss.terms(output, targets)
        total += weight * _flat(grads, leaves)
        terms, batches = terms + weight, batches + 1
    if batches == 0:
        raise ValueError("data yielded no batch; pass at least one (inputs, targets) batch")
    if loss.reduction == "sum":
        return -total
    if terms == 0:
        raise ValueError("data holds no loss term (every target equals the loss's ignore_index)")
    return -total / terms


def loss_gradient(
    model: torch.nn.Module,
    loss_fn: Any,
    data: Any,
    params: ParamSelection = None,
    *,
    reduction: str | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """−∇_θ L(θ̂) over all of ``data``, flat, as a float64 tensor on the model's device.

    ``loss_fn``, ``data``, ``params`` and ``reduction`` as in the module docstring: the exact
    full-data gradient of the loss's reduction, over the parameters ``params`` chooses, in
    ``named_parameters()`` order. ``batch_size`` cuts a pair (X, y) into batches (all rows at
    once if None). The model is evaluated in its current mode: call ``model.eval()`` first when
    it has dropout or batch norm. The earlier form ``loss_gradient(model, "mse", X, y)`` still
    works: an array in the place of ``params`` is the targets y of ``data = X``.

    Example: ``loss_gradient(model, torch.nn.CrossEntropyLoss(), loader,
    params=lambda name, p: not name.endswith("bias"))``.
    """
    if _is_array(params):  # loss_gradient(model, loss, X, y)
        data, params = (data, params), None
    loss = _resolve_loss(loss_fn, reduction)
    chosen = select_parameters(model, params)
    if loss.name is not None and _is_pair(data):
        return _closed_form_gradient(model, loss.name, *data, batch_size, chosen)
    return _batched_gradient(model, loss, data, batch_size, chosen)


# ------------------------------------------------------------------ L, ∇L, Hv at any θ


def _loss_at(model, loss, theta, inputs, labels, rows=None) -> torch.Tensor:
    output = _forward(model, _split(model, theta), inputs)
    _check_classes(labels, output, loss, rows)
    return _mean_loss(output, labels, loss)


def _batch_losses(model, loss, point, X, y, batch_size):
    """Each batch's mean loss at θ = ``point``, weighted by its share of the rows, so that the
    weighted losses (and their derivatives) sum to the full-data mean: L = Σ_b (|b|/n) L_b."""
    for inputs, labels, n in _batches(
        X, y, batch_size, point.device, point.dtype, model=model, loss=loss
    ):
        yield _loss_at(model, loss, point, inputs, labels, n) * (labels.shape[0] / n)


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
