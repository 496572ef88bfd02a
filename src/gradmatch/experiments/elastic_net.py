"""Figure 3: recover the explicit smoothed elastic-net penalty (λ1, λ2) of trained MLPs.

For every cell (λ1, λ2, seed) of the grid (paper Section 3, Appendix H.2; authors'
``analysis/elasticnet_train_and_recover/run.py``):

1. Data from ``torch.Generator().manual_seed(seed)``: X ~ N(0, I₁₀) (n = 5000 rows),
   β = 5·N(0, I₁₀), ε ~ N(0, 0.5²), y = Xβ + ε, then a random 80/20 train/test split.
2. An MLP 10 → 200 ReLU → 1 (initialised right after ``torch.manual_seed(seed)``) minimises

       J(θ) = (1/B) Σ_b (f_θ(x_b) − y_b)² + λ1 Σ_j h_β(θ_j) + λ2 Σ_j θ_j²   (all parameters,
       biases included; h_β = torch smooth_l1 against 0, β = 1e-3)

   with Adam (lr 1e-3), minibatches of 32 (shuffled, last partial batch dropped), ≤ 200 epochs
   and early stopping (patience 15) on J of the last step of each epoch (``early_stopping``).
   The paper text says "stochastic gradient descent"; the authors' code uses Adam, and so do we
   (column ``train_optimizer``).
3. At the matched weights θ̂ (``match_weights``: ``final`` = the model after training, as the
   authors' code does; ``best`` = the epoch with the lowest monitored J), the stationarity
   condition ∇R(θ̂; λ̂) = −∇L(θ̂) is solved for λ̂ = (λ̂1, λ̂2) with the family
   ``ElasticNet(β)``, ∇R = λ1 h_β'(θ) + 2λ2 θ:
   ``lstsq`` and ``nnls`` against −∇L of the full training set (exact least squares), and
   ``adam``, the authors' procedure (``adam_fit``): log-parametrised λ (both started at 1),
   Adam lr 1e-2, ≤ 1000 epochs, patience 50 on the fit loss of each epoch's last minibatch, one
   step per minibatch target −∇L_b(θ̂) over shuffled batches of 32 training rows (last partial
   batch dropped; :func:`gradmatch.train.matching.minibatch_targets`).

A chunk is a slice of the (λ1, λ2, seed) grid in that nesting order, trained as one batch.
Random streams: the data of a seed come from generator ``seed``; the training batch order from
``seed + ORDER_SEED_OFFSET``; the matching minibatches from ``seed + MATCH_SEED_OFFSET``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gradmatch import settings as base
from gradmatch._lazy import lazy_import
from gradmatch.core.estimators import match_gradients
from gradmatch.core.regularizers import ElasticNet
from gradmatch.progress import progress_bar
from gradmatch.tables import Table, columns
from gradmatch.tracking import Tracker

# torch-using modules are imported inside the functions that need them (module level stays
# torch-free); ``torch`` itself is lazy
torch = lazy_import("torch")
synthetic = lazy_import("gradmatch.data.synthetic")

PAPER_LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
ORDER_SEED_OFFSET = 1_000  # training minibatch order: generator seed + this
MATCH_SEED_OFFSET = 2_000  # minibatches of the stochastic Adam fit: generator seed + this
METHODS = ("lstsq", "nnls", "adam")


def _method_columns(method: str) -> tuple:
    fit = f"fit of method {method}"
    specs = [
        (f"lambda_hat_l1_{method}", "float64", f"λ̂1 ({fit}; NaN when not in fit_methods)"),
        (f"lambda_hat_l2_{method}", "float64", f"λ̂2 ({fit}; NaN when not in fit_methods)"),
        (f"fit_residual_ratio_{method}", "float64", f"‖∇R + ∇L‖ / ‖∇L‖ ({fit})"),
        (f"fit_cosine_{method}", "float64", f"cos(∇R, −∇L) ({fit})"),
        (f"fit_r2_{method}", "float64", f"cosine² ({fit})"),
    ]
    if method == "adam":
        specs.append(("fit_epochs_adam", "int64", "epochs the Adam fit ran (0: not run)", "epochs"))
    return columns(*specs)


TABLES = {
    "summary": Table(
        columns(
            ("lambda_true_l1", "float64", "λ1 of the training penalty"),
            ("lambda_true_l2", "float64", "λ2 of the training penalty"),
            ("seed", "int64", "seed of the data, the initialisation and the batch orders"),
        )
        + sum((_method_columns(method) for method in METHODS), ())
        + columns(
            ("loss_grad_norm", "float64", "‖∇L(θ̂)‖, L the training MSE"),
            (
                "grad_objective_norm",
                "float64",
                "‖∇J(θ̂)‖, J = L + λ1Σh_β + λ2Σθ² with the true λ: θ̂'s distance from "
                "stationarity, the lstsq residual at the true λ",
            ),
            ("l1_signal_norm", "float64", "‖λ1 h_β'(θ̂)‖, the L1 part of ∇R at the true λ"),
            ("l2_signal_norm", "float64", "‖2λ2 θ̂‖, the L2 part of ∇R at the true λ"),
            (
                "l1_unique_signal",
                "float64",
                "λ1‖u‖, u = h_β'(θ̂) minus its projection on θ̂: the λ1 signal lstsq can see",
            ),
            (
                "l1_unique_noise",
                "float64",
                "uᵀ∇J(θ̂)/‖u‖, the noise along u: λ̂1_lstsq = λ1 − noise/‖u‖ (< 0 when "
                "noise > l1_unique_signal)",
            ),
            ("design_cosine", "float64", "cos(h_β'(θ̂), θ̂) of the two design columns"),
            ("share_inside_beta", "float64", "share of parameters with |θ̂_j| < β"),
            ("train_mse", "float64", "mean squared error on the training split, matched weights"),
            ("test_mse", "float64", "mean squared error on the test split, matched weights"),
            ("epochs_trained", "int64", "epochs until early stopping", "epochs"),
            ("best_epoch", "int64", "epoch (0-based) of the lowest monitored J", "epochs"),
            ("matched_weights", "str", "final | best: the weights θ̂ matched"),
            ("train_optimizer", "str", "the training optimiser (adam, as the authors' code)"),
            ("smooth_beta", "float64", "β of h_β (training and fitted family)"),
            ("n_params", "int64", "number of network parameters p (biases included)"),
            ("chunk", "int64", "the job that trained the cell"),
            ("preset", "str", "scale preset"),
        ),
        key=("lambda_true_l1", "lambda_true_l2", "seed"),
        doc="one row per (λ1, λ2, seed) cell: true and recovered λ, fit diagnostics, training",
    )
}
# runtime: the least minutes a job asks; its rule asks max(this, margin × the cost projection)
# × attempt (gradmatch.cost.runtime_minutes)
RESOURCES = base.Resources(gpu=1, threads=2, runtime=15, mem_mb=8000)

PositiveFloat = Annotated[float, Field(gt=0)]


class Settings(base.Settings):
    """Every value of Figure 3; defaults are the authors' (sweep
    ``elasticnet_sweep_config_beta1e3`` and ``elasticnet_train_and_recover/run.py``)."""

    lambda1_values: tuple[PositiveFloat, ...] = Field(
        PAPER_LAMBDAS,
        min_length=1,
        description="grid of the true λ1 (> 0: log axes) (paper: 1e-4 … 10, six values)",
    )
    lambda2_values: tuple[PositiveFloat, ...] = Field(
        PAPER_LAMBDAS, min_length=1, description="grid of the true λ2 (> 0) (paper: 1e-4 … 10)"
    )
    seeds: tuple[int, ...] = Field(
        tuple(range(10)),
        min_length=1,
        description="one new dataset and initialisation per seed (paper: 0..9)",
    )
    chunk_size: int = Field(36, ge=1, description="grid cells trained together in one job")
    n_samples: int = Field(5000, ge=2, description="rows before the split (paper: 5000)")
    n_features: int = Field(10, ge=1, description="columns of X (paper: 10)")
    beta_scale: float = Field(5.0, gt=0, description="β_true = beta_scale · N(0, I) (paper: 5)")
    noise_std: float = Field(0.5, ge=0, description="σ of ε (paper: 0.5)")
    train_fraction: float = Field(
        0.8, gt=0, lt=1, description="share of rows in the training split (paper: 0.8)"
    )
    hidden: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (200,), min_length=1, description="hidden widths, ReLU (paper: one layer of 200)"
    )
    smooth_beta: float = Field(
        1e-3, gt=0, description="β of h_β, in training and in the fitted family (paper: 1e-3)"
    )
    lr: float = Field(1e-3, gt=0, description="Adam learning rate of training (paper: 1e-3)")
    batch_size: int = Field(32, ge=1, description="training minibatch, drop-last (paper: 32)")
    early_stopping: base.EarlyStopping = Field(
        base.EarlyStopping(max_epochs=200, patience=15, min_delta=0.0),
        description="training stops on the last-step penalised loss J of each epoch "
        "(paper: ≤ 200 epochs, patience 15)",
    )
    match_weights: Literal["final", "best"] = Field(
        "final",
        description="weights matched: final (the model after training) | best (lowest "
        "monitored J) (paper: final)",
    )
    fit_methods: tuple[Literal["lstsq", "nnls", "adam"], ...] = Field(
        METHODS,
        min_length=1,
        description="estimators to run; the columns of the others are NaN (paper: adam)",
    )
    adam_fit: base.AdamFit = Field(
        base.AdamFit(lr=1e-2, max_epochs=1000, patience=50, batch_size=32, init=1.0),
        description="the authors' Adam fit; batch_size = rows per minibatch target, init = "
        "starting λ1 = λ2 (paper: lr 1e-2, ≤ 1000 epochs, patience 50, batch 32, init 1)",
    )
    dtype: Literal["float32", "float64"] = Field(
        "float32", description="training precision (paper: float32)"
    )
    progress: bool = Field(True, description="tqdm progress bars")
    device: base.Device
    preset: base.Preset
    wandb: base.Wandb = base.Wandb()

    @model_validator(mode="after")
    def _sizes(self):
        for key in ("lambda1_values", "lambda2_values", "seeds", "fit_methods"):
            base.distinct(key, getattr(self, key))
        if not 1 <= self.n_train < self.n_samples:
            raise base.FieldError(
                "train_fraction",
                self.train_fraction,
                f"leaves an empty split of n_samples {self.n_samples} ({self.n_train} for "
                f"training); allowed: 1 <= round(train_fraction · n_samples) < {self.n_samples}",
            )
        if self.batch_size > self.n_train:
            raise base.FieldError(
                "batch_size",
                self.batch_size,
                f"exceeds the {self.n_train} training rows (n_samples · train_fraction; "
                f"minibatches drop the last partial one); allowed: 1 .. {self.n_train}",
            )
        members = min(
            self.chunk_size, len(self.lambda1_values) * len(self.lambda2_values) * len(self.seeds)
        )
        base.fits_in_memory(
            "n_samples",
            self.n_samples,
            members * self.n_samples * (self.n_features + 1) * 8,
            f"one data set per trained member: {members} members per chunk × n_samples "
            f"{self.n_samples} × (n_features {self.n_features} + 1) × 8 bytes",
        )
        return self

    @property
    def n_train(self) -> int:
        return int(round(self.train_fraction * self.n_samples))


def grid(settings: Settings) -> list[tuple[float, float, int]]:
    """All (λ1, λ2, seed) cells, λ1 outermost, seed innermost."""
    return list(itertools.product(settings.lambda1_values, settings.lambda2_values, settings.seeds))


def n_chunks(settings: Settings) -> int:
    """ceil(|λ1| · |λ2| · |seeds| / chunk_size)."""
    return math.ceil(len(grid(settings)) / settings.chunk_size)


def cost_plan(settings: Settings, chunk: int, actual: dict[str, int] | None = None):
    """The steps of chunk ``chunk`` for :mod:`gradmatch.cost`, at the maximum epochs.

    Training: epochs × ⌊n_train / batch_size⌋ steps of the chunk's members stacked (no
    evaluation set); then per member the fixed matching work (−∇L, lstsq, nnls, two MSEs) and,
    with ``adam`` in ``fit_methods``, the Adam fit with projected minibatch targets
    (:mod:`gradmatch.train.matching`): once, the per-sample projections over the n_train rows
    (``fit_projection``: one float64 jvp per row and design column, k = 2; with one batch
    holding every row, the full-data target instead), then per fit epoch (adam_fit.max_epochs)
    the monitored last batch's full target and its step (``fit_monitor``) and
    ⌊n_train / adam_fit.batch_size⌋ − 1 Adam steps on k-vectors (``fit_step``, a fixed cost;
    without ``batch_size`` one full-target step per epoch). ``actual``: ``train_epochs`` (the
    chunk's largest ``epochs_trained``) and ``fit_epochs`` (``fit_epochs_adam`` summed over
    the members).
    """
    from gradmatch import cost

    k = len(grid(settings)[chunk * settings.chunk_size : (chunk + 1) * settings.chunk_size])
    if k == 0:
        raise ValueError(f"elastic_net: chunk {chunk} out of range; there are {n_chunks(settings)}")
    sizes = (settings.n_features, *settings.hidden, 1)
    macs = cost.mlp_macs(sizes)
    params = base.mlp_parameters(settings.n_features, settings.hidden, 1)
    n_train = settings.n_train
    stopping, fit = settings.early_stopping, settings.adam_fit
    epochs = cost.actual_count(actual, "train_epochs", stopping.max_epochs, "elastic_net")
    fit_default = k * fit.max_epochs if "adam" in settings.fit_methods else 0
    fit_epochs = cost.actual_count(actual, "fit_epochs", fit_default, "elastic_net")
    member_flops = cost.training_flops(macs, n_train) + cost.forward_flops(macs, settings.n_samples)
    steps = n_train // settings.batch_size
    fit_phases = cost.adam_fit_phases(k, n_train, macs, params, fit, fit_epochs, 2, True)
    if fit_default <= 0:  # no Adam fit among the methods: nothing to project or monitor
        fit_phases = tuple(dataclasses.replace(phase, units=0) for phase in fit_phases)
    return cost.Plan(
        members=k,
        params=params,
        phases=(
            *cost.training_phases(epochs, steps, macs, settings.batch_size, k),
            cost.Phase("member_fixed", k, member_flops, like="train_step"),
            *fit_phases,
        ),
    )


def sample_dataset(settings: Settings, seed: int) -> dict:
    """X, then β, then ε, then the split permutation, from one generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(int(seed))
    n = settings.n_samples
    problem = synthetic.linear_regression(
        gen, n, settings.n_features, settings.beta_scale, settings.noise_std
    )
    X, y = problem.X, problem.y
    order = torch.randperm(n, generator=gen)
    train_rows, test_rows = order[: settings.n_train], order[settings.n_train :]
    return {
        "X_train": X[train_rows],
        "y_train": y[train_rows],
        "X_test": X[test_rows],
        "y_test": y[test_rows],
    }


def _stack_data(settings: Settings, seeds: list[int]) -> dict:
    datasets = {seed: sample_dataset(settings, seed) for seed in sorted(set(seeds))}
    return {key: torch.stack([datasets[s][key] for s in seeds]) for key in datasets[seeds[0]]}


def train_chunk(
    settings: Settings,
    cells: list[tuple[float, float, int]],
    data,
    on_epoch=None,
    checkpoint=None,
):
    """Train the members of ``cells`` as one batch (step 2 of the module docstring);
    ``checkpoint`` is passed to the trainer (saved and resumed training state)."""
    from gradmatch import train

    seeds = [seed for _, _, seed in cells]
    stopping = settings.early_stopping
    return train.train_batched(
        train.MLPSpec(settings.n_features, settings.hidden, 1),
        seeds,
        data["X_train"],
        data["y_train"],
        loss="mse",
        optimizer=train.Adam(lr=settings.lr),
        epochs=stopping.max_epochs,
        batch_size=settings.batch_size,
        penalty=train.ElasticNetPenalty(
            [c[0] for c in cells], [c[1] for c in cells], beta=settings.smooth_beta
        ),
        early_stopping=train.EarlyStopping(
            "train_objective_last", patience=stopping.patience, min_delta=stopping.min_delta
        ),
        data_seeds=[seed + ORDER_SEED_OFFSET for seed in seeds],
        device=settings.device,
        dtype=settings.dtype,
        progress=settings.progress,
        desc="elastic_net: train",
        on_epoch=on_epoch,
        checkpoint=checkpoint,
    )


def stationarity(family, theta, target, lambda1: float, lambda2: float) -> dict[str, float]:
    """How far θ̂ is from stationarity of the training objective J = L + R(λ1, λ2), and how
    much of the λ1 signal stands above that noise (issue 15; columns of ``summary``).

    With the true λ, the lstsq residual of Eq. 3 is ∇J(θ̂) = ∇L + λ1 h_β'(θ̂) + 2λ2θ̂, and
    λ̂_lstsq − λ = −(AᵀA)⁻¹Aᵀ∇J exactly (A = [h_β'(θ̂), 2θ̂]). For λ1 only the part u of the
    L1 column h_β'(θ̂) orthogonal to θ̂ counts (the rest is absorbed by λ2):
    λ̂1_lstsq = λ1 − uᵀ∇J/‖u‖², so λ̂1_lstsq < 0 exactly when the noise uᵀ∇J/‖u‖ exceeds the
    signal λ1‖u‖. Inside |θ| < β, h_β'(θ) = θ/β is parallel to θ and adds nothing to u."""
    design = family.design(theta)
    grad_j = design @ np.array([lambda1, lambda2]) - target
    l1_column, l2_column = design[:, 0], design[:, 1]
    unique = l1_column - (l1_column @ l2_column) / (l2_column @ l2_column) * l2_column
    unique_norm = float(np.linalg.norm(unique))
    norms = np.linalg.norm(design, axis=0)
    return {
        "loss_grad_norm": float(np.linalg.norm(target)),
        "grad_objective_norm": float(np.linalg.norm(grad_j)),
        "l1_signal_norm": float(lambda1 * norms[0]),
        "l2_signal_norm": float(lambda2 * norms[1]),
        "l1_unique_signal": lambda1 * unique_norm,
        "l1_unique_noise": float(unique @ grad_j) / unique_norm if unique_norm > 0 else math.nan,
        "design_cosine": float(l1_column @ l2_column / (norms[0] * norms[1])),
        "share_inside_beta": float(np.mean(np.abs(theta) < family.beta)),
    }


def estimate(
    settings: Settings, model, X_train, y_train, seed: int, lambdas: tuple[float, float]
) -> dict[str, float]:
    """λ̂ by every method of ``settings.fit_methods`` (step 3), with fit diagnostics and the
    :func:`stationarity` of the true ``lambdas`` = (λ1, λ2); the columns of a method not run
    are NaN (``fit_epochs_adam``: 0)."""
    from gradmatch import train
    from gradmatch.core import autodiff

    family = ElasticNet(settings.smooth_beta)
    lambda1, lambda2 = lambdas
    theta = autodiff.flat_parameters(model)
    target = autodiff.loss_gradient(model, "mse", X_train, y_train).cpu().numpy()
    fit_settings = settings.adam_fit
    row: dict[str, float] = stationarity(family, theta, target, lambda1, lambda2)
    for method in METHODS:
        if method not in settings.fit_methods:
            for column in _method_columns(method):
                row[column.name] = 0 if column.dtype == "int64" else math.nan
            continue
        kwargs = {}
        if method == "adam":
            init = None
            if fit_settings.init is not None:
                init = {"lambda_l1": fit_settings.init, "lambda_l2": fit_settings.init}
            kwargs = {"adam": fit_settings.options(init=init)}
            if fit_settings.batch_size is not None:
                kwargs["target_batches"] = train.minibatch_targets(
                    model,
                    "mse",
                    X_train,
                    y_train,
                    fit_settings.batch_size,
                    seed + MATCH_SEED_OFFSET,
                    drop_last=True,
                    vectorize=True,
                    device="cpu",
                    targets="projected",  # the fit of "backward" without a backward pass a step
                )
        # every |θ̂| < β (large λ1) leaves only λ1/(2β) + λ2 identified: the grid keeps the
        # cell, with the minimum-norm solution (the estimator warns), as the paper's figure does
        fit = match_gradients(
            family, theta, target, method=method, allow_underdetermined=True, **kwargs
        )
        row[f"lambda_hat_l1_{method}"] = float(fit.params["lambda_l1"])
        row[f"lambda_hat_l2_{method}"] = float(fit.params["lambda_l2"])
        row[f"fit_residual_ratio_{method}"] = fit.residual_ratio
        row[f"fit_cosine_{method}"] = fit.cosine
        row[f"fit_r2_{method}"] = fit.r2
        if method == "adam":
            row["fit_epochs_adam"] = int(fit.epochs)
    return row


def _mse(model, X, y) -> float:
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(model(X).squeeze(-1), y))


def run(settings: Settings, chunk: int = 0, checkpoint=None) -> pd.DataFrame:
    """Train chunk ``chunk`` of the grid and estimate λ̂ for each member: one row per cell.

    ``checkpoint``: a :class:`gradmatch.train.checkpoint.Checkpoint` to save the job's state in
    and resume it from (training and fits); the table is the same with or without it."""
    if not 0 <= chunk < n_chunks(settings):
        raise ValueError(
            f"elastic_net: chunk {chunk} out of range; this grid has {n_chunks(settings)} chunks "
            f"(0..{n_chunks(settings) - 1}) at chunk_size {settings.chunk_size}"
        )
    cells = grid(settings)[chunk * settings.chunk_size : (chunk + 1) * settings.chunk_size]
    data = _stack_data(settings, [seed for _, _, seed in cells])
    labels = [f"l1={lambda1:g}_l2={lambda2:g}_seed={seed}" for lambda1, lambda2, seed in cells]
    config = {**settings.record(), "chunk": chunk, "members": labels}
    tracking = settings.wandb.model_dump()
    with Tracker(tracking, group="elastic_net", name=f"chunk-{chunk}", config=config) as run_:
        logger = run_.member_logger(labels)
        result = train_chunk(settings, cells, data, on_epoch=logger, checkpoint=checkpoint)
        frame = _match_members(settings, cells, data, result, chunk, checkpoint)
        run_.member_summary(frame.to_dict("records"), labels)
    return frame


def _match_members(
    settings: Settings, cells, data, result, chunk: int, checkpoint=None
) -> pd.DataFrame:
    """Step 3 for every member of a trained chunk: one row per cell (the rows done are kept in
    ``checkpoint``, so a resumed job matches only the others)."""
    from gradmatch.train.checkpoint import resumable_rows

    def bar(members):
        return progress_bar(
            members, desc="elastic_net: match", unit="members", enabled=settings.progress
        )

    def member_row(k: int) -> dict:
        lambda1, lambda2, seed = cells[k]
        model = result.member(k, settings.match_weights)
        device = next(model.parameters()).device
        X_train, y_train = data["X_train"][k].to(device), data["y_train"][k].to(device)
        X_test, y_test = data["X_test"][k].to(device), data["y_test"][k].to(device)
        X_train, X_test = X_train.to(model[0].weight.dtype), X_test.to(model[0].weight.dtype)
        y_train, y_test = y_train.to(X_train.dtype), y_test.to(X_train.dtype)
        return {
            "lambda_true_l1": float(lambda1),
            "lambda_true_l2": float(lambda2),
            "seed": int(seed),
            **estimate(settings, model, X_train, y_train, seed, (lambda1, lambda2)),
            "train_mse": _mse(model, X_train, y_train),
            "test_mse": _mse(model, X_test, y_test),
            "epochs_trained": int(result.epochs_trained[k]),
            "best_epoch": int(result.best_epoch[k]),
            "matched_weights": settings.match_weights,
            "train_optimizer": "adam",
            "smooth_beta": float(settings.smooth_beta),
            "n_params": int(result.spec.n_parameters()),
            "chunk": int(chunk),
            "preset": settings.preset,
        }

    rows = resumable_rows(checkpoint, "fits", len(cells), member_row, bar)
    return TABLES["summary"].frame(rows)
