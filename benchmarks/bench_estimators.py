"""Benchmark: exact least squares against the authors' Adam fit on the Fig. 3 elastic-net problem.

The problem is the Fig. 3 setting (paper H.2): X ~ N(0, I_10), n = 5000 (80 % train),
y = Xβ + 0.5ε with β ~ 5·N(0, I), an MLP 10 → 200 → 1 (p = 2,401) trained with Adam (lr 1e-3,
batch 32) on MSE + λ1 Σ h_β(θ) + λ2 Σ θ² (β = 1e-3). The matching target is −∇ of the training
MSE. Compared on the same θ̂ (ElasticNet family, β = 1e-3):

- ``lstsq``: the exact minimiser of Eq. 3 (full-batch target);
- ``adam`` full batch: Adam lr 1e-2, ≤ 1000 epochs, patience 50, λ = exp(β) from 1;
- ``adam`` stochastic, as the authors ran it: the same, one batch-32 target per step from the
  shuffled training loader, early stopping on the last batch's fit loss.

Objectives are Eq. 3's mean squared misfit against the full-batch target. Ratios come from one
run. Goal (issue 4): lstsq ≥ 100× faster at an equal or lower objective.

    python benchmarks/bench_estimators.py [--train-epochs 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import torch

from gradmatch import AdamOptions, ElasticNet, flat_parameters, loss_gradient, match_gradients

SMOOTHING = 1e-3
AUTHORS_ADAM = AdamOptions(lr=1e-2, max_epochs=1000, patience=50)


def _problem(seed: int, n: int = 5000, d: int = 10):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=generator)
    beta = 5.0 * torch.randn(d, generator=generator)
    y = X @ beta + 0.5 * torch.randn(n, generator=generator)
    train = torch.randperm(n, generator=generator)[: int(0.8 * n)]
    return X[train], y[train]


def _train(X, y, lambda_l1, lambda_l2, epochs, seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(10, 200), torch.nn.ReLU(), torch.nn.Linear(200, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X) - 31, 32):
            batch = order[start : start + 32]
            theta = torch.cat([p.reshape(-1) for p in model.parameters()])
            penalty = (
                lambda_l1
                * torch.nn.functional.smooth_l1_loss(
                    theta, torch.zeros_like(theta), beta=SMOOTHING, reduction="sum"
                )
                + lambda_l2 * (theta**2).sum()
            )
            loss = torch.nn.functional.mse_loss(model(X[batch])[:, 0], y[batch]) + penalty
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def _timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-epochs", type=int, default=20)
    parser.add_argument("--lambda-l1", type=float, default=1e-2)
    parser.add_argument("--lambda-l2", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    X, y = _problem(args.seed)
    model = _train(X, y, args.lambda_l1, args.lambda_l2, args.train_epochs, args.seed)
    theta = flat_parameters(model)
    target = loss_gradient(model, "mse", X, y).numpy()
    family = ElasticNet(beta=SMOOTHING)
    print(
        f"p = {theta.size}, n_train = {len(X)}, true (lambda_l1, lambda_l2) = "
        f"({args.lambda_l1}, {args.lambda_l2}), trained {args.train_epochs} epochs"
    )

    match_gradients(family, theta, target)  # warm-up
    repeats = 20
    exact, total = _timed(lambda: [match_gradients(family, theta, target) for _ in range(repeats)])
    exact, lstsq_seconds = exact[-1], total / repeats

    full, full_seconds = _timed(
        lambda: match_gradients(family, theta, target, method="adam", adam=AUTHORS_ADAM)
    )

    loader = torch.Generator().manual_seed(args.seed + 1)

    def target_batches(epoch):
        order = torch.randperm(len(X), generator=loader)
        for start in range(0, len(X) - 31, 32):  # batch 32, shuffled, drop_last
            batch = order[start : start + 32]
            yield loss_gradient(model, "mse", X[batch], y[batch])

    stochastic, stochastic_seconds = _timed(
        lambda: match_gradients(
            family, theta, target, method="adam", adam=AUTHORS_ADAM, target_batches=target_batches
        )
    )

    rows = [
        ("lstsq", exact, lstsq_seconds),
        ("adam full-batch", full, full_seconds),
        ("adam stochastic (authors)", stochastic, stochastic_seconds),
    ]
    print(
        f"{'method':28s} {'seconds':>10s} {'epochs':>7s} {'objective':>12s} "
        f"{'lambda_l1':>11s} {'lambda_l2':>11s}"
    )
    for name, fit, seconds in rows:
        print(
            f"{name:28s} {seconds:10.4g} {str(fit.epochs or '-'):>7s} {fit.loss:12.6g} "
            f"{fit.params['lambda_l1']:11.5g} {fit.params['lambda_l2']:11.5g}"
        )
    for name, fit, seconds in rows[1:]:
        print(
            f"{name}: time ratio adam/lstsq = {seconds / lstsq_seconds:.0f}x, "
            f"objective ratio adam/lstsq = {fit.loss / exact.loss:.6f}"
        )


if __name__ == "__main__":
    main()
