"""Figure 6: implicit gradient regularization of SGD, λ̂ (Eq. 6) against Barrett & Dherin's ηp/4.

Theory (Barrett & Dherin 2022). Gradient descent with step η follows, to O(η²) per step, the
flow of the modified loss L̃ = L + (η/4)‖∇L‖². With the regularizer family
R(θ, λ) = (λ/p)‖∇L(θ)‖², ∇R = (2λ/p)·H(θ)∇L(θ), the implicit coefficient is λ_theory = ηp/4.

Estimator (paper Eq. 6, the trajectory form Eq. 4 with a flow reference). At a parameter vector θ
with full-batch gradient g = ∇L(θ) and Hessian–gradient product Hg (double backpropagation),

    Δθ_GD = −ηg,   Δθ_flow = φ_η(θ) − θ   (RK4 of dθ/dt = −∇L over time η, ``rk4_substeps``),
    r = (Δθ_flow − Δθ_GD)/η  ≈ (η/2)·Hg,

and with (Hg_t, r_t) stacked over ``probe_steps`` GD probe steps θ_{t+1} = θ_t − ηg_t,

    λ̂ = (p/2)·⟨Hg, r⟩/⟨Hg, Hg⟩,    residual ratio = ‖r − (2λ̂/p)Hg‖/‖r‖

(:func:`gradmatch.core.igr.estimate_igr`).

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
the pixel mean and standard deviation of the whole digits train split (computed, not tuned;
:mod:`gradmatch.data.normalization`). MNIST is read from ``mnist_dir``, which the workflow fills.
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

from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gradmatch import settings as base
from gradmatch._lazy import lazy_import
from gradmatch.tables import Table, columns
from gradmatch.tracking import Tracker

torch = lazy_import("torch")
igr_core = lazy_import("gradmatch.core.igr")
data_norm = lazy_import("gradmatch.data.normalization")
train = lazy_import("gradmatch.train")

LABELS = columns(
    ("preset", "str", "scale preset"),
    ("dataset", "str", "image data: mnist | digits"),
    ("seed", "int64", "torch seed of the initialisation"),
    ("width", "int64", "hidden width w"),
)
TABLES = {
    "runs": Table(
        LABELS
        + columns(
            ("depth", "int64", "hidden layers"),
            ("n_params", "int64", "p, scalar parameters of the network"),
            ("lr", "float64", "SGD step size η (= η_probe)"),
            ("epochs", "int64", "training epochs"),
            ("min_train_accuracy", "float64", "checkpoint eligibility threshold", "fraction"),
            ("max_train_accuracy", "float64", "best train accuracy over epochs", "fraction"),
            ("final_train_accuracy", "float64", "train accuracy after the last epoch", "fraction"),
            ("excluded", "bool", "no epoch reached min_train_accuracy (no probe)"),
            ("exclusion_reason", "str", "why the run is excluded ('' when kept)"),
            ("selected_epoch", "int64", "1-based checkpoint epoch (−1 when excluded)"),
            ("train_accuracy", "float64", "train accuracy at the checkpoint", "fraction"),
            ("val_accuracy", "float64", "validation accuracy at the checkpoint", "fraction"),
            ("test_accuracy", "float64", "test accuracy at the checkpoint", "fraction"),
            ("probe_size", "int64", "training images of the full-batch probe"),
            ("probe_steps", "int64", "GD probe steps T of Eq. 6"),
            ("rk4_substeps", "int64", "RK4 substeps per interval η"),
            ("probe_dtype", "str", "precision of the probe: float32 | float64"),
            ("lambda_theory", "float64", "Barrett & Dherin's ηp/4"),
            ("r_ig", "float64", "R_IG = ‖∇L(θ)‖²/p at the checkpoint (NaN when excluded)"),
            ("lambda_hat", "float64", "λ̂ of Eq. 6 (NaN when excluded)"),
            ("lambda_ratio", "float64", "λ̂/(ηp/4)"),
            ("residual_ratio", "float64", "‖r − (2λ̂/p)Hg‖/‖r‖ of the Eq. 6 fit"),
        ),
        key=("width", "lr"),
        doc="one row per (width, step size): checkpoint, accuracies and the Eq. 6 probe",
    ),
    "epochs": Table(
        LABELS
        + columns(
            ("lr", "float64", "SGD step size η"),
            ("epoch", "int64", "1-based epoch"),
            ("train_loss_running", "float64", "mean minibatch loss during the epoch", "nats"),
            ("train_loss", "float64", "cross-entropy on the whole training subset", "nats"),
            ("train_accuracy", "float64", "accuracy on the whole training subset", "fraction"),
            ("val_loss", "float64", "validation cross-entropy", "nats"),
            ("val_accuracy", "float64", "validation accuracy", "fraction"),
            ("test_loss", "float64", "test cross-entropy", "nats"),
            ("test_accuracy", "float64", "test accuracy", "fraction"),
        ),
        key=("width", "lr", "epoch"),
        doc="the training history: one row per (width, step size, epoch)",
    ),
}
# runtime: the least minutes a job asks; its rule asks max(this, margin × the cost projection)
# × attempt (gradmatch.cost.runtime_minutes)
RESOURCES = base.Resources(gpu=1, threads=2, runtime=15, mem_mb=16000)

Width = Annotated[int, Field(ge=1)]
StepSize = Annotated[float, Field(gt=0)]


class Settings(base.Settings):
    """Every value of Figure 6; defaults are the paper's (H.5 and the authors' Snakemake rule)."""

    widths: tuple[Width, ...] = Field(
        (50, 100, 200, 400, 800, 1600),
        min_length=1,
        description="hidden widths w, one chunk each (paper: 50, 100, 200, 400, 800, 1600)",
    )
    learning_rates: tuple[StepSize, ...] = Field(
        (5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5),
        min_length=1,
        description="SGD step sizes η, trained together (paper: 5e-4 ... 0.5, seven values)",
    )
    depth: int = Field(5, ge=1, description="hidden layers (paper: 5)")
    activation: Literal["tanh", "relu"] = Field(
        "tanh", description="hidden activation (paper: tanh)"
    )
    seed: int = Field(
        0, ge=0, description="torch seed of the init; loader and probe seeds add offsets (paper: 0)"
    )
    batch_size: int = Field(128, ge=1, description="SGD minibatch size (paper: 128)")
    epochs: int = Field(50, ge=1, description="training epochs (paper: 50)")
    loader_seed_offset: int = Field(
        17, ge=0, description="shuffling generator seed = seed + offset (paper: 17)"
    )
    n_train: int = Field(10_000, ge=1, description="training images (paper: 10,000)")
    n_val: int = Field(1_000, ge=1, description="validation images (paper: 1,000)")
    n_test: int = Field(5_000, ge=1, description="test images (paper: 5,000)")
    split_seed: int = Field(
        0, ge=0, description="permutation seed of the train split: train, then val (paper: 0)"
    )
    test_seed: int = Field(1, ge=0, description="permutation seed of the test split (paper: 1)")
    min_train_accuracy: float = Field(
        0.90,
        ge=0,
        le=1,
        description="checkpoint eligibility: train accuracy >= this (paper: 0.90; Barrett: 1.0)",
    )
    probe_size: int = Field(
        2048,
        ge=1,
        description="training images of the full-batch probe, capped by n_train (paper: 2048)",
    )
    probe_seed_offset: int = Field(
        991, ge=0, description="probe subset permutation seed = seed + offset (paper: 991)"
    )
    probe_steps: int = Field(5, ge=1, description="GD probe steps T of Eq. 6 (paper: 5)")
    rk4_substeps: int = Field(10, ge=1, description="RK4 substeps per interval η (paper: 10)")
    probe_dtype: Literal["float32", "float64"] = Field(
        "float64",
        description="precision of the Eq. 6 probe (paper: float64; the authors used float32)",
    )
    dataset: base.Dataset
    mnist_dir: base.MnistDir
    device: base.Device
    preset: base.Preset
    wandb: base.Wandb = base.Wandb()

    @model_validator(mode="after")
    def _checks(self):
        base.distinct("widths", self.widths)
        base.distinct("learning_rates", self.learning_rates)
        rows = base.DATASET_ROWS[self.dataset]
        if self.n_train + self.n_val > rows["train"]:
            raise base.FieldError(
                "n_train",
                self.n_train,
                f"n_train + n_val = {self.n_train + self.n_val} exceeds the {rows['train']} "
                f"training images of {self.dataset}; allowed: n_train + n_val <= {rows['train']}",
            )
        if self.n_test > rows["test"]:
            raise base.FieldError(
                "n_test",
                self.n_test,
                f"exceeds the {rows['test']} test images of {self.dataset}; allowed: 1 .. "
                f"{rows['test']}",
            )
        if self.batch_size > self.n_train:
            raise base.FieldError(
                "batch_size",
                self.batch_size,
                f"exceeds n_train = {self.n_train}; allowed: 1 .. n_train",
            )
        params = base.mlp_parameters(
            base.DATASET_PIXELS[self.dataset], (max(self.widths),) * self.depth, 10
        )
        members = len(self.learning_rates)
        base.fits_in_memory(
            "widths",
            self.widths,
            members * params * 8,
            f"{members} networks (learning_rates) × {params} parameters at the largest width × "
            "8 bytes (float32 weights and gradients)",
        )
        return self


def _dtype(name: str):
    return {"float32": torch.float32, "float64": torch.float64}[name]


def _permutation(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def split_data(settings: Settings) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train, val (disjoint, one permutation), test (another) and probe subsets (CPU tensors)."""
    x, y = data_norm.load_normalized(settings.dataset, "train", settings.mnist_dir)
    x_test, y_test = data_norm.load_normalized(settings.dataset, "test", settings.mnist_dir)
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
    train_rows, val_rows = order[: settings.n_train], order[settings.n_train : need]
    test_rows = _permutation(len(x_test), settings.test_seed)[: settings.n_test]
    probe_n = min(settings.probe_size, settings.n_train)
    probe_order = _permutation(settings.n_train, settings.seed + settings.probe_seed_offset)
    probe_rows = train_rows[probe_order][:probe_n]
    return {
        "train": (x[train_rows], y[train_rows]),
        "val": (x[val_rows], y[val_rows]),
        "test": (x_test[test_rows], y_test[test_rows]),
        "probe": (x[probe_rows], y[probe_rows]),
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


def model_spec(settings: Settings, width: int, n_features: int) -> train.MLPSpec:
    """``depth`` hidden tanh layers of ``width`` without biases, then Linear(width → 10) + bias."""
    return train.MLPSpec(
        n_features, (width,) * settings.depth, 10, settings.activation, hidden_bias=False
    )


def train_width(
    settings: Settings, width: int, data: dict, on_epoch=None, checkpoint=None
) -> train.TrainResult:
    """All step sizes of one width as stacked members (same seed, per-member η), plain SGD.

    The best state of a member maximises the validation accuracy among epochs whose accuracy on
    the whole training subset is ≥ ``min_train_accuracy`` (other epochs score NaN, ineligible).
    ``on_epoch(epoch, metrics)`` is passed to the trainer (per-member metrics, e.g. to W&B), and
    ``checkpoint`` too (saved and resumed training state).
    """
    k = len(settings.learning_rates)
    x_train, y_train = data["train"]
    threshold = settings.min_train_accuracy

    def select(metrics):
        eligible = metrics["train_eval_acc"] >= threshold
        return torch.where(eligible, metrics["val_acc"], torch.nan)

    return train.train_batched(
        model_spec(settings, width, x_train.shape[1]),
        seeds=[settings.seed] * k,
        X=x_train,
        y=y_train,
        loss="cross_entropy",
        optimizer=train.SGD(lr=list(settings.learning_rates)),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        drop_last=False,
        eval_data={"train_eval": data["train"], "val": data["val"], "test": data["test"]},
        select=select,
        data_seeds=[settings.seed + settings.loader_seed_offset] * k,
        device=settings.device,
        dtype="float32",
        desc=f"igr: train width {width}",
        on_epoch=on_epoch,
        checkpoint=checkpoint,
    )


def _accuracy_matrix(history: pd.DataFrame, column: str, k: int, epochs: int) -> np.ndarray:
    """(epochs, K) of one history metric; NaN where a member did not train that epoch."""
    out = np.full((epochs, k), np.nan)
    out[history["epoch"].to_numpy(), history["member"].to_numpy()] = history[column].to_numpy()
    return out


def probe_model(
    settings: Settings, model, data: tuple, lr: float, loss: str = "cross_entropy"
) -> igr_core.IGRFit:
    """Eq. 6 at ``model``'s weights on (x, y) = ``data`` in ``probe_dtype``, η_probe = ``lr``.

    R_IG = ‖∇L‖²/p at the first probe point is ``grad_norm_squared`` of the result.
    """
    dtype = _dtype(settings.probe_dtype)
    model = model.to(dtype)
    device = next(model.parameters()).device
    x, y = data
    return igr_core.estimate_igr(
        model,
        loss,
        x.to(device=device, dtype=dtype),
        y.to(device),
        lr,
        probe_steps=settings.probe_steps,
        substeps=settings.rk4_substeps,
    )


def probe_member(settings: Settings, result, k: int, data: dict) -> igr_core.IGRFit:
    """:func:`probe_model` at member k's selected state on the probe subset."""
    model = result.member(k, "best")
    return probe_model(settings, model, data["probe"], settings.learning_rates[k])


def member_rows(
    settings: Settings, width: int, result, data: dict, checkpoint=None
) -> pd.DataFrame:
    """One row per step size: checkpoint, exclusion flag, accuracies, R_IG, λ̂, ηp/4 (the rows
    done are kept in ``checkpoint``, a :class:`gradmatch.train.checkpoint.Checkpoint`, so a
    resumed job probes only the others)."""
    from gradmatch.train.checkpoint import resumable_rows

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

    def member_row(member: int) -> dict:
        lr = settings.learning_rates[member]
        row = _base_row(settings, width, result.spec.n_parameters(), member, lr, matrices)
        row.update(_checkpoint_columns(matrices, chosen[member], excluded[member], member))
        row.update(_probe_columns(settings, result, member, data, excluded[member]))
        return row

    rows = resumable_rows(checkpoint, "probes", len(settings.learning_rates), member_row)
    return TABLES["runs"].frame(rows)


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


def epoch_rows(settings: Settings, width: int, result) -> pd.DataFrame:
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
    return TABLES["epochs"].frame(table)


def n_chunks(settings: Settings) -> int:
    """One chunk per width."""
    return len(settings.widths)


def cost_plan(settings: Settings, chunk: int, actual: dict[str, int] | None = None):
    """The steps of chunk ``chunk`` (one width) for :mod:`gradmatch.cost`.

    Training: epochs × ⌈n_train / batch_size⌉ SGD steps of every step size stacked, and every
    epoch one evaluation of n_train + n_val + n_test rows; then per probed member a fixed setup
    and ``probe_steps`` probe steps, each one Hessian–gradient product (≈ 2 backward passes)
    and ``rk4_substeps`` × 4 gradients on the probe subset in ``probe_dtype``. Every member is
    counted as probed (an upper bound: excluded runs are not probed); ``actual``:
    ``train_epochs`` and ``probed`` (members not excluded) of a finished run.
    """
    from gradmatch import cost

    if not 0 <= chunk < n_chunks(settings):
        raise ValueError(f"igr: chunk {chunk} out of range; there are {n_chunks(settings)}")
    k = len(settings.learning_rates)
    sizes = (base.DATASET_PIXELS[settings.dataset], *(settings.widths[chunk],) * settings.depth, 10)
    macs = cost.mlp_macs(sizes)
    params = macs + 10  # no hidden biases, an output bias
    epochs = cost.actual_count(actual, "train_epochs", settings.epochs, "igr")
    probed = cost.actual_count(actual, "probed", k, "igr")
    probe_rows = min(settings.probe_size, settings.n_train)
    gradients = 2 + 4 * settings.rk4_substeps  # Hg ≈ 2 backward passes, RK4: 4 per substep
    steps = -(-settings.n_train // settings.batch_size)
    eval_rows = settings.n_train + settings.n_val + settings.n_test
    return cost.Plan(
        members=k,
        params=params,
        phases=(
            cost.Phase(
                "train_step", epochs * steps, cost.training_flops(macs, settings.batch_size, k)
            ),
            cost.Phase("train_epoch", epochs, 0.0),
            cost.Phase("eval_row", epochs * eval_rows, cost.forward_flops(macs, 1, k), step=False),
            cost.Phase("member_fixed", probed, 0.0, settings.probe_dtype),
            cost.Phase(
                "probe_step",
                probed * settings.probe_steps,
                gradients * cost.training_flops(macs, probe_rows),
                settings.probe_dtype,
            ),
        ),
    )


def run(settings: Settings, chunk: int, checkpoint=None) -> dict[str, pd.DataFrame]:
    """Train every step size of width ``widths[chunk]``, select, probe; tables runs and epochs.

    With ``wandb`` tracking on, the chunk is one W&B run (group ``igr``): the settings as config,
    every step size's per-epoch metrics as ``lr=<η>/<metric>``, and each run's row (λ̂, ηp/4,
    R_IG, accuracies, exclusion) in the summary. The tables do not depend on it.
    ``checkpoint``: a :class:`gradmatch.train.checkpoint.Checkpoint` to save the job's state in
    and resume it from (training and probes); the tables are the same with or without it.
    """
    if not 0 <= chunk < n_chunks(settings):
        raise ValueError(
            f"igr: chunk {chunk} out of range; there are {n_chunks(settings)} (one per width "
            f"in igr.widths = {list(settings.widths)})"
        )
    width = settings.widths[chunk]
    data = split_data(settings)
    labels = [f"lr={lr:g}" for lr in settings.learning_rates]
    config = {**settings.record(), "chunk": chunk, "width": width, "members": labels}
    wandb = settings.wandb.model_dump()
    with Tracker(wandb, group="igr", name=f"chunk-{chunk}", config=config) as tracker:
        torch.manual_seed(settings.seed)
        logger = tracker.member_logger(labels)
        result = train_width(settings, width, data, logger, checkpoint)
        runs = member_rows(settings, width, result, data, checkpoint)
        tracker.member_summary(runs.to_dict("records"), labels)
    return {"runs": runs, "epochs": epoch_rows(settings, width, result)}
