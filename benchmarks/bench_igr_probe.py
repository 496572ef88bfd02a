"""Cost of one Eq. 6 probe step against one training epoch, and the probe's peak memory (Fig 6).

Model: the Fig 6 network (paper H.5), d = 784 → 5 × [width, tanh, no bias] → 10 (+ bias).
Inputs are Gaussian noise of MNIST's shape (the cost does not depend on the pixel values).

- epoch: one pass of plain SGD (batch 128, η = 0.01) over 10,000 examples (79 steps), float32,
  solo ``nn.Sequential`` (one member of the batched trainer does the same arithmetic);
- probe step: one step of :func:`gradmatch.core.igr.estimate_igr` on 2,048 examples, i.e. g
  and Hg by double backpropagation plus RK4 of the gradient flow over time η with 10 substeps
  (40 gradient evaluations), in ``--probe-dtype`` (float64 = the igr default).

Memory: each width runs in its own subprocess; the probe's peak is the growth of the process's
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, Linux KiB) across the
probe step, i.e. memory the probe needed beyond the model, the data and one training epoch.
Each time is the minimum over 3 repeats after a short warm-up (5 SGD steps, one small gradient),
which excludes one-off costs and most interference from other processes.
(tracemalloc cannot see torch's C allocations, so it is not used.) One run, wall-clock times.

    python benchmarks/bench_igr_probe.py [--widths 50 100 200 400] [--probe-dtype float64]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from gradmatch.core import autodiff, igr
from gradmatch.train import MLPSpec, build_mlp

N_TRAIN, PROBE, BATCH, LR, FEATURES = 10_000, 2048, 128, 0.01, 784
REPEATS = 3  # each time is the minimum of 3 runs: the machine is shared, the minimum is robust


def one_epoch(model, x, y) -> float:
    """Seconds for one epoch of plain minibatch SGD."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(17))
    start = time.perf_counter()
    for step in range(0, len(x), BATCH):
        rows = order[step : step + BATCH]
        loss = torch.nn.functional.cross_entropy(model(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def probe_step(model, x, y) -> float:
    """Seconds for one Eq. 6 probe step (g, Hg and RK4 over time η with 10 substeps)."""
    start = time.perf_counter()
    igr.estimate_igr(model, "cross_entropy", x, y, LR, probe_steps=1)
    return time.perf_counter() - start


def child(width: int, probe_dtype: str) -> dict:
    """Time an epoch and a probe step at ``width``; peak-RSS growth of the probe step."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN, FEATURES, generator=generator)
    y = torch.randint(0, 10, (N_TRAIN,), generator=generator)
    spec = MLPSpec(FEATURES, (width,) * 5, 10, "tanh", hidden_bias=False)
    model = build_mlp(spec)
    one_epoch(model, x[: 5 * BATCH], y[: 5 * BATCH])  # warm-up: one-off allocations
    epoch_s = min(one_epoch(model, x, y) for _ in range(REPEATS))
    dtype = {"float32": torch.float32, "float64": torch.float64}[probe_dtype]
    model = model.to(dtype)
    x_probe = x[:PROBE].to(dtype)
    autodiff.gradient(model, "cross_entropy", x_probe[:256], y[:256])  # warm-up
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    probe_s = min(probe_step(model, x_probe, y[:PROBE]) for _ in range(REPEATS))
    after_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "width": width,
        "p": spec.n_parameters(),
        "epoch_s": epoch_s,
        "probe_step_s": probe_s,
        "probe_peak_growth_mib": (after_kib - before_kib) / 1024,
        "process_peak_mib": after_kib / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--probe-dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.probe_dtype)))
        return 0
    print(
        f"threads={torch.get_num_threads()} probe_dtype={args.probe_dtype} "
        f"epoch: {N_TRAIN} examples / batch {BATCH}; probe: {PROBE} examples, RK4 10 substeps"
    )
    print(
        f"{'width':>6} {'p':>10} {'epoch s':>9} {'probe step s':>13} {'ratio':>7} "
        f"{'probe peak MiB':>15} {'process peak MiB':>17}"
    )
    for width in args.widths:
        command = [
            sys.executable,
            __file__,
            "--child",
            str(width),
            "--probe-dtype",
            args.probe_dtype,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(result.stdout.strip().splitlines()[-1])
        ratio = row["probe_step_s"] / row["epoch_s"]
        print(
            f"{width:>6} {row['p']:>10,} {row['epoch_s']:>9.3f} {row['probe_step_s']:>13.3f} "
            f"{ratio:>7.2f} {row['probe_peak_growth_mib']:>15.1f} "
            f"{row['process_peak_mib']:>17.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
