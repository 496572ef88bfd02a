"""Figure 6: implicit gradient regularization of SGD, λ̂ (Eq. 6) against Barrett & Dherin's ηp/4.

Theory (Barrett & Dherin 2022). Gradient descent with step η follows, to O(η²) per step, the
flow of the modified loss L̃ = L + (η/4)‖∇L‖². With the regularizer family
R(θ, λ) = (λ/p)‖∇L(θ)‖², ∇R = (2λ/p)·H(θ)∇L(θ), the implicit coefficient is λ_theory = ηp/4.

Estimator (paper Eq. 6, the trajectory form Eq. 4 with a flow reference). At a parameter vector θ
with full-batch gradient g = ∇L(θ) and Hessian–gradient product Hg (double backpropagation),

    Δθ_GD = −ηg,   Δθ_flow = φ_η(θ) − θ   (RK4 of dθ/dt = −∇L over time η, ``rk4_substeps``),
    r = (Δθ_flow − Δθ_GD)/η  ≈ (η/2)·Hg,

and with (Hg_t, r_t) stacked over ``probe_steps`` GD probe steps θ_{t+1} = θ_t − ηg_t,

    λ̂ = (p/2)·⟨Hg, r⟩/⟨Hg, Hg⟩,    residual ratio = ‖r − (2λ̂/p)Hg‖/‖r‖.

r ≈ (η/2)Hg is the first term of a series in ηh (h a Hessian eigenvalue): on a quadratic the
component of r along an eigenvector is g·(1 − (1 − e^{−ηh})/(ηh)) against (ηh/2)·g, a ratio of
0.74 at ηh = 1 and 0.57 at ηh = 2. Where training has raised the sharpness towards 2/η (edge of
stability), λ̂/λ_theory below 1 is therefore expected from the truncation, not from numerics.

Protocol (paper H.5; the authors' ``barrett_igr_figure2``, newest version). Tanh MLP with
``depth`` hidden layers of width w, no hidden biases, an output bias (p = 4w² + (d + 10)w + 10 at
depth 5); plain minibatch SGD θ ← θ − η∇L_B (batch 128, shuffled with a generator seeded
seed + 17, 50 epochs, cross-entropy, float32, torch seed = seed). Data: one permutation (seed
``split_seed``) of the train split gives ``n_train`` training and the next ``n_val`` validation
images; ``n_test`` test images come from a permutation (seed ``test_seed``) of the test split.
Pixels are normalised (x − μ)/σ with MNIST's μ = 0.1307, σ = 0.3081; for ``digits`` μ and σ are
the pixel mean and standard deviation of the whole digits train split (computed, not tuned).
Checkpoint: among epochs 1..E with train accuracy ≥ ``min_train_accuracy`` the one with the best
validation accuracy (first on ties); a run that never reaches the threshold is kept in the table
with ``excluded = True`` and no probe. Probe on ``probe_size`` training images (permutation seed
seed + 991 of the training subset), η_probe = η.

All step sizes of one width train together as K stacked members with per-member step sizes; a
chunk is one width. The probe runs in ``probe_dtype`` (float64 by default: r is a difference of
two O(η) displacements whose O(η²) gap falls to float32 rounding at η = 5e-4; "float32" is the
authors' choice).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from gradmatch.core import flows
from gradmatch.tracking import Tracker
from gradmatch.train.models import MLPSpec
from gradmatch.train.optim import SGD
from gradmatch.train.trainer import TrainResult, train_batched

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Settings:
    """Every value of Figure 6; defaults are the paper's (H.5 and the authors' Snakemake rule)."""

    widths: tuple[int, ...] = (50, 100, 200, 400, 800, 1600)  # hidden width w; one chunk each
    learning_rates: tuple[float, ...] = (5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5)  # η
    depth: int = 5  # hidden layers
    activation: str = "tanh"
    seed: int = 0  # torch seed of the initialisation; loader and probe seeds derive from it
    batch_size: int = 128
    epochs: int = 50
    loader_seed_offset: int = 17  # shuffling generator seed = seed + offset
    n_train: int = 10_000
    n_val: int = 1_000
    n_test: int = 5_000
    split_seed: int = 0  # permutation of the train split (train, then validation)
    test_seed: int = 1  # permutation of the test split
    min_train_accuracy: float = 0.90  # checkpoint eligibility threshold (Barrett: 1.0)
    probe_size: int = 2048  # training images of the full-batch probe (capped by n_train)
    probe_seed_offset: int = 991  # probe subset permutation seed = seed + offset
    probe_steps: int = 5
    rk4_substeps: int = 10
    probe_dtype: str = "float64"
    dataset: str = "mnist"  # global key: mnist | digits
    data_root: str = "data/raw/mnist"
    device: str = "auto"  # global key: auto | cpu | cuda
    preset: str = "default"  # global key, recorded in every row
    wandb: dict | None = None  # W&B tracking (global key; gradmatch.tracking), never in tables

    def __post_init__(self) -> None:
        checks = {
            "widths": len(self.widths) > 0 and min(self.widths) >= 1,
            "learning_rates": len(self.learning_rates) > 0 and min(self.learning_rates) > 0,
            "depth": self.depth >= 1,
            "activation": self.activation in ("tanh", "relu"),
            "batch_size": self.batch_size >= 1,
            "epochs": self.epochs >= 1,
            "n_train": self.n_train >= 1,
            "n_val": self.n_val >= 1,
            "n_test": self.n_test >= 1,
            "min_train_accuracy": 0.0 <= self.min_train_accuracy <= 1.0,
            "probe_size": self.probe_size >= 1,
            "probe_steps": self.probe_steps >= 1,
            "rk4_substeps": self.rk4_substeps >= 1,
            "probe_dtype": self.probe_dtype in DTYPES,
            "dataset": self.dataset in ("mnist", "digits"),
            "device": self.device in ("auto", "cpu", "cuda"),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"igr: invalid setting(s) {bad}; need non-empty widths >= 1 and step sizes > 0, "
                "counts >= 1, min_train_accuracy in [0, 1], activation tanh | relu, "
                f"probe_dtype in {sorted(DTYPES)}, dataset mnist | digits, device auto|cpu|cuda"
            )


def normalization(dataset: str, root: str) -> tuple[float, float]:
    """(μ, σ): MNIST's constants, or the pixel mean and std of the digits train split."""
    if dataset == "mnist":
        return MNIST_MEAN, MNIST_STD
    from gradmatch.data import load_images

    x, _ = load_images(dataset, "train", root)
    return float(x.double().mean()), float(x.double().std())


def load_normalized(dataset: str, split: str, root: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened images of ``split`` normalised as (x − μ)/σ (see :func:`normalization`)."""
    from gradmatch.data import load_images

    x, y = load_images(dataset, split, root)
    mean, std = normalization(dataset, root)
    return (x - mean) / std, y


def _permutation(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def split_data(settings: Settings) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train, val (disjoint, one permutation), test (another) and probe subsets (CPU tensors)."""
    x, y = load_normalized(settings.dataset, "train", settings.data_root)
    x_test, y_test = load_normalized(settings.dataset, "test", settings.data_root)
    need = settings.n_train + settings.n_val
    if need > len(x):
        raise ValueError(
            f"igr: n_train + n_val = {need} exceeds the {len(x)} training images of "
            f"{settings.dataset}; lower igr.n_train or igr.n_val in the config"
        )
    if settings.n_test > len(x_test):
        raise ValueError(
            f"igr: n_test = {settings.n_test} exceeds the {len(x_test)} test images of "
            f"{settings.dataset}; lower igr.n_test in the config"
        )
    order = _permutation(len(x), settings.split_seed)
    train, val = order[: settings.n_train], order[settings.n_train : need]
    test = _permutation(len(x_test), settings.test_seed)[: settings.n_test]
    probe_n = min(settings.probe_size, settings.n_train)
    probe = train[_permutation(settings.n_train, settings.seed + settings.probe_seed_offset)]
    probe = probe[:probe_n]
    return {
        "train": (x[train], y[train]),
        "val": (x[val], y[val]),
        "test": (x_test[test], y_test[test]),
        "probe": (x[probe], y[probe]),
    }


def select_checkpoint(
    train_acc: np.ndarray, val_acc: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per member, the epoch with the best validation accuracy among train accuracy ≥ threshold.

    ``train_acc`` and ``val_acc`` have shape (epochs, K). Returns (epoch index per member, −1
    where no epoch is eligible; a boolean ``excluded`` mask). Ties go to the earliest epoch.
    """
    train_acc, val_acc = np.asarray(train_acc, float), np.asarray(val_acc, float)
    if train_acc.shape != val_acc.shape or train_acc.ndim != 2:
        raise ValueError(
            f"select_checkpoint: train_acc {train_acc.shape} and val_acc {val_acc.shape} must "
            "both have shape (epochs, members)"
        )
    eligible = train_acc >= threshold
    masked = np.where(eligible, val_acc, -np.inf)
    chosen = np.argmax(masked, axis=0)
    excluded = ~eligible.any(axis=0)
    return np.where(excluded, -1, chosen), excluded


def model_spec(settings: Settings, width: int, n_features: int) -> MLPSpec:
    """``depth`` hidden tanh layers of ``width`` without biases, then Linear(width → 10) + bias."""
    return MLPSpec(
        n_features, (width,) * settings.depth, 10, settings.activation, hidden_bias=False
    )


def train_width(settings: Settings, width: int, data: dict, on_epoch=None) -> TrainResult:
    """All step sizes of one width as stacked members (same seed, per-member η), plain SGD.

    The best state of a member maximises the validation accuracy among epochs whose accuracy on
    the whole training subset is ≥ ``min_train_accuracy`` (other epochs score NaN, ineligible).
    ``on_epoch(epoch, metrics)`` is passed to the trainer (per-member metrics, e.g. to W&B).
    """
    k = len(settings.learning_rates)
    x_train, y_train = data["train"]
    threshold = settings.min_train_accuracy

    def select(metrics):
        eligible = metrics["train_eval_acc"] >= threshold
        return torch.where(eligible, metrics["val_acc"], torch.nan)

    return train_batched(
        model_spec(settings, width, x_train.shape[1]),
        seeds=[settings.seed] * k,
        X=x_train,
        y=y_train,
        loss="cross_entropy",
        optimizer=SGD(lr=list(settings.learning_rates)),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        drop_last=False,
        eval_data={"train_eval": data["train"], "val": data["val"], "test": data["test"]},
        select=select,
        data_seeds=[settings.seed + settings.loader_seed_offset] * k,
        device=settings.device,
        dtype="float32",
        desc=f"igr width {width}",
        on_epoch=on_epoch,
    )


def _accuracy_matrix(history: pd.DataFrame, column: str, k: int, epochs: int) -> np.ndarray:
    """(epochs, K) of one history metric; NaN where a member did not train that epoch."""
    out = np.full((epochs, k), np.nan)
    out[history["epoch"].to_numpy(), history["member"].to_numpy()] = history[column].to_numpy()
    return out


def probe_model(
    settings: Settings, model, data: tuple, lr: float, loss: str = "cross_entropy"
) -> flows.IGRFit:
    """Eq. 6 at ``model``'s weights on (x, y) = ``data`` in ``probe_dtype``, η_probe = ``lr``.

    R_IG = ‖∇L‖²/p at the first probe point is ``grad_norm_squared`` of the result.
    """
    dtype = DTYPES[settings.probe_dtype]
    model = model.to(dtype)
    device = next(model.parameters()).device
    x, y = data
    return flows.estimate_igr(
        model,
        loss,
        x.to(device=device, dtype=dtype),
        y.to(device),
        lr,
        probe_steps=settings.probe_steps,
        substeps=settings.rk4_substeps,
    )


def probe_member(settings: Settings, result: TrainResult, k: int, data: dict) -> flows.IGRFit:
    """:func:`probe_model` at member k's selected state on the probe subset."""
    model = result.member(k, "best")
    return probe_model(settings, model, data["probe"], settings.learning_rates[k])


def member_rows(settings: Settings, width: int, result: TrainResult, data: dict) -> pd.DataFrame:
    """One row per step size: checkpoint, exclusion flag, accuracies, R_IG, λ̂, ηp/4."""
    k, history = len(settings.learning_rates), result.history
    matrices = {
        name: _accuracy_matrix(history, f"{name}_acc", k, settings.epochs)
        for name in ("train_eval", "val", "test")
    }
    chosen, excluded = select_checkpoint(
        np.nan_to_num(matrices["train_eval"], nan=-1.0),
        matrices["val"],
        settings.min_train_accuracy,
    )
    if not np.array_equal(np.where(excluded, -1, chosen), result.best_epoch):
        raise RuntimeError(
            f"igr: trainer best epochs {result.best_epoch.tolist()} differ from the selection "
            f"rule {chosen.tolist()}; gradmatch.train.train_batched's select contract changed"
        )
    rows = []
    for member, lr in enumerate(settings.learning_rates):
        row = _base_row(settings, width, result.spec.n_parameters(), member, lr, matrices)
        row.update(_checkpoint_columns(matrices, chosen[member], excluded[member], member))
        row.update(_probe_columns(settings, result, member, data, excluded[member]))
        rows.append(row)
    return pd.DataFrame(rows)


def _base_row(settings, width, p, member, lr, matrices) -> dict:
    return {
        "preset": settings.preset,
        "dataset": settings.dataset,
        "seed": settings.seed,
        "width": width,
        "depth": settings.depth,
        "n_params": p,
        "lr": float(lr),
        "epochs": settings.epochs,
        "min_train_accuracy": settings.min_train_accuracy,
        "max_train_accuracy": float(np.nanmax(matrices["train_eval"][:, member])),
        "final_train_accuracy": float(matrices["train_eval"][-1, member]),
    }


def _checkpoint_columns(matrices, epoch, excluded, member) -> dict:
    if excluded:
        return {
            "excluded": True,
            "exclusion_reason": "train accuracy never reached min_train_accuracy",
            "selected_epoch": -1,
            "train_accuracy": np.nan,
            "val_accuracy": np.nan,
            "test_accuracy": np.nan,
        }
    return {
        "excluded": False,
        "exclusion_reason": "",
        "selected_epoch": int(epoch) + 1,
        "train_accuracy": float(matrices["train_eval"][epoch, member]),
        "val_accuracy": float(matrices["val"][epoch, member]),
        "test_accuracy": float(matrices["test"][epoch, member]),
    }


def _probe_columns(settings, result, member, data, excluded) -> dict:
    lr, p = settings.learning_rates[member], result.spec.n_parameters()
    columns = {
        "probe_size": len(data["probe"][0]),
        "probe_steps": settings.probe_steps,
        "rk4_substeps": settings.rk4_substeps,
        "probe_dtype": settings.probe_dtype,
        "lambda_theory": lr * p / 4.0,
    }
    if excluded:
        return {
            **columns,
            "r_ig": np.nan,
            "lambda_hat": np.nan,
            "lambda_ratio": np.nan,
            "residual_ratio": np.nan,
        }
    fit = probe_member(settings, result, member, data)
    return {
        **columns,
        "r_ig": fit.grad_norm_squared,
        "lambda_hat": fit.lambda_hat,
        "lambda_ratio": fit.lambda_hat / fit.lambda_theory,
        "residual_ratio": fit.residual_ratio,
    }


def epoch_rows(settings: Settings, width: int, result: TrainResult) -> pd.DataFrame:
    """The training history: one row per (step size, epoch) with accuracies and losses."""
    history = result.history
    lrs = np.asarray(settings.learning_rates, dtype=float)
    table = pd.DataFrame(
        {
            "preset": settings.preset,
            "dataset": settings.dataset,
            "seed": settings.seed,
            "width": width,
            "lr": lrs[history["member"].to_numpy()],
            "epoch": history["epoch"].to_numpy() + 1,
        }
    )
    renames = {
        "train_loss": "train_loss_running",
        "train_eval_loss": "train_loss",
        "train_eval_acc": "train_accuracy",
        "val_loss": "val_loss",
        "val_acc": "val_accuracy",
        "test_loss": "test_loss",
        "test_acc": "test_accuracy",
    }
    for source, target in renames.items():
        table[target] = history[source].to_numpy()
    return table


def n_chunks(settings: Settings) -> int:
    """One chunk per width."""
    return len(settings.widths)


def run(settings: Settings, chunk: int) -> dict[str, pd.DataFrame]:
    """Train every step size of width ``widths[chunk]``, select, probe; tables runs and epochs.

    With ``wandb`` tracking on, the chunk is one W&B run (group ``igr``): the settings as config,
    every step size's per-epoch metrics as ``lr=<η>/<metric>``, and each run's row (λ̂, ηp/4,
    R_IG, accuracies, exclusion) in the summary. The tables do not depend on it.
    """
    if not 0 <= chunk < n_chunks(settings):
        raise ValueError(
            f"igr: chunk {chunk} out of range; there are {n_chunks(settings)} (one per width "
            f"in igr.widths = {list(settings.widths)})"
        )
    width = settings.widths[chunk]
    data = split_data(settings)
    labels = [f"lr={lr:g}" for lr in settings.learning_rates]
    config = {**asdict(settings), "chunk": chunk, "width": width, "members": labels}
    with Tracker(settings.wandb, group="igr", name=f"chunk-{chunk}", config=config) as tracker:
        torch.manual_seed(settings.seed)
        result = train_width(settings, width, data, tracker.member_logger(labels))
        runs = member_rows(settings, width, result, data)
        tracker.member_summary(runs.to_dict("records"), labels)
    return {"runs": runs, "epochs": epoch_rows(settings, width, result)}
