"""Figure 5: the implicit L2 penalty of dropout, λ̂ of R = λΣθ² against the dropout rate.

For each architecture (depth, width), networks are trained with every dropout rate p and seed as
one batched job (a chunk), then the ridge family is matched to each trained network with dropout
off (eval mode). The stationarity condition (paper Eq. 1-3) ∇R(θ̂) = −∇L(θ̂) with
R = λ Σ_j θ_j² (all parameters, biases included), ∇R = 2λθ, gives

    λ̂ = argmin_λ (1/p) ‖2λθ̂ + ∇L(θ̂)‖²,
    λ̂_lstsq = θ̂ᵀ(−∇L) / (2θ̂ᵀθ̂),   λ̂_nnls = max(λ̂_lstsq, 0),

with L the mean cross-entropy over the whole training split, and the authors' stochastic fit
(``adam``, settings ``adam_fit``): λ = exp(β), β₀ = 0.1·N(0, 1), Adam (lr 0.05) on the same
loss with the full-data target replaced by −∇L of one shuffled minibatch of 2048 per step (last
partial batch kept; :func:`gradmatch.train.matching.minibatch_targets`), ReduceLROnPlateau
(factor 0.5, patience 10) and early stopping (patience 100, ≤ 2000 epochs) on the last
minibatch's loss of each epoch. Expected (paper): λ̂ grows monotonically with p; Spearman
ρ(λ̂, p) per facet is recorded.

Model (authors' ``DeepReLUClassifier``): depth × [Linear(width), ReLU, Dropout(p)], then
Linear(width → 10); dropout follows hidden blocks 1..depth−1 only, so depth 1 has no dropout at
all (its members differ only by seed) unless ``dropout_after_last``. Training (authors' code):
SGD momentum 0.9, lr 0.05, batch 2048 shuffled, MultiStepLR ×0.1 at epochs 60/100/200, ≤ 500
epochs, early stopping on validation loss with patience 50 (``early_stopping``); the
final-epoch weights are matched (the authors matched the in-memory model after ``fit()``), or
the best-validation weights with ``match_weights: best``. Data: pixels in [0, 1] without
normalisation; the training split is cut into train/validation with ``random_split`` semantics
(val_fraction 0.1, generator seed 42: 54,000 / 6,000 for MNIST). Values: paper H.4 and the
authors' ``dropout_bias_estimation`` (see shared/reference/paper-experiments.md, Figure 5).
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gradmatch import settings as base
from gradmatch._lazy import lazy_import
from gradmatch.config import settings_record
from gradmatch.core.estimators import match_gradients
from gradmatch.core.regularizers import Ridge
from gradmatch.core.stats import spearman
from gradmatch.progress import progress_bar
from gradmatch.tables import Table, columns
from gradmatch.tracking import Tracker

# torch-using modules are imported inside the functions that need them (module level stays
# torch-free); ``torch`` itself is lazy
torch = lazy_import("torch")

METHODS = ("lstsq", "nnls", "adam")
N_CLASSES = 10
CONVERGED_EXCESS = 0.01  # the Adam fit converged: its objective within 1 % of the exact minimum


def _fit_columns(method: str) -> tuple:
    fit = f"fit of method {method}"
    return columns(
        (f"lambda_hat_{method}", "float64", f"λ̂ of R = λΣθ² ({fit})"),
        (f"fit_loss_{method}", "float64", f"(1/p)‖2λ̂θ̂ + ∇L‖² ({fit})"),
        (f"fit_residual_ratio_{method}", "float64", f"‖∇R + ∇L‖ / ‖∇L‖ ({fit})"),
        (f"fit_cosine_{method}", "float64", f"cos(∇R, −∇L) ({fit})"),
        (f"fit_r2_{method}", "float64", f"cosine² ({fit})"),
    )


TABLES = {
    "members": Table(
        columns(
            ("dataset", "str", "digits | mnist"),
            ("preset", "str", "scale preset"),
            ("depth", "int64", "hidden blocks"),
            ("width", "int64", "units per hidden block"),
            ("member", "int64", "index of the member in its chunk (rate-major)"),
            ("dropout_rate", "float64", "dropout probability p"),
            ("seed", "int64", "seed of the initialisation, data order and dropout masks"),
            ("epochs_trained", "int64", "epochs until early stopping", "epochs"),
            ("best_epoch", "int64", "epoch (0-based) of the lowest validation loss", "epochs"),
            ("stopped_early", "bool", "early stopping fired before early_stopping.max_epochs"),
            ("train_loss", "float64", "mean cross-entropy on the training split, eval mode"),
            ("train_acc", "float64", "accuracy on the training split, eval mode"),
            ("val_loss", "float64", "mean cross-entropy on the validation split, eval mode"),
            ("val_acc", "float64", "accuracy on the validation split, eval mode"),
            ("test_loss", "float64", "mean cross-entropy on the test split, eval mode"),
            ("test_acc", "float64", "accuracy on the test split, eval mode"),
            ("n_params", "int64", "number of network parameters p (biases included)"),
            ("theta_sq_norm", "float64", "θ̂ᵀθ̂ of the matched weights"),
            ("loss_grad_norm", "float64", "‖∇L(θ̂)‖ over the training split"),
        )
        + sum((_fit_columns(method) for method in METHODS), ())
        + columns(
            ("fit_epochs_adam", "int64", "epochs the Adam fit ran", "epochs"),
            ("fit_steps_adam", "int64", "Adam steps: epochs × minibatches per epoch", "steps"),
            ("fit_loss_adam_last_batch", "float64", "fit loss of the Adam fit's last minibatch"),
            ("fit_lambda_start_adam", "float64", "λ₀ = exp(β₀), the Adam fit's starting λ"),
            (
                "fit_log_distance_adam",
                "float64",
                "|log λ̂_adam − log λ₀|, the distance the Adam fit travelled in log λ",
            ),
            (
                "fit_loss_excess_adam",
                "float64",
                "fit_loss_adam / fit_loss_lstsq − 1: the Adam fit's full-data objective above "
                "the exact minimum of the same objective (relative)",
            ),
            (
                "adam_converged",
                "bool",
                f"fit_loss_excess_adam ≤ {CONVERGED_EXCESS:g}: the Adam fit reached the "
                "minimum of its objective",
            ),
            ("has_dropout", "bool", "the member has a dropout layer with p > 0"),
            ("matched_weights", "str", "final | best: the weights θ̂ matched"),
            ("n_train", "int64", "rows of the training split (after the validation cut)"),
            ("n_val", "int64", "rows of the validation split"),
        )
        + columns(
            *(
                (
                    f"spearman_rate_lambda_{method}",
                    "float64",
                    f"Spearman ρ(p, λ̂_{method}) over the chunk's members (NaN if constant)",
                )
                for method in METHODS
            )
        )
        + columns(("settings", "str", "the analysis settings as canonical JSON")),
        key=("depth", "width", "dropout_rate", "seed"),
        doc="one row per trained network: training record, evaluation and the three fits",
    )
}
# runtime: the least minutes a job asks; its rule asks max(this, margin × the cost projection)
# × attempt (gradmatch.cost.runtime_minutes)
RESOURCES = base.Resources(gpu=1, threads=1, runtime=15, mem_mb=16000)

Rate = Annotated[float, Field(ge=0, lt=1)]
Positive = Annotated[int, Field(ge=1)]


class Settings(base.Settings):
    """Every value of Figure 5; defaults are the authors' (sweep ``dropout_l2_bias.yaml``)."""

    depths: tuple[Positive, ...] = Field(
        (1, 3, 5), min_length=1, description="hidden blocks (paper: 1, 3, 5)"
    )
    widths: tuple[Positive, ...] = Field(
        (128, 256, 512), min_length=1, description="units per hidden block (paper: 128, 256, 512)"
    )
    rates: tuple[Rate, ...] = Field(
        (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5),
        min_length=1,
        description="dropout rates p in [0, 1) (paper: 0 … 0.5, eight values)",
    )
    seeds: tuple[int, ...] = Field(
        (123, 42, 666, 314, 17, 111, 325, 643, 432, 51),
        min_length=1,
        description="distinct seeds, one network per (rate, seed) (paper: the authors' 10)",
    )
    dropout_after_last: bool = Field(
        False,
        description="dropout after the last hidden block too (paper: false, the authors' "
        "DeepReLUClassifier)",
    )
    lr: float = Field(0.05, gt=0, description="SGD learning rate (paper: 0.05)")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (paper: 0.9)")
    batch_size: int = Field(
        2048, ge=1, description="training minibatch, shuffled, last partial kept (paper: 2048)"
    )
    milestones: tuple[Positive, ...] = Field(
        (60, 100, 200), description="MultiStepLR epochs (paper: 60, 100, 200)"
    )
    gamma: float = Field(0.1, gt=0, description="MultiStepLR factor (paper: 0.1)")
    early_stopping: base.EarlyStopping = Field(
        base.EarlyStopping(max_epochs=500, patience=50),
        description="training stops on the validation loss (paper: ≤ 500 epochs, patience 50)",
    )
    val_fraction: float = Field(
        0.1, gt=0, lt=1, description="validation share of the training split (paper: 0.1)"
    )
    split_seed: int = Field(
        42, description="generator seed of the train/validation split (paper: 42)"
    )
    match_weights: Literal["final", "best"] = Field(
        "final",
        description="weights matched: final (the model after training) | best (lowest "
        "validation loss) (paper: final)",
    )
    adam_fit: base.AdamFit = Field(
        base.AdamFit(
            lr=0.05,
            max_epochs=2000,
            patience=100,
            plateau_factor=0.5,
            plateau_patience=10,
            init_log_std=0.1,
            batch_size=2048,
        ),
        description="the authors' Adam fit; batch_size = rows per minibatch target (paper: lr "
        "0.05, ≤ 2000 epochs, patience 100, plateau 0.5/10, β₀ ~ 0.1·N(0, 1), batch 2048)",
    )
    gradient_batch_size: int = Field(
        8192, ge=1, description="rows per pass when computing the full-data −∇L"
    )
    dataset: base.Dataset
    mnist_dir: base.MnistDir
    device: base.Device
    preset: base.Preset
    wandb: base.Wandb = base.Wandb()

    @model_validator(mode="after")
    def _checks(self):
        for key in ("depths", "widths", "rates", "seeds"):
            base.distinct(key, getattr(self, key))
        rows = base.DATASET_ROWS[self.dataset]["train"]
        n_val = int(round(self.val_fraction * rows))  # as gradmatch.data.images.train_val_indices
        if not 1 <= n_val < rows:
            raise base.FieldError(
                "val_fraction",
                self.val_fraction,
                f"leaves an empty split of the {rows} {self.dataset} training images "
                f"({n_val} for validation); allowed: 1 <= round(val_fraction · {rows}) < {rows}",
            )
        if self.batch_size > rows - n_val:
            raise base.FieldError(
                "batch_size",
                self.batch_size,
                f"exceeds the {rows - n_val} training images of {self.dataset} after the "
                f"validation split; allowed: 1 .. {rows - n_val}",
            )
        members = len(self.rates) * len(self.seeds)
        params = base.mlp_parameters(
            base.DATASET_PIXELS[self.dataset], (max(self.widths),) * max(self.depths), 10
        )
        base.fits_in_memory(
            "widths",
            self.widths,
            members * params * 12,
            f"{members} networks (rates × seeds) × {params} parameters at the largest depth and "
            "width × 12 bytes (float32 weights, gradients, momentum)",
        )
        return self


# ------------------------------------------------------------------ chunks and data


def n_chunks(settings: Settings) -> int:
    """One chunk per (depth, width): |depths| · |widths|."""
    return len(settings.depths) * len(settings.widths)


def chunk_shape(settings: Settings, chunk: int) -> tuple[int, int]:
    """(depth, width) of ``chunk``, depth-major: chunk = i_depth · len(widths) + i_width."""
    if not 0 <= chunk < n_chunks(settings):
        raise ValueError(f"dropout: chunk {chunk} out of range; there are {n_chunks(settings)}")
    return list(itertools.product(settings.depths, settings.widths))[chunk]


def cost_plan(settings: Settings, chunk: int, actual: dict[str, int] | None = None):
    """The steps of chunk ``chunk`` for :mod:`gradmatch.cost`, at the maximum epochs.

    Training: epochs × ⌈n_train / batch_size⌉ steps of all members stacked, and every epoch one
    evaluation of the validation split; then per member the fixed matching work (−∇L over the
    training split, three evaluations) and the Adam fit with projected minibatch targets
    (:mod:`gradmatch.train.matching`): once, the per-sample projections over the n_train rows
    (``fit_projection``: one float64 jvp per row along the ridge column; with one batch holding
    every row, the full-data target instead), then per fit epoch (adam_fit.max_epochs) the
    monitored last batch's full target and its step (``fit_monitor``, one backward pass) and
    ⌈n_train / adam_fit.batch_size⌉ − 1 Adam steps on k-vectors (``fit_step``, a fixed cost;
    without ``batch_size`` one full-target step per epoch). ``actual``:
    ``train_epochs`` (the epochs the chunk trained, its largest ``epochs_trained``) and
    ``fit_epochs`` (Adam-fit epochs summed over the members) of a finished run.
    """
    from gradmatch import cost

    depth, width = chunk_shape(settings, chunk)
    k = len(settings.rates) * len(settings.seeds)
    rows = base.DATASET_ROWS[settings.dataset]
    n_val = int(round(settings.val_fraction * rows["train"]))
    n_train = rows["train"] - n_val
    sizes = (base.DATASET_PIXELS[settings.dataset], *(width,) * depth, N_CLASSES)
    macs = cost.mlp_macs(sizes)
    params = base.mlp_parameters(sizes[0], sizes[1:-1], N_CLASSES)
    epochs = cost.actual_count(
        actual, "train_epochs", settings.early_stopping.max_epochs, "dropout"
    )
    fit = settings.adam_fit
    fit_epochs = cost.actual_count(actual, "fit_epochs", k * fit.max_epochs, "dropout")
    member_flops = cost.training_flops(macs, n_train) + cost.forward_flops(
        macs, rows["train"] + rows["test"]
    )
    steps = -(-n_train // settings.batch_size)
    return cost.Plan(
        members=k,
        params=params,
        phases=(
            *cost.training_phases(epochs, steps, macs, settings.batch_size, k),
            cost.Phase("eval_row", epochs * n_val, cost.forward_flops(macs, 1, k), step=False),
            cost.Phase("member_fixed", k, member_flops, like="train_step"),
            *cost.adam_fit_phases(k, n_train, macs, params, fit, fit_epochs, 1, False),
        ),
    )


def load_data(settings: Settings) -> dict:
    """Train, validation (a random_split of the training split) and test tensors."""
    from gradmatch.data.images import load_images, train_val_indices

    X, y = load_images(settings.dataset, "train", settings.mnist_dir)
    train_rows, val_rows = train_val_indices(len(y), settings.val_fraction, settings.split_seed)
    return {
        "train": (X[train_rows], y[train_rows]),
        "val": (X[val_rows], y[val_rows]),
        "test": load_images(settings.dataset, "test", settings.mnist_dir),
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
    settings: Settings,
    depth: int,
    width: int,
    data: dict,
    grid: pd.DataFrame,
    on_epoch=None,
    checkpoint=None,
):
    """Train every member of one (depth, width) at once; returns the trainer's TrainResult.
    ``checkpoint`` is passed to the trainer (saved and resumed training state).

    ``on_epoch(epoch, metrics)`` is passed to the trainer (per-member metrics, e.g. to W&B).
    """
    from gradmatch import train

    X, y = data["train"]
    spec = train.MLPSpec(
        in_features=X.shape[1],
        hidden=(width,) * depth,
        out_features=N_CLASSES,
        activation="relu",
        dropout_after_last=settings.dropout_after_last,
    )
    optimizer = train.SGD(
        lr=settings.lr,
        momentum=settings.momentum,
        milestones=tuple(settings.milestones),
        gamma=settings.gamma,
    )
    stopping = settings.early_stopping
    return train.train_batched(
        spec,
        seeds=grid["seed"].tolist(),
        X=X,
        y=y,
        loss="cross_entropy",
        optimizer=optimizer,
        epochs=stopping.max_epochs,
        batch_size=settings.batch_size,
        drop_last=False,
        dropout=grid["dropout_rate"].tolist(),
        early_stopping=train.EarlyStopping(
            "val_loss", patience=stopping.patience, min_delta=stopping.min_delta
        ),
        eval_data={"val": data["val"]},
        device=settings.device,
        desc=f"dropout: train depth {depth} width {width}",
        on_epoch=on_epoch,
        checkpoint=checkpoint,
    )


# ------------------------------------------------------------------ matching


def match_member(settings: Settings, model, X, y, seed: int) -> dict:
    """λ̂ of the ridge family for one network (eval mode), by lstsq, nnls and the Adam fit."""
    from gradmatch import train
    from gradmatch.core import autodiff

    model.eval()
    theta = autodiff.flat_parameters(model)
    target = autodiff.loss_gradient(
        model, "cross_entropy", X, y, batch_size=settings.gradient_batch_size
    )
    target = target.cpu().numpy()
    row = {
        "n_params": theta.size,
        "theta_sq_norm": float(theta @ theta),
        "loss_grad_norm": float(np.linalg.norm(target)),
    }
    fit_settings = settings.adam_fit
    options = fit_settings.options(
        init=None if fit_settings.init is None else {"lambda": fit_settings.init},
        seed=int(seed),
        device=str(theta_device(model)),
    )
    batches = None
    if fit_settings.batch_size is not None:
        batches = train.minibatch_targets(
            model,
            "cross_entropy",
            X,
            y,
            fit_settings.batch_size,
            seed,
            drop_last=False,
            targets="projected",  # the same fit as "backward" without a backward pass per step
        )
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
    steps_per_epoch = 1 if batches is None else -(-len(y) // fit_settings.batch_size)
    row["fit_epochs_adam"] = fits["adam"].epochs
    row["fit_steps_adam"] = fits["adam"].epochs * steps_per_epoch
    row["fit_loss_adam_last_batch"] = float(fits["adam"].history[-1])
    row.update(adam_convergence(fits, options, theta.size))
    return row


def adam_convergence(fits: dict, options, p: int) -> dict:
    """Did the Adam fit reach the minimum of its own objective (issue 15)? Eq. 3's full-data
    objective f(λ) = (1/p)‖2λθ̂ + ∇L‖² at λ̂_adam against its exact minimum f(λ̂_lstsq): the
    relative excess f(λ̂_adam)/f(λ̂_lstsq) − 1, converged when ≤ :data:`CONVERGED_EXCESS`; and
    |log λ̂_adam − log λ₀|, the distance travelled from the fit's start λ₀ = exp(β₀)."""
    from gradmatch.core.adam import adam_init, adam_start

    start = float(adam_start(True, adam_init(Ridge(), options, p), options)[0].exp())
    excess = fits["adam"].loss / fits["lstsq"].loss - 1.0
    return {
        "fit_lambda_start_adam": start,
        "fit_log_distance_adam": abs(math.log(float(fits["adam"].params["lambda"]) / start)),
        "fit_loss_excess_adam": excess,
        "adam_converged": bool(excess <= CONVERGED_EXCESS),
    }


def theta_device(model):
    return next(model.parameters()).device


def evaluate(model, X, y) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` in eval mode."""
    model.eval()
    device = theta_device(model)
    with torch.no_grad():
        logits = model(X.to(device))
        labels = y.to(device)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        return float(loss), float((logits.argmax(1) == labels).double().mean())


# ------------------------------------------------------------------ one chunk


def member_rows(
    settings: Settings, result, data: dict, grid: pd.DataFrame, checkpoint=None
) -> pd.DataFrame:
    """One row per member: training record, evaluation and the three fits.

    ``checkpoint`` (:mod:`gradmatch.train.checkpoint`) keeps the rows of the members done, so a
    resumed job matches only the others."""
    from gradmatch.train.checkpoint import resumable_rows

    def member_row(k: int) -> dict:
        model = result.member(k, settings.match_weights)
        record = {
            "epochs_trained": int(result.epochs_trained[k]),
            "best_epoch": int(result.best_epoch[k]),
            "stopped_early": bool(result.epochs_trained[k] < settings.early_stopping.max_epochs),
        }
        for split in ("train", "val", "test"):
            loss, acc = evaluate(model, *data[split])
            record[f"{split}_loss"], record[f"{split}_acc"] = loss, acc
        record.update(match_member(settings, model, *data["train"], int(grid["seed"][k])))
        return record

    def bar(members):
        return progress_bar(members, desc="dropout: match ridge", unit="members")

    return pd.DataFrame(resumable_rows(checkpoint, "fits", len(grid), member_row, bar))


def run(settings: Settings, chunk: int, checkpoint=None) -> pd.DataFrame:
    """Train and match the members of chunk ``chunk`` = one (depth, width); one row per member.

    ``checkpoint``: a :class:`gradmatch.train.checkpoint.Checkpoint` to save the job's state in
    and resume it from (training and fits); the table is the same with or without it.

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
    config = {
        **settings.record(),
        "chunk": chunk,
        "depth": depth,
        "width": width,
        "members": labels,
    }
    tracking = settings.wandb.model_dump()
    with Tracker(tracking, group="dropout", name=f"chunk-{chunk}", config=config) as tracker:
        result = train_chunk(
            settings, depth, width, data, grid, tracker.member_logger(labels), checkpoint
        )
        fitted = member_rows(settings, result, data, grid, checkpoint)
        tracker.member_summary(fitted.to_dict("records"), labels)
    frame = pd.concat([grid, fitted], axis=1)
    frame.insert(0, "width", width)
    frame.insert(0, "depth", depth)
    frame.insert(0, "preset", settings.preset)
    frame.insert(0, "dataset", settings.dataset)
    frame["has_dropout"] = (depth > 1 or settings.dropout_after_last) & (frame["dropout_rate"] > 0)
    frame["matched_weights"] = settings.match_weights
    frame["n_train"] = len(data["train"][1])
    frame["n_val"] = len(data["val"][1])
    for method in METHODS:
        values = frame[f"lambda_hat_{method}"].to_numpy()
        frame[f"spearman_rate_lambda_{method}"] = spearman(frame["dropout_rate"], values)
    frame["settings"] = settings_record(settings)
    return TABLES["members"].frame(frame)
