"""The authors' stochastic gradient-matching procedure: Adam on the fit loss of Eq. 3.

Every family is linear in its coefficients c, ∇R = A c, so the fit loss of one target b is
mean((A c − b)²) over the N stacked equations; its gradient (2/N) Aᵀ(A c − b) (times c when the
family is positive and c = exp(β)) is written out instead of taking a backward pass. Scales of
``positive`` families are log-parametrised, unconstrained families fitted directly. Adam with
early stopping on the monitored fit loss (Lightning semantics: an epoch improves when
loss < best − min_delta; stop after ``patience`` epochs without improvement) and an optional
ReduceLROnPlateau. With ``target_batches`` each step uses one minibatch target and the
monitored value of an epoch is the fit loss of its last batch. Called by
:func:`gradmatch.core.estimators.match_gradients` with ``method="adam"``.

Projected targets (``target_batches`` with a ``project(A)`` method, e.g.
:class:`gradmatch.train.matching.ProjectedTargets`): the gradient (2/N)(AᵀA c − Aᵀb) of a step
needs the target b only through the k-vector Aᵀb, so every step but the last of an epoch takes
Aᵀb from ``project(A)(epoch)`` and AᵀA (k × k) computed once; the last step, whose fit loss is
monitored, uses its full target b as before. The same fit to rounding, without a backward pass
per minibatch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from gradmatch.core.regularizers import Family

__all__ = [
    "AdamOptions",
    "adam_init",
    "adam_options",
    "adam_start",
    "fit_adam",
    "target_stream",
]


@dataclasses.dataclass(frozen=True)
class AdamOptions:
    """Settings of the ``"adam"`` method. Defaults = the Fig. 3 elastic-net fit (paper H.2, code).

    ``init``: starting values of the fitted coefficients by name (e.g. ``{"lambda": 1.0}``; with
    ``normalize=True`` these are the a_i of Appendix G.1); scalars broadcast over array
    parameters. Missing names start at 1 for scales (β = 0) and 0 for unconstrained ones.
    ``init_log_std``: standard deviation of Gaussian noise added to each β = log λ at the start
    (0.1 in the dropout fit, Fig. 5), drawn from a torch generator seeded with ``seed``.
    ``plateau_factor``: if set, ReduceLROnPlateau(factor, patience=plateau_patience) on the
    monitored loss each epoch (0.5 and 10 in the dropout and G.1 fits). ``device``: where the
    fit runs (the targets are moved there).
    """

    lr: float = 1e-2
    max_epochs: int = 1000
    patience: int = 50
    min_delta: float = 0.0
    plateau_factor: float | None = None
    plateau_patience: int = 10
    init: dict[str, Any] | None = None
    init_log_std: float = 0.0
    seed: int = 0
    device: str = "cpu"
    progress: bool = False


def adam_options(adam: AdamOptions | dict | None) -> AdamOptions:
    if adam is None:
        return AdamOptions()
    if isinstance(adam, AdamOptions):
        return adam
    if isinstance(adam, dict):
        known = {field.name for field in dataclasses.fields(AdamOptions)}
        unknown = sorted(set(adam) - known)
        if unknown:
            raise ValueError(f"unknown adam option(s) {unknown}; accepted: {sorted(known)}")
        return AdamOptions(**adam)
    raise ValueError(f"adam must be AdamOptions, a dict or None, got {type(adam).__name__}")


def target_stream(
    target_batches: Callable[[int], Iterable[Any]] | Any | None, shape: tuple[int, int]
) -> Callable[[int], Iterable[np.ndarray]] | _CheckedProjection | None:
    if target_batches is None:
        return None
    if hasattr(target_batches, "project"):
        return _CheckedProjection(target_batches, shape)
    if not callable(target_batches):
        raise ValueError("target_batches must be a callable epoch -> iterable of target vectors")

    def stream(epoch: int):
        count = 0
        for batch_target in target_batches(epoch):
            values = batch_target
            size = int(values.numel()) if hasattr(values, "numel") else int(np.size(values))
            finite = bool(values.isfinite().all()) if hasattr(values, "isfinite") else None
            if finite is None:
                finite = bool(np.all(np.isfinite(values)))
            if not finite:
                raise ValueError(
                    f"target_batches yielded a target with NaN or inf at epoch {epoch}; "
                    f"check the model and the batch that produced it"
                )
            if size != shape[0] * shape[1]:
                raise ValueError(
                    f"target_batches yielded a target with {size} entries at epoch {epoch}; "
                    f"expected {shape[0] * shape[1]} (the shape of target)"
                )
            count += 1
            yield values
        if count == 0:
            raise ValueError(f"target_batches({epoch}) yielded no targets")

    return stream


class _CheckedProjection:
    """Projected targets (module docstring) with the checks of :func:`target_stream`."""

    def __init__(self, projected: Any, shape: tuple[int, int]) -> None:
        if shape[0] != 1:
            raise ValueError(
                f"projected target_batches match one endpoint; theta/target stack {shape[0]}"
            )
        self.projected, self.size = projected, shape[1]

    def project(self, design: np.ndarray) -> Callable[[int], tuple[Any, Any]]:
        stream = self.projected.project(design)
        k = design.shape[1]

        def epoch_targets(epoch: int):
            projections, last = stream(epoch)
            if tuple(projections.shape)[1:] != (k,) or projections.shape[0] < 1:
                raise ValueError(
                    f"projected target_batches gave projections of shape "
                    f"{tuple(projections.shape)} at epoch {epoch}; expected (batches >= 1, {k})"
                )
            if int(last.numel()) != self.size:
                raise ValueError(
                    f"projected target_batches gave a last target with {int(last.numel())} "
                    f"entries at epoch {epoch}; expected {self.size} (the shape of target)"
                )
            if not (bool(projections.isfinite().all()) and bool(last.isfinite().all())):
                raise ValueError(
                    f"projected target_batches gave NaN or inf at epoch {epoch}; check the "
                    f"model and the batch that produced it"
                )
            return projections, last

        return epoch_targets


def adam_init(family: Family, options: AdamOptions, p: int) -> np.ndarray:
    default_value = 1.0 if family.positive else 0.0
    init = dict(options.init or {})
    unknown = sorted(set(init) - set(family.names))
    if unknown:
        raise ValueError(f"adam init names {unknown} not in {family!r}.names {family.names}")
    shapes = family.shapes(p)
    start = {
        name: np.broadcast_to(np.asarray(init.get(name, default_value), float), shapes[name])
        for name in family.names
    }
    return family.coefficients(start, p)


def adam_start(positive: bool, init: np.ndarray, options: AdamOptions):
    """The fitted parameter at the start (a float64 CPU tensor): β₀ = log(init) for a positive
    family, plus ``init_log_std`` · N(0, 1) from ``torch.Generator().manual_seed(seed)``
    (λ₀ = exp(β₀)); the coefficients ``init`` themselves for an unconstrained one."""
    import torch

    if positive and np.any(init <= 0):
        raise ValueError("adam init for a positive family must be > 0 (λ = exp(β))")
    start = np.log(init) if positive else init
    parameter = torch.tensor(start, dtype=torch.float64)
    if positive and options.init_log_std > 0:
        generator = torch.Generator().manual_seed(options.seed)
        noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
        parameter = parameter + options.init_log_std * noise
    return parameter


def fit_adam(
    design: np.ndarray,
    target: np.ndarray,
    positive: bool,
    init: np.ndarray,
    options: AdamOptions,
    batches: Callable[[int], Iterable[Any]] | None,
) -> tuple[np.ndarray, int, tuple[float, ...]]:
    import torch

    from gradmatch.progress import progress_bar

    device = torch.device(options.device)
    dtype = torch.float64
    design_t = torch.as_tensor(design, dtype=dtype, device=device)
    full_target = torch.as_tensor(target, dtype=dtype, device=device)
    parameter = adam_start(positive, init, options).to(device)
    optimizer = torch.optim.Adam([parameter], lr=options.lr)
    scheduler = None
    if options.plateau_factor is not None:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=options.plateau_factor, patience=options.plateau_patience
        )

    scale = 2.0 / design_t.shape[0]

    def step(batch_target: torch.Tensor) -> float:
        # The fit loss mean((A c − b)²) is quadratic in c: its gradient (2/N) Aᵀ(A c − b)
        # (times c for c = exp(β)) is written out instead of taking a backward pass.
        coefficients = torch.exp(parameter) if positive else parameter
        residual = design_t @ coefficients - batch_target
        gradient = scale * (design_t.T @ residual)
        parameter.grad = gradient * coefficients if positive else gradient
        optimizer.step()
        return float(residual @ residual) / residual.numel()

    gram = design_t.T @ design_t if hasattr(batches, "project") else None
    projected = batches.project(design) if gram is not None else None

    def projected_step(projection: torch.Tensor) -> None:
        # The same gradient (2/N)(AᵀA c − Aᵀb) from the k-vector Aᵀb (module docstring).
        coefficients = torch.exp(parameter) if positive else parameter
        gradient = scale * (gram @ coefficients - projection)
        parameter.grad = gradient * coefficients if positive else gradient
        optimizer.step()

    best, wait, history = math.inf, 0, []
    epoch_bar = progress_bar(
        desc="adam fit",
        total=options.max_epochs,
        unit="epochs",
        enabled=options.progress,
        leave=True,
    )
    for epoch in range(options.max_epochs):
        if batches is None:
            monitored = step(full_target)
        elif projected is not None:
            projections, last = projected(epoch)
            for projection in torch.as_tensor(projections, dtype=dtype, device=device)[:-1]:
                projected_step(projection)
            monitored = step(torch.as_tensor(last, dtype=dtype, device=device).reshape(-1))
        else:
            for batch_target in batches(epoch):
                values = torch.as_tensor(batch_target, dtype=dtype, device=device).reshape(-1)
                monitored = step(values)
        history.append(monitored)
        epoch_bar.update()
        if scheduler is not None:
            scheduler.step(monitored)
        if not math.isfinite(monitored):
            break
        if monitored < best - abs(options.min_delta):
            best, wait = monitored, 0
        else:
            wait += 1
            if wait >= options.patience:
                break
    epoch_bar.close()
    with torch.no_grad():
        final = torch.exp(parameter) if positive else parameter
    return final.detach().cpu().numpy().astype(np.float64), len(history), tuple(history)
