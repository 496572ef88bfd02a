"""The authors' stochastic Adam fit (Figs 3 and 5) against training, per member (issue 13, item 3).

``cost``: at the paper's Figure 5 sizes on random data of MNIST's shape (54,000 × 784 training
rows, 6,000 validation rows, 10 classes; MNIST itself is not needed for timing), depth 3,
width 128, training batch 2,048 with three dropout rates batched as one chunk, and the Adam fit
of the ridge λ with minibatch targets of 2,048 rows (27 per epoch, last partial kept). Times:

- training: ``--train-epochs`` epochs of the three members stacked (SGD, eval on validation),
  per member and epoch;
- the fit with ``targets="backward"`` (one backward pass per minibatch target, the authors'
  way) over ``--backward-epochs`` epochs, per epoch;
- the fit with ``targets="projected"`` (per-sample projections once, one backward pass per
  epoch) over ``--fit-epochs`` epochs, and its one-off projection pass.

Each fit runs its full epoch count (patience = epochs). It prints per-member costs scaled to
the issue's comparison (40 training epochs, 200 fit epochs) and to the paper's maxima (500
training epochs, 2,000 fit epochs), and the ratios fit / training. Goal: fit ≤ training.

``explain`` reads the ``projected`` tables of ``equality`` and prints the numbers of issue 15
(items 3 and 4): per true λ1 of Fig. 3 the stationarity of θ̂ and the λ1 signal against its
noise; per member of Fig. 5 the Adam fit's convergence and its learning-rate schedule.

``equality``: train every chunk of an analysis once (``--configfile``, default preset), match
every member with both ``targets`` ways, write both tables (``benchmarks/results/
fit_equality_<analysis>_<way>.parquet``, fixed provenance so equal tables are byte-identical)
and print the max relative difference of each λ̂ column and the two sha256s. Usage:

    python benchmarks/bench_fit_cost.py cost [--train-epochs 3] [--backward-epochs 3]
    python benchmarks/bench_fit_cost.py equality --analysis elastic_net [--configfile ...]
    python benchmarks/bench_fit_cost.py explain   # issue 15 items 3-4, from the equality tables
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
RATES = (0.0, 0.25, 0.5)


def _paper_data(n_train: int, n_val: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.rand(n_train + n_val, 784, generator=generator)
    y = torch.randint(0, 10, (n_train + n_val,), generator=generator)
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])


def _train(spec, data, val, epochs: int):
    from gradmatch import train

    start = time.perf_counter()
    result = train.train_batched(
        spec,
        seeds=[1, 2, 3],
        X=data[0],
        y=data[1],
        loss="cross_entropy",
        optimizer=train.SGD(lr=0.05, momentum=0.9, milestones=(60, 100, 200), gamma=0.1),
        epochs=epochs,
        batch_size=2048,
        drop_last=False,
        dropout=list(RATES),
        eval_data={"val": val},
        device="cpu",
        progress=False,
    )
    return result, time.perf_counter() - start


def _fit(model, X, y, way: str, epochs: int) -> tuple[float, float]:
    """(seconds, λ̂) of one ridge Adam fit with minibatch targets, the Fig. 5 options."""
    from gradmatch import train
    from gradmatch.core import autodiff
    from gradmatch.core.estimators import AdamOptions, match_gradients
    from gradmatch.core.regularizers import Ridge

    theta = autodiff.flat_parameters(model)
    target = autodiff.loss_gradient(model, "cross_entropy", X, y, batch_size=8192).numpy()
    options = AdamOptions(
        lr=0.05,
        max_epochs=epochs,
        patience=epochs,
        plateau_factor=0.5,
        plateau_patience=10,
        init_log_std=0.1,
        seed=1,
    )
    start = time.perf_counter()
    batches = train.minibatch_targets(model, "cross_entropy", X, y, 2048, 1, targets=way)
    fit = match_gradients(
        Ridge(), theta, target, method="adam", adam=options, target_batches=batches
    )
    return time.perf_counter() - start, float(fit.params["lambda"])


def cost(args) -> dict:
    from gradmatch import train

    data, val = _paper_data(args.n_train, args.n_val)
    spec = train.MLPSpec(784, (args.width,) * args.depth, 10)
    result, train_seconds = _train(spec, data, val, args.train_epochs)
    per_member_epoch = train_seconds / (len(RATES) * args.train_epochs)
    model = result.member(2).eval()  # the p = 0.5 member, in eval mode as it is matched
    X, y = data
    backward_seconds, backward_lambda = _fit(model, X, y, "backward", args.backward_epochs)
    short_seconds, short_lambda = _fit(model, X, y, "projected", args.backward_epochs)
    long_seconds, _ = _fit(model, X, y, "projected", args.fit_epochs)
    per_fit_epoch = {
        "backward": backward_seconds / args.backward_epochs,
        "projected": (long_seconds - short_seconds) / (args.fit_epochs - args.backward_epochs),
    }
    fixed = short_seconds - per_fit_epoch["projected"] * args.backward_epochs
    report = {
        "sizes": {
            "n_train": args.n_train,
            "depth": args.depth,
            "width": args.width,
            "params": int(theta_size(model)),
            "batch": 2048,
            "targets_per_fit_epoch": -(-args.n_train // 2048),
        },
        "measured": {
            "train_seconds": train_seconds,
            "train_epochs": args.train_epochs,
            "train_seconds_per_member_epoch": per_member_epoch,
            "fit_backward_seconds_per_epoch": per_fit_epoch["backward"],
            "fit_projected_seconds_per_epoch": per_fit_epoch["projected"],
            "fit_projected_fixed_seconds": fixed,
            "lambda_backward_vs_projected_rel": abs(short_lambda / backward_lambda - 1),
            "threads": torch.get_num_threads(),
        },
        "per_member": {},
    }
    for label, train_epochs, fit_epochs in (("issue", 40, 200), ("paper_max", 500, 2000)):
        training = per_member_epoch * train_epochs
        backward = per_fit_epoch["backward"] * fit_epochs
        projected = fixed + per_fit_epoch["projected"] * fit_epochs
        report["per_member"][label] = {
            "train_epochs": train_epochs,
            "fit_epochs": fit_epochs,
            "train_seconds": training,
            "fit_backward_seconds": backward,
            "fit_projected_seconds": projected,
            "fit_over_train_backward": backward / training,
            "fit_over_train_projected": projected / training,
        }
    return report


def theta_size(model) -> int:
    return sum(p.numel() for p in model.parameters())


def equality(args) -> dict:
    """Both ``targets`` ways on every chunk of one analysis, training once per chunk."""
    import pandas as pd

    from gradmatch import config as config_lib
    from gradmatch import train
    from gradmatch.experiments import dropout, elastic_net
    from gradmatch.io import write_parquet

    module = {"dropout": dropout, "elastic_net": elastic_net}[args.analysis]
    settings = config_lib.section_settings(
        config_lib.load_yaml(args.configfile), args.analysis, mnist_dir="data/raw/mnist"
    )
    trained = {}
    original_train_chunk, original_targets = module.train_chunk, train.minibatch_targets

    def train_once(*call, **kwargs):
        key = repr(call[1:3]) if args.analysis == "dropout" else repr(call[1])
        if key not in trained:
            trained[key] = original_train_chunk(*call, **kwargs)
        return trained[key]

    frames, seconds = {}, {}
    module.train_chunk = train_once
    try:
        for way in ("backward", "projected"):

            def forced(*call, way=way, **kwargs):
                return original_targets(*call, **{**kwargs, "targets": way})

            train.minibatch_targets = forced
            parts = []
            start = time.perf_counter()
            for chunk in range(module.n_chunks(settings)):
                parts.append(module.run(settings, chunk))
            seconds[way] = time.perf_counter() - start
            frames[way] = pd.concat(parts, ignore_index=True)
    finally:
        module.train_chunk, train.minibatch_targets = original_train_chunk, original_targets
    report = {"analysis": args.analysis, "configfile": args.configfile, "tables": {}}
    for way, frame in frames.items():
        path = RESULTS / f"fit_equality_{args.analysis}_{way}.parquet"
        write_parquet(frame, path, provenance={"benchmark": "bench_fit_cost equality"})
        report["tables"][way] = {
            "path": str(path),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "seconds_incl_first_training": seconds[way],
        }
    old, new = frames["backward"], frames["projected"]
    report["max_rel_diff"] = {
        column: float(np.nanmax(np.abs(new[column] / old[column] - 1)))
        for column in old.columns
        if column.startswith("lambda_hat") and column.endswith("adam")
    }
    report["epochs_equal"] = bool((old["fit_epochs_adam"] == new["fit_epochs_adam"]).all())
    numeric = old.select_dtypes("number").columns
    report["columns_differing"] = [
        column for column in numeric if not np.array_equal(old[column], new[column], equal_nan=True)
    ]
    return report


def explain_fig3(summary) -> dict:
    """Issue 15, item 3: per true λ1, the stationarity of θ̂ and the λ1 signal against noise."""
    import pandas as pd

    from gradmatch.report.claims.fig3 import BAND
    from gradmatch.report.claims.outcomes import band_recovery

    frame = summary.assign(
        negative_l1=summary["lambda_hat_l1_lstsq"] <= 0,
        noise_over_signal=summary["l1_unique_noise"] / summary["l1_unique_signal"],
        stationarity=summary["grad_objective_norm"] / summary["loss_grad_norm"],
    )
    per_l1 = frame.groupby("lambda_true_l1").agg(
        cells=("seed", "size"),
        share_lstsq_l1_le_0=("negative_l1", "mean"),
        mean_l1_lstsq=("lambda_hat_l1_lstsq", "mean"),
        mean_l1_nnls=("lambda_hat_l1_nnls", "mean"),
        share_nnls_l1_zero=("lambda_hat_l1_nnls", lambda v: float((v <= 0).mean())),
        mean_l1_adam=("lambda_hat_l1_adam", "mean"),
        median_grad_J=("grad_objective_norm", "median"),
        median_grad_L=("loss_grad_norm", "median"),
        median_grad_J_over_grad_L=("stationarity", "median"),
        median_l1_signal=("l1_signal_norm", "median"),
        median_l1_unique_signal=("l1_unique_signal", "median"),
        median_l1_unique_noise=("l1_unique_noise", "median"),
        median_noise_over_signal=("noise_over_signal", "median"),
        median_share_inside_beta=("share_inside_beta", "median"),
        median_design_cosine=("design_cosine", "median"),
    )
    low, high = BAND
    in_band = frame[
        frame["lambda_true_l1"].between(low * (1 - 1e-9), high * (1 + 1e-9))
        & frame["lambda_true_l2"].between(low * (1 - 1e-9), high * (1 + 1e-9))
    ]
    band = {}
    for method in ("lstsq", "nnls", "adam"):
        for coefficient in ("l1", "l2"):
            outcome = band_recovery(
                in_band,
                true_col=f"lambda_true_{coefficient}",
                estimate_col=f"lambda_hat_{coefficient}_{method}",
                band=BAND,
            )
            band[f"{coefficient}_{method}"] = outcome.measured
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(per_l1.T.to_string(float_format=lambda v: f"{v:.3g}"))
    return {"per_lambda1": json.loads(per_l1.to_json(orient="index")), "band_gap_decades": band}


def explain_fig5(members) -> dict:
    """Issue 15, item 4: per member, did the Adam fit converge; the trend with each estimator."""
    from gradmatch.core.stats import spearman

    frame = members.assign(
        ratio_adam_lstsq=members["lambda_hat_adam"] / members["lambda_hat_lstsq"],
        log_change=np.log(members["lambda_hat_adam"] / members["fit_lambda_start_adam"]),
    )
    columns = [
        "depth",
        "width",
        "dropout_rate",
        "seed",
        "lambda_hat_lstsq",
        "lambda_hat_adam",
        "ratio_adam_lstsq",
        "fit_lambda_start_adam",
        "log_change",
        "fit_loss_excess_adam",
        "fit_epochs_adam",
        "adam_converged",
    ]
    print(frame[columns].to_string(float_format=lambda v: f"{v:.4g}"))
    facets = {}
    for (depth, width), facet in frame[frame["has_dropout"] | (frame["dropout_rate"] == 0)].groupby(
        ["depth", "width"]
    ):
        medians = facet.groupby("dropout_rate")[["lambda_hat_lstsq", "lambda_hat_adam"]].median()
        facets[f"d{depth}_w{width}"] = {
            "spearman_members_lstsq": float(facet["spearman_rate_lambda_lstsq"].iloc[0]),
            "spearman_members_adam": float(facet["spearman_rate_lambda_adam"].iloc[0]),
            "spearman_medians_lstsq": spearman(medians.index, medians["lambda_hat_lstsq"]),
            "spearman_medians_adam": spearman(medians.index, medians["lambda_hat_adam"]),
            "converged": int(facet["adam_converged"].sum()),
            "members": len(facet),
        }
    summary = {
        "members": len(frame),
        "converged": int(frame["adam_converged"].sum()),
        "median_ratio_adam_lstsq": float(frame["ratio_adam_lstsq"].median()),
        "median_loss_excess": float(frame["fit_loss_excess_adam"].median()),
        "log_change_range": [float(frame["log_change"].min()), float(frame["log_change"].max())],
        "epochs_range": [int(frame["fit_epochs_adam"].min()), int(frame["fit_epochs_adam"].max())],
        "facets": facets,
    }
    print(json.dumps(summary, indent=2))
    return summary


def plateau_schedule(members, member: int = 0) -> dict:
    """The Adam fit of one member replayed on its exact objective, with the learning rate.

    f(λ) = (1/p)‖2λθ̂ + ∇L‖² = a(λ − λ*)² + f* with a = 4θ̂ᵀθ̂/p, λ* = λ̂_lstsq and
    f* = fit_loss_lstsq, all in the table; a design and target with these three numbers give
    the same Adam path (the gradient in β = log λ is λ·2a(λ − λ*)). ReduceLROnPlateau sees only
    the monitored losses, so feeding it the returned history reproduces its learning rates."""
    from gradmatch.core.adam import AdamOptions, fit_adam

    row = members.iloc[member]
    p = int(row["n_params"])
    direction = np.zeros(p)
    direction[0] = np.sqrt(row["theta_sq_norm"])
    design = 2.0 * direction[:, None]
    orthogonal = np.zeros(p)
    orthogonal[1] = np.sqrt(p * row["fit_loss_lstsq"])
    target = row["lambda_hat_lstsq"] * design[:, 0] + orthogonal
    options = AdamOptions(
        lr=0.05,
        max_epochs=2000,
        patience=100,
        plateau_factor=0.5,
        plateau_patience=10,
        init={"lambda": 1.0},
    )
    init = np.array([row["fit_lambda_start_adam"]])
    coefficients, epochs, history = fit_adam(design, target, True, init, options, None)
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([parameter], lr=options.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=10)
    rates, reductions = [], []
    for value in history:
        scheduler.step(value)
        rates.append(optimizer.param_groups[0]["lr"])
        if len(rates) > 1 and rates[-1] < rates[-2]:
            reductions.append(len(rates) - 1)
    relative = -np.diff(history) / np.asarray(history[:-1])
    return {
        "member": {key: row[key] for key in ("depth", "width", "dropout_rate", "seed")},
        "lambda_replayed": float(coefficients[0]),
        "lambda_table": float(row["lambda_hat_adam"]),
        "epochs": epochs,
        "lr_reductions_at_epochs": reductions[:12],
        "n_lr_reductions": len(reductions),
        "lr_final": rates[-1],
        "relative_improvement_per_epoch_at": {
            str(e): float(relative[e])
            for e in (0, 10, 50, 100, 200, 500, 1000)
            if e < len(relative)
        },
        "sum_of_lr": float(np.sum(rates)),
    }


def explain(args) -> dict:
    from gradmatch.io import read_parquet

    report = {}
    fig3 = RESULTS / "fit_equality_elastic_net_projected.parquet"
    fig5 = RESULTS / "fit_equality_dropout_projected.parquet"
    if fig3.exists():
        report["fig3"] = explain_fig3(read_parquet(fig3))
    if fig5.exists():
        members = read_parquet(fig5)
        report["fig5"] = explain_fig5(members)
        report["fig5_replay"] = [
            plateau_schedule(members, k) for k in (0, len(members) // 2, len(members) - 1)
        ]
        print(json.dumps(report["fig5_replay"], indent=2, default=str))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    timing = commands.add_parser("cost")
    timing.add_argument("--n-train", type=int, default=54_000)
    timing.add_argument("--n-val", type=int, default=6_000)
    timing.add_argument("--depth", type=int, default=3)
    timing.add_argument("--width", type=int, default=128)
    timing.add_argument("--train-epochs", type=int, default=3)
    timing.add_argument("--backward-epochs", type=int, default=3)
    timing.add_argument("--fit-epochs", type=int, default=200)
    same = commands.add_parser("equality")
    same.add_argument("--analysis", choices=("dropout", "elastic_net"), required=True)
    same.add_argument("--configfile", default="config/config.yaml")
    commands.add_parser("explain")
    args = parser.parse_args()
    run = {"cost": cost, "equality": equality, "explain": explain}[args.command]
    report = run(args)
    name = {"cost": "fit_cost", "explain": "fit_explain"}.get(
        args.command, f"fit_equality_{getattr(args, 'analysis', '')}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
