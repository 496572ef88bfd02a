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

Two ways to produce them (``targets``):

- ``"backward"``: every target t_b in full, one backward pass per batch (the authors' way).
  ``vectorize`` computes the equal-size batches of an epoch in one pass, ``torch.func.vmap`` of
  ``torch.func.grad`` of the batch mean loss: much faster for many small batches (Fig. 3: 125
  batches of 32 rows per epoch). Without it each batch is one ``loss_gradient`` call (the
  closed-form vector-Jacobian product). The two agree to rounding; bit for bit only in some
  cases (Fig. 3's batches of 32 on CPU), so each analysis keeps the one its tables were made
  with: Fig. 3 vectorises, Fig. 5 (batches of 2048) does not.
- ``"projected"``: the same fit without a backward pass per batch. Every family is linear,
  ∇R = A c with A of shape (p, k), so the fit loss of a target t_b,
  (1/p)‖A c − t_b‖², has the gradient (2/p)(AᵀA c − Aᵀt_b): it needs t_b only through the
  k-vector

      Aᵀt_b = −(1/|b|) Σ_{i∈b} Aᵀ∇ℓ_i(θ̂),

  a mean over the batch of the per-sample directional derivatives Aᵀ∇ℓ_i = d/dt ℓ_i(θ̂ + t a_j)
  along the k design columns a_j. They are computed once, by one forward-mode pass
  (``torch.func.jvp``) per column over all n rows in float64, and each batch's Aᵀt_b is a
  gather and a mean (:meth:`ProjectedTargets.project`). Only the last batch of an epoch, whose
  fit loss is monitored (early stopping, ReduceLROnPlateau), gets its full t_b, computed as the
  ``"backward"`` way computes it. Same batches, same generator draws; the projections carry no
  float32 rounding of the batch gradients, so on float32 models the two ways agree to that
  rounding, on float64 models to ~1e-12.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np
import torch
from torch.func import functional_call, grad, jvp, vmap

from gradmatch.core.autodiff import LOSSES, _mean_loss, _mse_targets, loss_gradient

__all__ = ["TARGETS", "ProjectedTargets", "minibatch_targets"]

TargetBatches = Callable[[int], Iterable[torch.Tensor]]
TARGETS = ("backward", "projected")
PROJECTION_ROWS = 8192  # rows per forward-mode pass of the per-sample projections


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
    targets: Literal["backward", "projected"] = "backward",
) -> TargetBatches | ProjectedTargets:
    """``target_batches`` for :func:`gradmatch.core.estimators.match_gradients`: epoch e ↦ the
    float64 targets −∇L_b(θ̂) of its minibatches b (module docstring), on ``device`` (default:
    the model's); with ``targets="projected"`` a :class:`ProjectedTargets` for the same fit.
    Evaluate the model in the mode it is matched in (``model.eval()`` first when it has
    dropout)."""
    if loss not in LOSSES:
        raise ValueError(f"minibatch_targets: loss must be one of {list(LOSSES)}, got {loss!r}")
    if batch_size < 1:
        raise ValueError(f"minibatch_targets: batch_size must be >= 1, got {batch_size}")
    if targets not in TARGETS:
        raise ValueError(
            f"minibatch_targets: targets must be one of {list(TARGETS)}, got {targets!r}"
        )
    device = next(model.parameters()).device if device is None else torch.device(device)
    batches = _Batches(model, loss, X, y, batch_size, seed, drop_last, vectorize, device)
    return batches.backward if targets == "backward" else ProjectedTargets(batches)


class _Batches:
    """The batch order of the fit and the full targets t_b of chosen batches."""

    def __init__(self, model, loss, X, y, batch_size, seed, drop_last, vectorize, device):
        self.model, self.loss, self.X, self.y, self.device = model, loss, X, y, device
        self.n, self.batch_size, self.drop_last = len(y), int(batch_size), drop_last
        self.single = self.batch_size >= self.n
        self.full_batches = self.n // self.batch_size
        self.generator = torch.Generator().manual_seed(int(seed))
        self.batch_gradients = _vectorized(model, loss) if vectorize else None
        self._full = None

    def full(self) -> torch.Tensor:
        """The full-data target, computed once (the single batch when batch_size ≥ n)."""
        if self._full is None:
            self._full = loss_gradient(self.model, self.loss, self.X, self.y).to(self.device)
        return self._full

    def order(self) -> torch.Tensor:
        """The next epoch's row order (CPU): one ``torch.randperm(n, generator=G)``."""
        return torch.randperm(self.n, generator=self.generator)

    def starts(self) -> list[int]:
        """First row (in the epoch's order) of each batch."""
        stop = self.full_batches * self.batch_size
        if not self.drop_last and self.n % self.batch_size:
            stop = self.n
        return list(range(0, stop, self.batch_size))

    def target(self, rows: torch.Tensor) -> torch.Tensor:
        """t_b of one batch, as the backward way computes it for that batch."""
        if self.batch_gradients is not None and len(rows) == self.batch_size:
            return self.batch_gradients(self.X[rows][None], self.y[rows][None])[0].to(self.device)
        return loss_gradient(self.model, self.loss, self.X[rows], self.y[rows]).to(self.device)

    def backward(self, epoch: int):
        """Epoch ``epoch`` ↦ every batch's full target t_b (one backward pass per batch)."""
        if self.single:
            yield self.full()
            return
        order = self.order().to(self.X.device)
        starts = self.starts()
        if self.batch_gradients is not None:
            rows = order[: self.full_batches * self.batch_size].view(self.full_batches, -1)
            yield from self.batch_gradients(self.X[rows], self.y[rows]).to(self.device)
            starts = starts[self.full_batches :]
        for start in starts:
            yield self.target(order[start : start + self.batch_size])


class ProjectedTargets:
    """The minibatch targets of :func:`minibatch_targets` seen through a design matrix A.

    :meth:`project` gives, per epoch, Aᵀt_b of every batch and the full t_b of the last one
    (module docstring, ``"projected"``): the Adam fit of :mod:`gradmatch.core.adam` takes each
    step's gradient from Aᵀt_b and the monitored fit loss from the last t_b.
    """

    def __init__(self, batches: _Batches) -> None:
        self._batches = batches

    def project(self, directions: np.ndarray) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
        """``directions`` A (p, k) ↦ epoch ↦ ((B, k) float64 Aᵀt_b per batch, in order; the
        full float64 target t_b of the last batch), on the targets' device."""
        batches = self._batches
        if batches.single:
            full = batches.full()
            projection = torch.as_tensor(directions, dtype=torch.float64).T @ full.cpu()
            projection = projection[None].to(batches.device)
            return lambda epoch: (projection, full)
        sample = _sample_projections(batches, directions)  # (n, k): a_jᵀ∇ℓ_i

        size, full_batches = batches.batch_size, batches.full_batches
        starts = batches.starts()

        def epoch_targets(epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
            order = batches.order()
            rows = order[: full_batches * size].view(full_batches, size)
            means = [-sample[rows].mean(1)]
            if len(starts) > full_batches:  # the last partial batch, kept
                means.append(-sample[order[starts[-1] :]].mean(0)[None])
            last = order[starts[-1] : starts[-1] + size].to(batches.X.device)
            return torch.cat(means).to(batches.device), batches.target(last)

        return epoch_targets


def _sample_losses(output: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """ℓ_i per row, so that the batch mean equals ``_mean_loss`` (MSE: mean over outputs)."""
    if loss == "mse":
        residual = output - _mse_targets(output, labels)
        return (residual**2).reshape(output.shape[0], -1).mean(1)
    return torch.nn.functional.cross_entropy(output, labels.long(), reduction="none")


def _sample_projections(batches: _Batches, directions: np.ndarray) -> torch.Tensor:
    """(n, k) float64 on the CPU: d/dt ℓ_i(θ̂ + t a_j) for every row i and column a_j of A,
    one ``torch.func.jvp`` per column in float64 over ``PROJECTION_ROWS`` rows at a time."""
    model, loss = batches.model, batches.loss
    named = list(model.named_parameters())
    sizes = [p.numel() for _, p in named]
    directions = np.asarray(directions, dtype=np.float64)
    if directions.ndim != 2 or directions.shape[0] != sum(sizes):
        raise ValueError(
            f"ProjectedTargets.project: directions of shape {directions.shape}; expected "
            f"({sum(sizes)}, k), one column per coefficient over the model's parameters"
        )
    device = named[0][1].device
    params = {name: p.detach().to(torch.float64) for name, p in named}
    columns = torch.as_tensor(directions, dtype=torch.float64, device=device)
    X, y = batches.X, batches.y
    out = torch.empty(batches.n, directions.shape[1], dtype=torch.float64)
    for j in range(directions.shape[1]):
        pieces = torch.split(columns[:, j], sizes)
        tangents = {name: t.view_as(p) for (name, p), t in zip(named, pieces, strict=True)}
        for start in range(0, batches.n, PROJECTION_ROWS):
            xb = X[start : start + PROJECTION_ROWS].to(device=device, dtype=torch.float64)
            yb = y[start : start + PROJECTION_ROWS].to(device)

            def losses(weights, xb=xb, yb=yb):
                return _sample_losses(functional_call(model, weights, (xb,)), yb, loss)

            _, slope = jvp(losses, (params,), (tangents,))
            out[start : start + len(yb), j] = slope.cpu()
    return out


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
