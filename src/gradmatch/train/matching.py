"""Minibatch targets of the authors' stochastic gradient-matching fit (Figures 3 and 5).

The authors fit λ by Adam with the full-data target −∇L(θ̂) replaced, at every step, by the
target of one minibatch b of training rows at the matched weights θ̂:

    t_b = −∇_θ L_b(θ̂),    L_b(θ) = (1/|b|) Σ_{i∈b} ℓ(f_θ(x_i), y_i),

with ℓ the training loss (``mse`` or ``cross_entropy``, as :func:`gradmatch.core.autodiff.
loss_gradient`). The minibatches of epoch e are the e-th ``torch.randperm(n, generator=G)`` of
one generator ``G = torch.Generator().manual_seed(seed)``, cut into consecutive batches of
``batch_size`` rows (a DataLoader with ``shuffle=True``); the last partial batch is dropped
when ``drop_last`` (Fig. 3) and kept otherwise (Fig. 5). When one batch holds every row
(``batch_size ≥ n``), every epoch has the single full-data target, computed once.

``vectorize`` computes the equal-size batches of an epoch in one pass, ``torch.func.vmap`` of
``torch.func.grad`` of the batch mean loss: much faster for many small batches (Fig. 3: 125
batches of 32 rows per epoch). Without it each batch is one ``loss_gradient`` call (the
closed-form vector-Jacobian product). The two agree to rounding; bit for bit only in some
cases (Fig. 3's batches of 32 on CPU), so each analysis keeps the one its tables were made
with: Fig. 3 vectorises, Fig. 5 (batches of 2048) does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.func import functional_call, grad, vmap

from gradmatch.core.autodiff import LOSSES, _mean_loss, loss_gradient

__all__ = ["minibatch_targets"]

TargetBatches = Callable[[int], Iterable[torch.Tensor]]


def minibatch_targets(
    model: torch.nn.Module,
    loss: str,
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    seed: int,
    *,
    drop_last: bool = False,
    vectorize: bool = False,
    device: str | torch.device | None = None,
) -> TargetBatches:
    """``target_batches`` for :func:`gradmatch.core.estimators.match_gradients`: epoch e ↦ the
    float64 targets −∇L_b(θ̂) of its minibatches b (module docstring), on ``device`` (default:
    the model's). Evaluate the model in the mode it is matched in (``model.eval()`` first
    when it has dropout)."""
    if loss not in LOSSES:
        raise ValueError(f"minibatch_targets: loss must be one of {list(LOSSES)}, got {loss!r}")
    if batch_size < 1:
        raise ValueError(f"minibatch_targets: batch_size must be >= 1, got {batch_size}")
    n = len(y)
    device = next(model.parameters()).device if device is None else torch.device(device)
    if batch_size >= n:
        full = loss_gradient(model, loss, X, y).to(device)
        return lambda epoch: [full]
    generator = torch.Generator().manual_seed(int(seed))
    full_batches = n // batch_size
    batch_gradients = _vectorized(model, loss) if vectorize else None

    def epoch_targets(epoch: int):
        order = torch.randperm(n, generator=generator).to(X.device)
        if batch_gradients is not None:
            rows = order[: full_batches * batch_size].view(full_batches, batch_size)
            yield from batch_gradients(X[rows], y[rows]).to(device)
            starts = [] if drop_last or n % batch_size == 0 else [full_batches * batch_size]
        else:
            stop = full_batches * batch_size if drop_last else n
            starts = range(0, stop, batch_size)
        for start in starts:
            rows = order[start : start + batch_size]
            yield loss_gradient(model, loss, X[rows], y[rows]).to(device)

    return epoch_targets


def _vectorized(model: torch.nn.Module, loss: str):
    """(X_b, y_b) stacked over B equal-size batches ↦ (B, p) float64 targets −∇L_b, one vmap
    pass of ``torch.func.grad`` of the batch mean loss."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def batch_loss(weights, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return _mean_loss(functional_call(model, weights, (xb,)), yb, loss)

    batch_gradients = vmap(grad(batch_loss), in_dims=(None, 0, 0))

    def gradients(X_rows: torch.Tensor, y_rows: torch.Tensor) -> torch.Tensor:
        grads = batch_gradients(params, X_rows, y_rows)
        flat = torch.cat([g.reshape(X_rows.shape[0], -1) for g in grads.values()], dim=1)
        return -flat.double()

    return gradients
