"""Batched training of K MLP members of one architecture, each with its own seed and settings.

Member k minimises

    J_k(θ_k) = L(f_{θ_k}(X_b), y_b) + R_k(θ_k)

on its own minibatches b (mean loss: ``mse`` = torch ``MSELoss`` without ½, ``cross_entropy``),
with its own optimiser hyperparameters, dropout rate and early stopping. All members are one
computation: the parameters are stacked along a leading member axis and the summed objective
Σ_k J_k is differentiated once (members share no parameters, so ∂/∂θ_k of the sum is ∇J_k).

Reproducibility contract (tested): member k trained in a batch equals the same member trained
alone in a plain PyTorch loop (without dropout), because
- its initial weights are ``build_mlp(spec)`` built right after ``torch.manual_seed(seeds[k])``;
- its data order in epoch e is the e-th ``torch.randperm(n, generator=G_k)`` with
  ``G_k = torch.Generator().manual_seed(data_seeds[k])`` (``data_seeds`` defaults to ``seeds``),
  cut into consecutive batches (the last partial batch dropped when ``drop_last``);
- its optimiser update is ``torch.optim``'s formula (see :mod:`gradmatch.train.optim`).
Dropout masks of member k come from its own generator, seeded ``dropout_seeds[k]`` (default
``seeds[k] + DROPOUT_SEED_OFFSET``), so a member's masks, like its data order, do not depend on
which other members share the job (tested). Same inputs → identical weights on CPU.

A stopped member is frozen by a mask (weights and optimiser state stop changing) until every
member has stopped or ``epochs`` is reached. After each epoch the metrics below are computed for
all members; the history keeps the rows of members that trained in that epoch.

Epoch metrics (each a (K,) tensor): ``lr``, ``train_loss`` (mean data loss over the epoch's
steps), ``train_loss_last`` and ``train_objective_last`` (data loss and penalised objective of
the epoch's last step, the value Lightning logs as ``train/loss``), and for every evaluation set
``name`` in ``eval_data``, in evaluation mode (no dropout): ``{name}_loss`` and, for
cross-entropy, ``{name}_acc``.

Example (Fig 5 style: shared data, per-member dropout, SGD + momentum, val-loss stopping)::

    result = train_batched(
        MLPSpec(784, (256, 256, 256), 10), seeds=[1, 2], X=x_train, y=y_train,
        loss="cross_entropy", dropout=[0.1, 0.3], batch_size=2048,
        optimizer=SGD(lr=0.05, momentum=0.9, milestones=(60, 100, 200)),
        early_stopping=EarlyStopping("val_loss", patience=50), eval_data={"val": (x_val, y_val)},
    )
    model = result.member(0, "final")   # a solo nn.Sequential, dropout rate 0.1, train mode off

Fig 6 style (plain SGD with a per-member step size, no hidden biases, custom checkpoint rule:
the best validation accuracy among epochs whose training accuracy is ≥ 0.90)::

    result = train_batched(
        MLPSpec(784, (w,) * 5, 10, activation="tanh", hidden_bias=False), seeds=[0] * len(lrs),
        X=x_train, y=y_train, loss="cross_entropy", optimizer=SGD(lr=lrs), epochs=50,
        batch_size=128, data_seeds=[17] * len(lrs),
        eval_data={"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_te, y_te)},
        select=lambda m: torch.where(m["train_acc"] >= 0.90, m["val_acc"], torch.nan),
    )
    result.best_found          # False where no epoch reached 0.90 train accuracy
    result.member(k, "best")
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gradmatch.progress import progress_bar
from gradmatch.train import checkpoint as checkpoint_lib
from gradmatch.train.checkpoint import Checkpoint
from gradmatch.train.devices import resolve_device, resolve_dtype
from gradmatch.train.early_stopping import BestState, EarlyStopping, StopState
from gradmatch.train.models import MLPSpec, init_stacked, load_member, stacked_forward
from gradmatch.train.optim import SGD, Adam

LOSSES = ("mse", "cross_entropy")
# member k's dropout generator is seeded seeds[k] + this, a stream apart from its data order
DROPOUT_SEED_OFFSET = 1_000_003
Metrics = dict[str, torch.Tensor]


@dataclass
class TrainResult:
    """What :func:`train_batched` returns; stacked tensors have the member axis first.

    ``final``: weights after the last trained epoch of each member. ``best``: weights at the
    epoch with the highest selection score (``best_epoch``, 0-based; −1 and ``best_found`` False
    when no epoch was eligible, and then ``best`` holds the initial weights). ``epochs_trained``:
    number of epochs each member trained (its stop epoch + 1). ``history``: one row per member and
    trained epoch.
    """

    spec: MLPSpec
    seeds: tuple[int, ...]
    dropout: np.ndarray
    final: list[torch.Tensor]
    best: list[torch.Tensor]
    best_epoch: np.ndarray
    best_found: np.ndarray
    epochs_trained: np.ndarray
    history: pd.DataFrame

    @property
    def n_members(self) -> int:
        return len(self.seeds)

    def parameters(self, k: int, which: str = "final") -> list[torch.Tensor]:
        """Member k's parameter tensors (solo shapes), ``which`` = final | best."""
        return [p[k] for p in self._stack(which)]

    def member(self, k: int, which: str = "final") -> torch.nn.Sequential:
        """Member k as a solo ``nn.Sequential`` in eval mode, with its own dropout rate."""
        model = load_member(self.spec, self._stack(which), k, dropout=float(self.dropout[k]))
        return model.eval()

    def _stack(self, which: str) -> list[torch.Tensor]:
        if which not in ("final", "best"):
            raise ValueError(f"which: {which!r} is not known; use 'final' or 'best'")
        return self.final if which == "final" else self.best


class _Data:
    """Training or evaluation data, shared (n, ...) or per member (K, n, ...), on one device."""

    def __init__(self, X, y, k: int, loss: str, name: str, device, dtype) -> None:
        X = torch.as_tensor(X)
        y = torch.as_tensor(y)
        self.per_member = X.dim() == 3
        if X.dim() not in (2, 3) or (self.per_member and X.shape[0] != k):
            raise ValueError(
                f"{name}: X must be (n, features) shared or ({k}, n, features) per member, "
                f"got shape {tuple(X.shape)}"
            )
        self.n = X.shape[-2]
        self.X = X.to(device=device, dtype=dtype)
        self.y = self._targets(y, loss, name, device, dtype)
        self.k = k

    def _targets(self, y, loss, name, device, dtype) -> torch.Tensor:
        lead = (self.X.shape[0], self.n) if self.per_member else (self.n,)
        if loss == "cross_entropy":
            if tuple(y.shape) != lead:
                raise ValueError(
                    f"{name}: class labels y must have shape {lead}, got {tuple(y.shape)}"
                )
            return y.to(device=device, dtype=torch.long)
        if tuple(y.shape) == lead:
            y = y.unsqueeze(-1)
        if tuple(y.shape[:-1]) != lead:
            raise ValueError(
                f"{name}: targets y must have shape {lead} or {lead} + (outputs,), "
                f"got {tuple(y.shape)}"
            )
        return y.to(device=device, dtype=dtype)

    def batch(self, index: torch.Tensor | None):
        """Rows ``index`` (K, B) of each member's data; None = all rows (full batch)."""
        if index is None:
            return self.X, self.y
        if self.per_member:
            rows = torch.arange(self.k, device=index.device).unsqueeze(1)
            return self.X[rows, index], self.y[rows, index]
        return self.X[index], self.y[index]

    def slice(self, start: int, stop: int):
        if self.per_member:
            return self.X[:, start:stop], self.y[:, start:stop]
        return self.X[start:stop], self.y[start:stop]


def member_loss(outputs: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """(K,) mean loss per member; outputs (K, B, out), targets broadcastable per member."""
    if loss == "mse":
        return (outputs - targets).square().mean(dim=(-2, -1))
    labels = targets.expand(outputs.shape[:-1])
    return F.cross_entropy(outputs.transpose(1, 2), labels, reduction="none").mean(dim=1)


def _accuracy_sum(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (outputs.argmax(-1) == targets).to(torch.float64).sum(dim=1)


@torch.no_grad()
def evaluate(spec, params, data: _Data, loss: str, batch_size: int) -> Metrics:
    """Mean loss (and accuracy for cross-entropy) of every member on ``data``, eval mode."""
    k = params[0].shape[0]
    loss_sum = torch.zeros(k, dtype=torch.float64, device=params[0].device)
    correct = torch.zeros_like(loss_sum)
    for start in range(0, data.n, batch_size):
        X, y = data.slice(start, min(start + batch_size, data.n))
        outputs = stacked_forward(spec, params, X)
        size = X.shape[-2]
        loss_sum += member_loss(outputs, y, loss).to(torch.float64) * size
        if loss == "cross_entropy":
            correct += _accuracy_sum(outputs, y.expand(outputs.shape[:-1]))
    metrics = {"loss": loss_sum / data.n}
    if loss == "cross_entropy":
        metrics["acc"] = correct / data.n
    return metrics


class _Orders:
    """Per-member data order: epoch e uses the e-th randperm of member k's own generator."""

    def __init__(self, data_seeds, n, batch_size, shuffle, drop_last, device) -> None:
        self.generators = [torch.Generator().manual_seed(int(s)) for s in data_seeds]
        self.n, self.batch_size, self.shuffle, self.device = n, batch_size, shuffle, device
        if batch_size is None:
            self.n_steps = 1
        else:
            self.n_steps = n // batch_size if drop_last else -(-n // batch_size)
        if self.n_steps == 0:
            raise ValueError(
                f"batch_size={batch_size} with drop_last leaves no batch of {n} samples; "
                "lower batch_size or set drop_last=False"
            )

    def epoch(self):
        """Yield the (K, B) row indices of each step (None for full batch)."""
        if self.batch_size is None:
            yield None
            return
        if self.shuffle:
            order = torch.stack([torch.randperm(self.n, generator=g) for g in self.generators])
        else:
            order = torch.arange(self.n).expand(len(self.generators), self.n)
        order = order.to(self.device)
        for step in range(self.n_steps):
            yield order[:, step * self.batch_size : (step + 1) * self.batch_size]


def _per_member_rates(dropout, k: int) -> torch.Tensor:
    rates = torch.as_tensor(dropout, dtype=torch.float64).flatten()
    rates = rates.expand(k).clone() if rates.numel() == 1 else rates
    if rates.numel() != k:
        raise ValueError(f"dropout: give one rate or one per member ({k}), got {rates.numel()}")
    if bool(((rates < 0) | (rates >= 1)).any()):
        raise ValueError(f"dropout: every rate must lie in [0, 1), got {rates.tolist()}")
    return rates


def _check_names(loss: str, seeds, early_stopping, optimizer) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss: {loss!r} is not known; use one of {list(LOSSES)}")
    if len(seeds) == 0:
        raise ValueError("seeds: give one seed per member (at least one)")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise ValueError("early_stopping: pass a gradmatch.train.EarlyStopping or None")
    if not isinstance(optimizer, (Adam, SGD)):
        raise ValueError("optimizer: pass gradmatch.train.Adam(...) or gradmatch.train.SGD(...)")


def train_batched(
    spec: MLPSpec,
    seeds: Sequence[int],
    X,
    y,
    *,
    loss: str = "mse",
    optimizer: Adam | SGD | None = None,
    epochs: int = 200,
    batch_size: int | None = 32,
    shuffle: bool = True,
    drop_last: bool = True,
    dropout: float | Sequence[float] = 0.0,
    penalty: Callable[[Sequence[torch.Tensor]], torch.Tensor] | None = None,
    early_stopping: EarlyStopping | None = None,
    eval_data: Mapping[str, tuple] | None = None,
    select: Callable[[Metrics], torch.Tensor] | None = None,
    data_seeds: Sequence[int] | None = None,
    dropout_seeds: Sequence[int] | None = None,
    eval_batch_size: int = 8192,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "float32",
    progress: bool = True,
    desc: str = "train",
    on_epoch: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> TrainResult:
    """Train len(seeds) members of ``spec`` at once; see the module docstring for the contract.

    X, y: shared (n, d), (n,) / (n, out) or per member (K, n, d), (K, n) / (K, n, out); integer
    labels for cross-entropy. ``batch_size=None`` trains full batch. ``optimizer`` defaults to
    ``Adam(lr=1e-3)``. ``dropout``: one rate or one per member. ``penalty(params) -> (K,)`` is
    added to the loss. ``select(metrics) -> (K,)`` scores each epoch for the best state (higher
    is better; NaN = not eligible); by default the best state minimises the early-stopping
    monitor (``train_objective_last`` without early stopping). ``on_epoch(epoch, metrics)`` gets
    numpy (K,) arrays plus the boolean ``active`` after every epoch (not for the epochs a resumed
    run restored). ``checkpoint``: a :class:`gradmatch.train.checkpoint.Checkpoint`; the loop
    state is saved in its section ``train`` after an epoch when due and when training ends, and
    a saved state is resumed from (the result is identical to an uninterrupted run's).
    """
    seeds = tuple(int(s) for s in seeds)
    optimizer = Adam() if optimizer is None else optimizer
    _check_names(loss, seeds, early_stopping, optimizer)
    k = len(seeds)
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    train = _Data(X, y, k, loss, "X/y", device, dtype)
    evals = {
        name: _Data(Xe, ye, k, loss, f"eval_data[{name!r}]", device, dtype)
        for name, (Xe, ye) in (eval_data or {}).items()
    }
    rates = _per_member_rates(dropout, k)
    params = [p.requires_grad_() for p in init_stacked(spec, seeds, dtype=dtype, device=device)]
    state = _Loop(
        spec,
        params,
        loss,
        optimizer.build(params, k),
        penalty,
        rates,
        device,
        _dropout_seeds(dropout_seeds, seeds),
    )
    orders = _Orders(data_seeds or seeds, train.n, batch_size, shuffle, drop_last, device)
    if data_seeds is not None and len(data_seeds) != k:
        raise ValueError(f"data_seeds: give one per member ({k}), got {len(data_seeds)}")
    stopper = StopState(early_stopping, k, device) if early_stopping else None
    monitor = early_stopping.monitor if early_stopping else "train_objective_last"
    best = BestState(params)
    active = torch.ones(k, dtype=torch.bool, device=device)
    records = []
    epochs_trained = torch.zeros(k, dtype=torch.long, device=device)
    loop = _LoopState(params, state, orders, stopper, best, active, epochs_trained, records)
    start = loop.resume(checkpoint)  # restores active, epochs_trained, records in place
    bar = progress_bar(desc=desc, total=epochs, unit="epochs", enabled=progress)
    if start:
        bar.update(start, active=int(active.sum()))
    for epoch in range(start, epochs):
        if not bool(active.any()):
            break
        if checkpoint is not None:
            checkpoint.reached("train", epoch)
        metrics = state.train_epoch(orders, train, active, epoch)
        for name, data in evals.items():
            for key, value in evaluate(spec, params, data, loss, eval_batch_size).items():
                metrics[f"{name}_{key}"] = value
        _require(metrics, monitor, "early_stopping.monitor")
        score = select(metrics) if select is not None else -metrics[monitor]
        best.update(params, score, active, epoch)
        records.append(_records(metrics, active, epoch))
        epochs_trained += active.long()
        if on_epoch is not None:
            on_epoch(epoch, {**_numpy(metrics), "active": active.cpu().numpy()})
        if stopper is not None:
            active = stopper.update(metrics[monitor], active)
        bar.update(active=int(active.sum()))
        loop.active, loop.epochs_trained = active, epochs_trained
        if checkpoint is not None:
            finished = epoch + 1 == epochs or not bool(active.any())
            where = "training done" if finished else f"training, {epoch + 1} of {epochs} epochs"
            snapshot = functools.partial(loop.snapshot, epoch + 1)
            checkpoint.progress("train", snapshot, where, force=finished)
        if not bool(active.any()):
            break
    bar.close()
    return TrainResult(
        spec=spec,
        seeds=seeds,
        dropout=rates.numpy(),
        final=[p.detach() for p in params],
        best=best.params,
        best_epoch=best.epoch.cpu().numpy(),
        best_found=best.found.cpu().numpy(),
        epochs_trained=epochs_trained.cpu().numpy(),
        history=_history(records, seeds),
    )


class _LoopState:
    """Everything the epoch loop carries, saved and restored whole (the checkpoint's ``train``).

    Optimiser, early-stopping and best-state objects are saved by their tensor attributes (a
    tensor or a list of tensors each), the generators by ``get_state``; restoring first checks
    every name and shape against this run and changes nothing when one differs.
    """

    def __init__(self, params, loop, orders, stopper, best, active, epochs_trained, records):
        self.params, self.loop, self.orders = params, loop, orders
        # each part with the attributes that are not its state (the optimiser's shared params)
        self.parts = {"optimizer": (loop.optimizer, ("params",)), "stopper": (stopper, ())}
        self.parts["best"] = (best, ())
        self.active, self.epochs_trained, self.records = active, epochs_trained, records

    def snapshot(self, next_epoch: int) -> dict:
        """The state after epoch ``next_epoch − 1``, as CPU tensors and plain values."""
        return {
            "next_epoch": next_epoch,
            "params": [_cpu(p) for p in self.params],
            **{name: _tensor_attributes(*part) for name, part in self.parts.items()},
            "active": _cpu(self.active),
            "epochs_trained": _cpu(self.epochs_trained),
            "records": [
                {column: torch.from_numpy(frame[column].to_numpy().copy()) for column in frame}
                for frame in self.records
            ],
            "data_generators": [g.get_state() for g in self.orders.generators],
            "dropout_generators": [g.get_state() for g in self.loop.generators],
            "rng": checkpoint_lib.rng_state(),
        }

    def resume(self, checkpoint: Checkpoint | None) -> int:
        """Restore a saved state; return the epoch to start from (0 when there is none)."""
        saved = None if checkpoint is None else checkpoint.resumed("train")
        if saved is None:
            return 0
        try:
            copies = self._copies(saved)
        except (KeyError, TypeError, ValueError) as error:
            checkpoint.ignore("train", f"it does not fit this training run ({error})")
            return 0
        with torch.no_grad():
            for target, source in copies:
                target.copy_(source)
        self.records[:] = [
            pd.DataFrame({column: values.numpy() for column, values in frame.items()})
            for frame in saved["records"]
        ]
        for generators, key in (
            (self.orders.generators, "data_generators"),
            (self.loop.generators, "dropout_generators"),
        ):
            for generator, state in zip(generators, saved[key], strict=True):
                generator.set_state(state)
        checkpoint_lib.set_rng_state(saved["rng"])
        return int(saved["next_epoch"])

    def _copies(self, saved: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(target, source) pairs of every tensor to restore; ValueError on any mismatch."""
        pairs = list(_pairs("params", self.params, saved["params"]))
        for name, part in self.parts.items():
            current = _tensor_attributes(*part, keep=True)
            if set(current) != set(saved[name]):
                raise ValueError(f"{name} holds {sorted(saved[name])}, expected {sorted(current)}")
            for attribute, value in current.items():
                pairs += _pairs(f"{name}.{attribute}", value, saved[name][attribute])
        pairs += _pairs("active", self.active, saved["active"])
        pairs += _pairs("epochs_trained", self.epochs_trained, saved["epochs_trained"])
        for key, generators in (
            ("data_generators", self.orders.generators),
            ("dropout_generators", self.loop.generators),
        ):
            if len(saved[key]) != len(generators):
                raise ValueError(f"{key}: {len(saved[key])} saved, {len(generators)} members")
        return pairs


def _tensor_attributes(part, skip: tuple[str, ...], keep: bool = False) -> dict:
    """The tensor and list-of-tensor attributes of ``part`` (copies on CPU unless ``keep``)."""
    if part is None:
        return {}
    found = {}
    for name, value in vars(part).items():
        if name in skip:
            continue
        if isinstance(value, torch.Tensor):
            found[name] = value if keep else _cpu(value)
        elif isinstance(value, list) and value and all(isinstance(v, torch.Tensor) for v in value):
            found[name] = value if keep else [_cpu(v) for v in value]
    return found


def _pairs(name: str, current, saved) -> list[tuple[torch.Tensor, torch.Tensor]]:
    currents = current if isinstance(current, list) else [current]
    saveds = saved if isinstance(saved, list) else [saved]
    if len(currents) != len(saveds):
        raise ValueError(f"{name}: {len(saveds)} saved tensors, expected {len(currents)}")
    for target, source in zip(currents, saveds, strict=True):
        if not isinstance(source, torch.Tensor) or source.shape != target.shape:
            raise ValueError(f"{name}: saved shape differs from {tuple(target.shape)}")
        if source.dtype != target.dtype:
            raise ValueError(f"{name}: saved dtype {source.dtype}, expected {target.dtype}")
    return list(zip(currents, saveds, strict=True))


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu", copy=True)


def _require(metrics: Metrics, key: str, what: str) -> None:
    if key not in metrics:
        raise ValueError(
            f"{what}: {key!r} is not an epoch metric; available: {sorted(metrics)} "
            "(add the evaluation set to eval_data for val_* metrics)"
        )


class _Loop:
    """The per-step work: forward, loss + penalty, one backward, masked optimiser step."""

    def __init__(self, spec, params, loss, optimizer, penalty, rates, device, dropout_seeds):
        self.spec, self.params, self.loss = spec, params, loss
        self.optimizer, self.penalty = optimizer, penalty
        self.rates = rates.to(device=device, dtype=params[0].dtype)
        self.use_dropout = bool((rates > 0).any()) and any(spec.dropout_layers())
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in dropout_seeds]

    def train_epoch(self, orders: _Orders, data: _Data, active, epoch: int) -> Metrics:
        lr = self.optimizer.set_epoch(epoch)
        mask = None if bool(active.all()) else active
        loss_sum = torch.zeros(len(active), dtype=torch.float64, device=active.device)
        for index in orders.epoch():
            data_loss, objective = self._step(*data.batch(index), mask)
            loss_sum += data_loss.detach().to(torch.float64)
        return {
            "lr": lr,
            "train_loss": loss_sum / orders.n_steps,
            "train_loss_last": data_loss.detach(),
            "train_objective_last": objective.detach(),
        }

    def _step(self, X, y, mask):
        dropout = self.rates if self.use_dropout else None
        outputs = stacked_forward(
            self.spec, self.params, X, dropout=dropout, generator=self.generators
        )
        data_loss = member_loss(outputs, y, self.loss)
        objective = data_loss if self.penalty is None else data_loss + self.penalty(self.params)
        grads = torch.autograd.grad(objective.sum(), self.params)
        self.optimizer.step(grads, mask)
        return data_loss, objective


def _dropout_seeds(dropout_seeds: Sequence[int] | None, seeds: tuple[int, ...]) -> list[int]:
    if dropout_seeds is None:
        return [seed + DROPOUT_SEED_OFFSET for seed in seeds]
    if len(dropout_seeds) != len(seeds):
        raise ValueError(
            f"dropout_seeds: give one per member ({len(seeds)}), got {len(dropout_seeds)}"
        )
    return [int(seed) for seed in dropout_seeds]


def _numpy(metrics: Metrics) -> dict[str, np.ndarray]:
    return {key: value.detach().to(torch.float64).cpu().numpy() for key, value in metrics.items()}


def _records(metrics: Metrics, active: torch.Tensor, epoch: int) -> pd.DataFrame:
    frame = pd.DataFrame(_numpy(metrics))
    frame.insert(0, "epoch", epoch)
    frame.insert(0, "member", np.arange(len(frame)))
    return frame[active.cpu().numpy()]


def _history(records: list[pd.DataFrame], seeds) -> pd.DataFrame:
    history = pd.concat(records, ignore_index=True)
    history.insert(1, "seed", np.asarray(seeds, dtype=np.int64)[history["member"].to_numpy()])
    return history.sort_values(["member", "epoch"], kind="stable").reset_index(drop=True)
