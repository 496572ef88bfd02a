"""Batched training vs a plain PyTorch loop: K members trained as one stacked computation against
the same K trained one after another (nn.Sequential + torch.optim.Adam), same epochs, on CPU.

Fig 3 shapes: MLP 10 → 200 ReLU → 1, MSE + elastic-net penalty, Adam lr 1e-3, batch 32,
per-member data. Prints the wall times and their ratio (goal ≥ 5× on CPU). Usage:

    python benchmarks/bench_batched_training.py [--members 10] [--epochs 3] [--n 4000]
"""

from __future__ import annotations

import argparse
import time

import torch

from gradmatch.train import Adam, ElasticNetPenalty, MLPSpec, build_mlp, train_batched

SPEC = MLPSpec(10, (200,), 1)
BETA = 1e-3


def plain_loop(seed: int, X, y, epochs: int, batch_size: int, lambdas) -> None:
    """One member, the usual way: nn.Sequential, torch.optim.Adam, a randperm per epoch."""
    torch.manual_seed(seed)
    model = build_mlp(SPEC)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order_gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(X.shape[0], generator=order_gen)
        for step in range(X.shape[0] // batch_size):
            rows = order[step * batch_size : (step + 1) * batch_size]
            loss = torch.nn.functional.mse_loss(model(X[rows]).squeeze(-1), y[rows])
            flat = torch.cat([p.flatten() for p in model.parameters()])
            smooth = torch.nn.functional.smooth_l1_loss(
                flat, torch.zeros_like(flat), reduction="sum", beta=BETA
            )
            loss = loss + lambdas[0] * smooth + lambdas[1] * flat.square().sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n", type=int, default=4000, help="training rows per member")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    k = args.members
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(k, args.n, 10, generator=generator)
    y = torch.randn(k, args.n, generator=generator)
    lambda1 = torch.logspace(-4, 1, k).tolist()
    lambda2 = lambda1[::-1]

    start = time.perf_counter()
    for member in range(k):
        plain_loop(
            member, X[member], y[member], args.epochs, 32, (lambda1[member], lambda2[member])
        )
    plain = time.perf_counter() - start

    start = time.perf_counter()
    train_batched(
        SPEC,
        list(range(k)),
        X,
        y,
        optimizer=Adam(lr=1e-3),
        epochs=args.epochs,
        batch_size=32,
        penalty=ElasticNetPenalty(lambda1, lambda2, beta=BETA),
        device=args.device,
        progress=False,
    )
    batched = time.perf_counter() - start
    print(
        f"K={k} members, {args.epochs} epochs, {args.n // 32} steps/epoch, device {args.device}, "
        f"{args.threads} thread(s): one after another {plain:.2f} s, batched {batched:.2f} s, "
        f"ratio {plain / batched:.1f}x"
    )


if __name__ == "__main__":
    main()
