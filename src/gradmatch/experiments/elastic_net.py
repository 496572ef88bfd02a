"""Figure 3: recover the explicit smoothed elastic-net penalty (λ1, λ2) of trained MLPs.

For every cell (λ1, λ2, seed) of the grid (paper Section 3, Appendix H.2; authors'
``analysis/elasticnet_train_and_recover/run.py``):

1. Data from ``torch.Generator().manual_seed(seed)``: X ~ N(0, I₁₀) (n = 5000 rows),
   β = 5·N(0, I₁₀), ε ~ N(0, 0.5²), y = Xβ + ε, then a random 80/20 train/test split.
2. An MLP 10 → 200 ReLU → 1 (initialised right after ``torch.manual_seed(seed)``) minimises

       J(θ) = (1/B) Σ_b (f_θ(x_b) − y_b)² + λ1 Σ_j h_β(θ_j) + λ2 Σ_j θ_j²   (all parameters,
       biases included; h_β = torch smooth_l1 against 0, β = 1e-3)

   with Adam (lr 1e-3), minibatches of 32 (shuffled, last partial batch dropped), ≤ 200 epochs
   and early stopping (patience 15) on J of the last step of each epoch. The paper text says
   "stochastic gradient descent"; the authors' code uses Adam, and so do we (column
   ``train_optimizer``).
3. At the matched weights θ̂ (``match_weights``: ``final`` = the model after training, as the
   authors' code does; ``best`` = the epoch with the lowest monitored J), the stationarity
   condition ∇R(θ̂; λ̂) = −∇L(θ̂) is solved for λ̂ = (λ̂1, λ̂2) with the family
   ``ElasticNet(β)``, ∇R = λ1 h_β'(θ) + 2λ2 θ:
   ``lstsq`` and ``nnls`` against −∇L of the full training set (exact least squares), and
   ``adam``, the authors' procedure: log-parametrised λ (both started at 1), Adam lr 1e-2,
   ≤ 1000 epochs, patience 50 on the fit loss of each epoch's last minibatch, one step per
   minibatch target −∇L_b(θ̂) over shuffled batches of 32 training rows.

A chunk is a slice of the (λ1, λ2, seed) grid in that nesting order, trained as one batch.
Random streams: the data of a seed come from generator ``seed``; the training batch order from
``seed + ORDER_SEED_OFFSET``; the matching minibatches from ``seed + MATCH_SEED_OFFSET``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

from gradmatch.core.estimators import AdamOptions, match_gradients
from gradmatch.core.autodiff import flat_parameters, loss_gradient
from gradmatch.core.regularizers import ElasticNet
from gradmatch.tracking import Tracker
from gradmatch.train import (
    Adam,
    EarlyStopping,
    ElasticNetPenalty,
    MLPSpec,
    TrainResult,
    train_batched,
)

PAPER_LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
ORDER_SEED_OFFSET = 1_000  # training minibatch order: generator seed + this
MATCH_SEED_OFFSET = 2_000  # minibatches of the stochastic Adam fit: generator seed + this
METHODS = ("lstsq", "nnls", "adam")


@dataclass(frozen=True)
class Settings:
    """Every value of Figure 3; defaults are the authors' (sweep ``elasticnet_sweep_config_beta1e3``
    and ``elasticnet_train_and_recover/run.py``)."""

    lambda1_values: tuple[float, ...] = PAPER_LAMBDAS  # true λ1 grid
    lambda2_values: tuple[float, ...] = PAPER_LAMBDAS  # true λ2 grid
    seeds: tuple[int, ...] = tuple(range(10))  # one new dataset and initialisation per seed
    chunk_size: int = 36  # grid cells trained together in one job
    n_samples: int = 5000  # rows before the split
    n_features: int = 10  # columns of X
    beta_scale: float = 5.0  # β_true = beta_scale · N(0, I)
    noise_std: float = 0.5  # σ of ε
    train_fraction: float = 0.8  # share of rows in the training split
    hidden: tuple[int, ...] = (200,)  # hidden widths (ReLU)
    smooth_beta: float = 1e-3  # β of h_β, in training and in the fitted family
    lr: float = 1e-3  # Adam learning rate of training
    batch_size: int = 32  # training minibatch
    max_epochs: int = 200  # training epochs at most
    patience: int = 15  # early stopping on the last-step penalised loss of each epoch
    min_delta: float = 0.0  # improvement needed to reset the patience count
    match_weights: str = "final"  # final (authors: model after fit()) | best (lowest monitor)
    fit_methods: tuple[str, ...] = METHODS  # which estimators to run
    fit_lr: float = 1e-2  # adam fit: learning rate
    fit_max_epochs: int = 1000  # adam fit: epochs at most
    fit_patience: int = 50  # adam fit: early-stopping patience
    fit_batch_size: int = 32  # adam fit: rows per minibatch target
    fit_init: float = 1.0  # adam fit: starting λ1 = λ2
    dtype: str = "float32"  # training precision
    device: str = "auto"  # auto | cpu | cuda (global key)
    preset: str = "default"  # recorded in every row (global key)
    progress: bool = True  # tqdm bars
    wandb: dict | None = None  # W&B tracking (global key; gradmatch.tracking), never in tables

    def __post_init__(self) -> None:
        for name in ("lambda1_values", "lambda2_values", "seeds", "hidden", "fit_methods"):
            if len(getattr(self, name)) == 0:
                raise ValueError(f"elastic_net.{name} is empty; give at least one value")
        if any(v <= 0 for v in self.lambda1_values + self.lambda2_values):
            raise ValueError("elastic_net.lambda1_values/lambda2_values must be > 0 (log axes)")
        unknown = sorted(set(self.fit_methods) - set(METHODS))
        if unknown:
            raise ValueError(f"elastic_net.fit_methods: {unknown} unknown; use {list(METHODS)}")
        if self.match_weights not in ("final", "best"):
            raise ValueError(
                f"elastic_net.match_weights: {self.match_weights!r}; use 'final' or 'best'"
            )
        if self.chunk_size < 1:
            raise ValueError(f"elastic_net.chunk_size must be >= 1, got {self.chunk_size}")
        if not 0 < self.train_fraction < 1:
            raise ValueError(
                f"elastic_net.train_fraction must lie in (0, 1), got {self.train_fraction}"
            )
        n_train = int(round(self.train_fraction * self.n_samples))
        if min(self.batch_size, self.fit_batch_size) > n_train:
            raise ValueError(
                f"elastic_net: batch_size/fit_batch_size exceed the {n_train} training rows; "
                "lower them or raise n_samples"
            )

    @property
    def n_train(self) -> int:
        return int(round(self.train_fraction * self.n_samples))


def grid(settings: Settings) -> list[tuple[float, float, int]]:
    """All (λ1, λ2, seed) cells, λ1 outermost, seed innermost."""
    return list(itertools.product(settings.lambda1_values, settings.lambda2_values, settings.seeds))


def n_chunks(settings: Settings) -> int:
    """ceil(|λ1| · |λ2| · |seeds| / chunk_size)."""
    return math.ceil(len(grid(settings)) / settings.chunk_size)


def sample_dataset(settings: Settings, seed: int) -> dict[str, torch.Tensor]:
    """X, then β, then ε, then the split permutation, from one generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(int(seed))
    n, d = settings.n_samples, settings.n_features
    X = torch.randn(n, d, generator=gen)
    beta = settings.beta_scale * torch.randn(d, generator=gen)
    y = X @ beta + settings.noise_std * torch.randn(n, generator=gen)
    order = torch.randperm(n, generator=gen)
    train, test = order[: settings.n_train], order[settings.n_train :]
    return {"X_train": X[train], "y_train": y[train], "X_test": X[test], "y_test": y[test]}


def _stack_data(settings: Settings, seeds: list[int]) -> dict[str, torch.Tensor]:
    datasets = {seed: sample_dataset(settings, seed) for seed in sorted(set(seeds))}
    return {key: torch.stack([datasets[s][key] for s in seeds]) for key in datasets[seeds[0]]}


def train_chunk(
    settings: Settings, cells: list[tuple[float, float, int]], data, on_epoch=None
) -> TrainResult:
    """Train the members of ``cells`` as one batch (step 2 of the module docstring)."""
    seeds = [seed for _, _, seed in cells]
    return train_batched(
        MLPSpec(settings.n_features, settings.hidden, 1),
        seeds,
        data["X_train"],
        data["y_train"],
        loss="mse",
        optimizer=Adam(lr=settings.lr),
        epochs=settings.max_epochs,
        batch_size=settings.batch_size,
        penalty=ElasticNetPenalty(
            [c[0] for c in cells], [c[1] for c in cells], beta=settings.smooth_beta
        ),
        early_stopping=EarlyStopping(
            "train_objective_last", patience=settings.patience, min_delta=settings.min_delta
        ),
        data_seeds=[seed + ORDER_SEED_OFFSET for seed in seeds],
        device=settings.device,
        dtype=settings.dtype,
        progress=settings.progress,
        desc="elastic_net: train",
        on_epoch=on_epoch,
    )


def minibatch_targets(model: torch.nn.Module, X, y, batch_size: int, seed: int):
    """``target_batches`` for the stochastic fit: epoch e yields, for each drop-last batch b of
    the e-th ``randperm`` of a generator seeded with ``seed``, the float64 target
    −∇_θ (1/|b|) Σ_{i∈b} (f_θ̂(x_i) − y_i)², all batches of an epoch in one vmapped backward."""
    from torch.func import functional_call, grad, vmap

    gen = torch.Generator().manual_seed(int(seed))
    params = {name: p.detach() for name, p in model.named_parameters()}
    steps = X.shape[0] // batch_size

    def batch_loss(weights, xb, yb):
        return torch.mean((functional_call(model, weights, (xb,)).squeeze(-1) - yb) ** 2)

    batch_gradients = vmap(grad(batch_loss), in_dims=(None, 0, 0))

    def targets(epoch: int):
        rows = torch.randperm(X.shape[0], generator=gen)[: steps * batch_size].to(X.device)
        rows = rows.view(steps, batch_size)
        grads = batch_gradients(params, X[rows], y[rows])
        flat = torch.cat([g.reshape(steps, -1) for g in grads.values()], dim=1)
        return iter(-flat.double().cpu())

    return targets


def estimate(settings: Settings, model, X_train, y_train, seed: int) -> dict[str, float]:
    """λ̂ by every method of ``settings.fit_methods`` (step 3), with fit diagnostics."""
    family = ElasticNet(settings.smooth_beta)
    theta = flat_parameters(model)
    target = loss_gradient(model, "mse", X_train, y_train).cpu().numpy()
    row: dict[str, float] = {}
    for method in settings.fit_methods:
        kwargs = {}
        if method == "adam":
            kwargs = {
                "adam": AdamOptions(
                    lr=settings.fit_lr,
                    max_epochs=settings.fit_max_epochs,
                    patience=settings.fit_patience,
                    init={"lambda_l1": settings.fit_init, "lambda_l2": settings.fit_init},
                ),
                "target_batches": minibatch_targets(
                    model, X_train, y_train, settings.fit_batch_size, seed + MATCH_SEED_OFFSET
                ),
            }
        fit = match_gradients(family, theta, target, method=method, **kwargs)
        row[f"lambda_hat_l1_{method}"] = float(fit.params["lambda_l1"])
        row[f"lambda_hat_l2_{method}"] = float(fit.params["lambda_l2"])
        row[f"fit_residual_ratio_{method}"] = fit.residual_ratio
        row[f"fit_cosine_{method}"] = fit.cosine
        row[f"fit_r2_{method}"] = fit.r2
        if method == "adam":
            row["fit_epochs_adam"] = int(fit.epochs)
    return row


@torch.no_grad()
def _mse(model, X, y) -> float:
    return float(torch.nn.functional.mse_loss(model(X).squeeze(-1), y))


def run(settings: Settings, chunk: int = 0) -> pd.DataFrame:
    """Train chunk ``chunk`` of the grid and estimate λ̂ for each member: one row per cell."""
    if not 0 <= chunk < n_chunks(settings):
        raise ValueError(
            f"elastic_net: chunk {chunk} out of range; this grid has {n_chunks(settings)} chunks "
            f"(0..{n_chunks(settings) - 1}) at chunk_size {settings.chunk_size}"
        )
    cells = grid(settings)[chunk * settings.chunk_size : (chunk + 1) * settings.chunk_size]
    data = _stack_data(settings, [seed for _, _, seed in cells])
    labels = [f"l1={lambda1:g}_l2={lambda2:g}_seed={seed}" for lambda1, lambda2, seed in cells]
    config = {**asdict(settings), "chunk": chunk, "members": labels}
    with Tracker(settings.wandb, group="elastic_net", name=f"chunk-{chunk}", config=config) as run_:
        result = train_chunk(settings, cells, data, on_epoch=run_.member_logger(labels))
        frame = _match_members(settings, cells, data, result, chunk)
        run_.member_summary(frame.to_dict("records"), labels)
    return frame


def _match_members(settings: Settings, cells, data, result: TrainResult, chunk: int):
    """Step 3 for every member of a trained chunk: one row per cell."""
    rows = []
    members = tqdm(
        enumerate(cells),
        total=len(cells),
        desc="elastic_net: match",
        disable=not settings.progress,
        leave=False,
    )
    for k, (lambda1, lambda2, seed) in members:
        model = result.member(k, settings.match_weights)
        device = next(model.parameters()).device
        X_train, y_train = data["X_train"][k].to(device), data["y_train"][k].to(device)
        X_test, y_test = data["X_test"][k].to(device), data["y_test"][k].to(device)
        X_train, X_test = X_train.to(model[0].weight.dtype), X_test.to(model[0].weight.dtype)
        y_train, y_test = y_train.to(X_train.dtype), y_test.to(X_train.dtype)
        rows.append(
            {
                "lambda_true_l1": float(lambda1),
                "lambda_true_l2": float(lambda2),
                "seed": int(seed),
                **estimate(settings, model, X_train, y_train, seed),
                "train_mse": _mse(model, X_train, y_train),
                "test_mse": _mse(model, X_test, y_test),
                "epochs_trained": int(result.epochs_trained[k]),
                "best_epoch": int(result.best_epoch[k]),
                "matched_weights": settings.match_weights,
                "train_optimizer": "adam",
                "smooth_beta": float(settings.smooth_beta),
                "n_parameters": int(result.spec.n_parameters()),
                "chunk": int(chunk),
                "preset": settings.preset,
            }
        )
    return _typed(pd.DataFrame(rows))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed dtypes: int64 counters, float64 numbers, strings for labels."""
    for column in frame.columns:
        if column in (
            "seed",
            "epochs_trained",
            "best_epoch",
            "n_parameters",
            "chunk",
            "fit_epochs_adam",
        ):
            frame[column] = frame[column].astype("int64")
        elif column in ("matched_weights", "train_optimizer", "preset"):
            frame[column] = frame[column].astype(str)
        else:
            frame[column] = frame[column].astype("float64")
    return frame
