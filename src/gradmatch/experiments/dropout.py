"""Figure 5: the implicit L2 penalty of dropout, λ̂ of R = λΣθ² against the dropout rate.

For each architecture (depth, width), networks are trained with every dropout rate p and seed as
one batched job (a chunk), then the ridge family is matched to each trained network with dropout
off (eval mode). The stationarity condition (paper Eq. 1-3) ∇R(θ̂) = −∇L(θ̂) with
R = λ Σ_j θ_j² (all parameters, biases included), ∇R = 2λθ, gives

    λ̂ = argmin_λ (1/p) ‖2λθ̂ + ∇L(θ̂)‖²,
    λ̂_lstsq = θ̂ᵀ(−∇L) / (2θ̂ᵀθ̂),   λ̂_nnls = max(λ̂_lstsq, 0),

with L the mean cross-entropy over the whole training split, and the authors' stochastic fit
(``adam``): λ = exp(β), β₀ = 0.1·N(0, 1), Adam (lr 0.05) on the same loss with the full-data
target replaced by −∇L of one shuffled minibatch of 2048 per step, ReduceLROnPlateau (factor
0.5, patience 10) and early stopping (patience 100, ≤ 2000 epochs) on the last minibatch's loss
of each epoch. Expected (paper): λ̂ grows monotonically with p; Spearman ρ(λ̂, p) per facet is
recorded.

Model (authors' ``DeepReLUClassifier``): depth × [Linear(width), ReLU, Dropout(p)], then
Linear(width → 10); dropout follows hidden blocks 1..depth−1 only, so depth 1 has no dropout at
all (its members differ only by seed) unless ``dropout_after_last``. Training (authors' code):
SGD momentum 0.9, lr 0.05, batch 2048 shuffled, MultiStepLR ×0.1 at epochs 60/100/200, ≤ 500
epochs, early stopping on validation loss with patience 50; the final-epoch weights are matched
(the authors matched the in-memory model after ``fit()``), or the best-validation weights with
``weights: best``. Data: pixels in [0, 1] without normalisation; the training split is cut into
train/validation with ``random_split`` semantics (val_fraction 0.1, generator seed 42: 54,000 /
6,000 for MNIST). Values: paper H.4 and the authors' ``dropout_bias_estimation`` (see
shared/reference/paper-experiments.md, Figure 5).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from gradmatch.config import settings_record
from gradmatch.tracking import Tracker

DATASETS = ("digits", "mnist")
WEIGHTS = ("final", "best")
METHODS = ("lstsq", "nnls", "adam")
N_CLASSES = 10


@dataclass(frozen=True)
class Settings:
    """Every value of Figure 5; defaults are the authors' (sweep ``dropout_l2_bias.yaml``)."""

    depths: tuple[int, ...] = (1, 3, 5)  # hidden blocks
    widths: tuple[int, ...] = (128, 256, 512)  # units per hidden block
    rates: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)  # dropout p
    seeds: tuple[int, ...] = (123, 42, 666, 314, 17, 111, 325, 643, 432, 51)
    dropout_after_last: bool = False  # authors: no dropout after the last hidden block
    lr: float = 0.05  # SGD learning rate
    momentum: float = 0.9
    batch_size: int = 2048  # training minibatch (shuffled, last partial batch kept)
    milestones: tuple[int, ...] = (60, 100, 200)  # MultiStepLR epochs
    gamma: float = 0.1  # MultiStepLR factor
    max_epochs: int = 500
    patience: int = 50  # early stopping on validation loss
    val_fraction: float = 0.1  # of the training split (MNIST: 6,000 of 60,000)
    split_seed: int = 42  # generator seed of the train/validation split
    weights: str = "final"  # matched weights: final (authors) | best (validation loss)
    fit_lr: float = 0.05  # Adam learning rate of the stochastic fit
    fit_max_epochs: int = 2000
    fit_patience: int = 100
    fit_plateau_factor: float = 0.5  # ReduceLROnPlateau factor
    fit_plateau_patience: int = 10
    fit_batch_size: int = 2048  # minibatch of the −∇L targets of the stochastic fit
    fit_init_log_std: float = 0.1  # β₀ = log λ₀ ~ N(0, fit_init_log_std²)
    gradient_batch_size: int = 8192  # rows per pass when computing the full-data −∇L
    data_root: str = "data/raw/mnist"  # folder of the MNIST IDX files (dataset mnist)
    dataset: str = "mnist"  # digits | mnist (filled from the global key)
    device: str = "auto"  # auto | cpu | cuda (filled from the global key)
    preset: str = "default"  # recorded in every row (filled from the global key)
    wandb: dict | None = None  # W&B tracking (global key; gradmatch.tracking), never in tables

    def __post_init__(self) -> None:
        checks = {
            "depths": len(self.depths) > 0 and min(self.depths) >= 1,
            "widths": len(self.widths) > 0 and min(self.widths) >= 1,
            "rates": len(self.rates) > 0 and all(0.0 <= r < 1.0 for r in self.rates),
            "seeds": len(self.seeds) > 0 and len(set(self.seeds)) == len(self.seeds),
            "batch_size": self.batch_size >= 1,
            "momentum": 0.0 <= self.momentum < 1.0,
            "lr": self.lr > 0 and self.fit_lr > 0,
            "max_epochs": self.max_epochs >= 1,
            "patience": self.patience >= 1,
            "val_fraction": 0.0 < self.val_fraction < 1.0,
            "weights": self.weights in WEIGHTS,
            "dataset": self.dataset in DATASETS,
            "fit_max_epochs": self.fit_max_epochs >= 1,
            "fit_batch_size": self.fit_batch_size >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"dropout: invalid setting(s) {bad}; need depths/widths >= 1, rates in [0, 1), "
                f"distinct seeds, sizes and epochs >= 1, lr > 0, momentum and val_fraction in "
                f"[0, 1) and (0, 1), weights in "
                f"{list(WEIGHTS)}, dataset in {list(DATASETS)}"
            )


# ------------------------------------------------------------------ chunks and data


def n_chunks(settings: Settings) -> int:
    """One chunk per (depth, width)."""
    return len(settings.depths) * len(settings.widths)


def chunk_shape(settings: Settings, chunk: int) -> tuple[int, int]:
    """(depth, width) of ``chunk``, depth-major: chunk = i_depth · len(widths) + i_width."""
    if not 0 <= chunk < n_chunks(settings):
        raise ValueError(f"dropout: chunk {chunk} out of range; there are {n_chunks(settings)}")
    return list(itertools.product(settings.depths, settings.widths))[chunk]


def load_data(settings: Settings) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train, validation (a random_split of the training split) and test tensors."""
    from gradmatch.data.images import load_images, train_val_indices

    X, y = load_images(settings.dataset, "train", root=settings.data_root)
    train, val = train_val_indices(len(y), settings.val_fraction, settings.split_seed)
    return {
        "train": (X[train], y[train]),
        "val": (X[val], y[val]),
        "test": load_images(settings.dataset, "test", root=settings.data_root),
    }


def members(settings: Settings) -> pd.DataFrame:
    """The members of one chunk: every (rate, seed), rate-major."""
    grid = list(itertools.product(settings.rates, settings.seeds))
    return pd.DataFrame(
        {
            "member": np.arange(len(grid)),
            "dropout_rate": [float(rate) for rate, _ in grid],
            "seed": np.array([seed for _, seed in grid], dtype=np.int64),
        }
    )


# ------------------------------------------------------------------ training


def train_chunk(
    settings: Settings, depth: int, width: int, data: dict, grid: pd.DataFrame, on_epoch=None
):
    """Train every member of one (depth, width) at once; returns the trainer's TrainResult.

    ``on_epoch(epoch, metrics)`` is passed to the trainer (per-member metrics, e.g. to W&B).
    """
    from gradmatch.train import SGD, EarlyStopping, MLPSpec, train_batched

    X, y = data["train"]
    spec = MLPSpec(
        in_features=X.shape[1],
        hidden=(width,) * depth,
        out_features=N_CLASSES,
        activation="relu",
        dropout_after_last=settings.dropout_after_last,
    )
    optimizer = SGD(
        lr=settings.lr,
        momentum=settings.momentum,
        milestones=tuple(settings.milestones),
        gamma=settings.gamma,
    )
    return train_batched(
        spec,
        seeds=grid["seed"].tolist(),
        X=X,
        y=y,
        loss="cross_entropy",
        optimizer=optimizer,
        epochs=settings.max_epochs,
        batch_size=settings.batch_size,
        drop_last=False,
        dropout=grid["dropout_rate"].tolist(),
        early_stopping=EarlyStopping("val_loss", patience=settings.patience),
        eval_data={"val": data["val"]},
        device=settings.device,
        desc=f"dropout depth {depth} width {width}",
        on_epoch=on_epoch,
    )


# ------------------------------------------------------------------ matching


def minibatch_targets(model, X: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int):
    """``target_batches`` for the stochastic fit: per epoch, −∇L of each shuffled minibatch.

    Minibatches follow a DataLoader with shuffle and a generator seeded with ``seed`` (last
    partial batch kept). When one batch holds all rows, every epoch has the same single target,
    computed once.
    """
    from gradmatch.core.autodiff import loss_gradient

    n = len(y)
    if batch_size >= n:
        full = loss_gradient(model, "cross_entropy", X, y)
        return lambda epoch: [full]
    generator = torch.Generator().manual_seed(int(seed))

    def epoch_targets(epoch: int):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            yield loss_gradient(model, "cross_entropy", X[rows], y[rows])

    return epoch_targets


def match_member(settings: Settings, model, X: torch.Tensor, y: torch.Tensor, seed: int) -> dict:
    """λ̂ of the ridge family for one network (eval mode), by lstsq, nnls and the Adam fit."""
    from gradmatch.core.estimators import AdamOptions, match_gradients
    from gradmatch.core.autodiff import flat_parameters, loss_gradient
    from gradmatch.core.regularizers import Ridge

    model.eval()
    theta = flat_parameters(model)
    target = loss_gradient(model, "cross_entropy", X, y, batch_size=settings.gradient_batch_size)
    target = target.cpu().numpy()
    row = {
        "n_parameters": theta.size,
        "theta_sq_norm": float(theta @ theta),
        "loss_grad_norm": float(np.linalg.norm(target)),
    }
    options = AdamOptions(
        lr=settings.fit_lr,
        max_epochs=settings.fit_max_epochs,
        patience=settings.fit_patience,
        plateau_factor=settings.fit_plateau_factor,
        plateau_patience=settings.fit_plateau_patience,
        init_log_std=settings.fit_init_log_std,
        seed=int(seed),
        device=str(theta_device(model)),
    )
    batches = minibatch_targets(model, X, y, settings.fit_batch_size, seed)
    fits = {
        "lstsq": match_gradients(Ridge(), theta, target, method="lstsq"),
        "nnls": match_gradients(Ridge(), theta, target, method="nnls"),
        "adam": match_gradients(
            Ridge(), theta, target, method="adam", adam=options, target_batches=batches
        ),
    }
    for method, fit in fits.items():
        row[f"lambda_hat_{method}"] = float(fit.params["lambda"])
        row[f"fit_loss_{method}"] = fit.loss
        row[f"fit_residual_ratio_{method}"] = fit.residual_ratio
        row[f"fit_cosine_{method}"] = fit.cosine
        row[f"fit_r2_{method}"] = fit.r2
    steps_per_epoch = -(-len(y) // settings.fit_batch_size)
    row["fit_epochs_adam"] = fits["adam"].epochs
    row["fit_steps_adam"] = fits["adam"].epochs * steps_per_epoch
    row["fit_loss_adam_last_batch"] = float(fits["adam"].history[-1])
    return row


def theta_device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def evaluate(model, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` in eval mode."""
    model.eval()
    device = theta_device(model)
    logits = model(X.to(device))
    labels = y.to(device)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    return float(loss), float((logits.argmax(1) == labels).double().mean())


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ: the Pearson correlation of average ranks; NaN when either side is constant."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


# ------------------------------------------------------------------ one chunk


def member_rows(settings: Settings, result, data: dict, grid: pd.DataFrame) -> pd.DataFrame:
    """One row per member: training record, evaluation and the three fits."""
    from tqdm.auto import tqdm

    X, y = data["train"]
    rows = []
    for k in tqdm(range(len(grid)), desc="match ridge", leave=False):
        model = result.member(k, settings.weights)
        record = {
            "epochs_trained": int(result.epochs_trained[k]),
            "best_epoch": int(result.best_epoch[k]),
            "stopped_early": bool(result.epochs_trained[k] < settings.max_epochs),
        }
        for split in ("train", "val", "test"):
            loss, acc = evaluate(model, *data[split])
            record[f"{split}_loss"], record[f"{split}_acc"] = loss, acc
        record.update(match_member(settings, model, X, y, int(grid["seed"][k])))
        rows.append(record)
    return pd.DataFrame(rows)


def run(settings: Settings, chunk: int) -> pd.DataFrame:
    """Train and match the members of chunk ``chunk`` = one (depth, width); one row per member.

    With ``wandb`` tracking on, the chunk is one W&B run (group ``dropout``): the settings as
    config, every member's per-epoch training metrics as ``p=<rate>_seed=<seed>/<metric>``, and
    each member's estimates and losses in the summary. The table does not depend on it.
    """
    depth, width = chunk_shape(settings, chunk)
    data = load_data(settings)
    grid = members(settings)
    labels = [
        f"p={rate:g}_seed={seed}"
        for rate, seed in zip(grid["dropout_rate"], grid["seed"], strict=True)
    ]
    config = {**asdict(settings), "chunk": chunk, "depth": depth, "width": width, "members": labels}
    with Tracker(settings.wandb, group="dropout", name=f"chunk-{chunk}", config=config) as tracker:
        result = train_chunk(settings, depth, width, data, grid, tracker.member_logger(labels))
        fitted = member_rows(settings, result, data, grid)
        tracker.member_summary(fitted.to_dict("records"), labels)
    frame = pd.concat([grid, fitted], axis=1)
    frame.insert(0, "width", width)
    frame.insert(0, "depth", depth)
    frame.insert(0, "preset", settings.preset)
    frame.insert(0, "dataset", settings.dataset)
    frame["has_dropout"] = (depth > 1 or settings.dropout_after_last) & (frame["dropout_rate"] > 0)
    frame["weights_matched"] = settings.weights
    frame["n_train"] = len(data["train"][1])
    frame["n_val"] = len(data["val"][1])
    for method in METHODS:
        values = frame[f"lambda_hat_{method}"].to_numpy()
        frame[f"spearman_rate_lambda_{method}"] = spearman(frame["dropout_rate"], values)
    frame["settings"] = settings_record(settings)
    return frame
