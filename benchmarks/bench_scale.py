"""Benchmark: gradient matching at p ≈ 10⁷ parameters (issue 16, item 3).

An MLP 1000 → 3000 → 2000 → 500 → 10 (p = 10,012,010 float32 parameters, 40 MB) on random
data. Measured, each in its own subprocess:

- ``loss_gradient``: −∇L of the mean cross-entropy over a DataLoader of 512 random rows
  (batches of 128), :func:`gradmatch.core.autodiff.loss_gradient`;
- the fits, on θ = the MLP's weights (float32 torch tensor) and a synthetic target
  b = 2λ_layer θ + λ1 h_β'(θ) + noise (float32) with known per-layer λ: ``Ridge``, per-layer
  ``Ridge(groups=parameter_groups(model))``, ``ElasticNet(beta=1e-3)`` and ``DiagQuadratic``
  (its closed form), each with ``match_gradients(..., method="lstsq")`` and its HC1 errors.

Time: wall clock of the call (after a warm-up fit on a small problem, so imports are excluded).
Peak memory: the process's peak resident set size during the call above its resident size just
before it: the peak (VmHWM) is reset by writing 5 to /proc/self/clear_refs, then read from
/proc/self/status after the call. This counts every allocation that touched memory, torch's
included (tracemalloc would miss them). Goal on CPU: every fit ≤ 2 s and ≤ 3× the parameters'
memory (120 MB at 10⁷ float32 parameters). The machine's load (``uptime``) is printed, since
timings on a shared machine depend on it. Torch runs one thread by default (``--threads``): on
the shared 2-core machine, with a load of 10-20, two OpenMP threads made every fit 10-15x slower
than one (spin-waiting on a busy core), measured at p = 2·10⁶ in one run.

    python benchmarks/bench_scale.py [--device cpu] [--out benchmarks/results/bench_scale_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

WIDTHS = (1000, 3000, 2000, 500, 10)
FITS = ("ridge", "ridge_per_layer", "elastic_net", "diag_quadratic")
CASES = ("loss_gradient", *FITS)
GOAL_SECONDS, GOAL_MEMORY_RATIO = 2.0, 3.0
LAYER_DECAY = (1e-3, 2e-3, 5e-3, 1e-2)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _measure(function):
    """(seconds, peak resident bytes above the resident size before the call, result)."""
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current VmRSS
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - start
    return seconds, (_status_kib("VmHWM") - before) * 1024, result


def _model(device):
    import torch

    torch.manual_seed(0)
    layers = []
    for index, (width_in, width_out) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:], strict=True)):
        layers.append(torch.nn.Linear(width_in, width_out))
        if index < len(WIDTHS) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(device)


def _theta_and_target(model):
    """θ (float32, on the model's device) and b = 2λ_layer θ + 1e-4 h_β'(θ) + noise."""
    import torch

    from gradmatch.core.groups import parameter_groups

    with torch.no_grad():
        theta = torch.cat([p.reshape(-1) for p in model.parameters()])
        target = torch.empty_like(theta)
        groups = parameter_groups(model)
        for start, stop, group in groups.segments:
            target[start:stop] = 2 * LAYER_DECAY[group] * theta[start:stop]
        target += 1e-4 * theta.sign()
        target += 1e-6 * torch.randn(theta.shape, generator=torch.Generator().manual_seed(1)).to(
            theta.device
        )
    return theta, target, groups


def _family(case, groups):
    from gradmatch import DiagQuadratic, ElasticNet, Ridge

    return {
        "ridge": Ridge(),
        "ridge_per_layer": Ridge(groups=groups),
        "elastic_net": ElasticNet(beta=1e-3),
        "diag_quadratic": DiagQuadratic(),
    }[case]


def _child(case: str, device: str, threads: int) -> dict:
    import torch

    from gradmatch import UnderdeterminedWarning, loss_gradient, match_gradients

    torch.set_num_threads(threads)
    model = _model(device)
    p = sum(parameter.numel() for parameter in model.parameters())
    parameter_bytes = 4 * p
    if case == "loss_gradient":
        generator = torch.Generator().manual_seed(2)
        X = torch.randn(512, WIDTHS[0], generator=generator).to(device)
        y = torch.randint(0, WIDTHS[-1], (512,), generator=generator).to(device)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=128)
        loss_gradient(model, "cross_entropy", [(X[:8], y[:8])])  # warm-up
        seconds, peak, gradient = _measure(lambda: loss_gradient(model, "cross_entropy", loader))
        detail = {"gradient_norm": float(gradient.norm())}
    else:
        theta, target, groups = _theta_and_target(model)
        family = _family(case, groups)
        small = slice(0, 4096)
        warm_family = family if case != "ridge_per_layer" else _family("ridge", groups)
        match_gradients(warm_family, theta[small], target[small])  # imports, first calls
        # an exactly zero weight leaves its q_j unidentified: allowed, and its count reported
        allow = case == "diag_quadratic"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnderdeterminedWarning)
            seconds, peak, fit = _measure(
                lambda: match_gradients(family, theta, target, allow_underdetermined=allow)
            )
        params = fit.params
        if case == "diag_quadratic":
            params = {"q_median": float(fit.params["q"].median())}
        detail = {
            "params": params,
            "residual_ratio": fit.residual_ratio,
            "rank": fit.rank,
            "rank_deficiency": fit.rank_deficiency,
        }
        if case != "diag_quadratic":
            detail["stderr"] = [float(value) for value in fit.stderr]
    return {
        "case": case,
        "device": device,
        "p": p,
        "seconds": seconds,
        "peak_bytes": peak,
        "parameter_bytes": parameter_bytes,
        "memory_ratio": peak / parameter_bytes,
        "torch_threads": torch.get_num_threads(),
        **detail,
    }


def _run_child(case: str, device: str, threads: int) -> dict:
    command = [sys.executable, __file__, "--child", case, "--device", device]
    command += ["--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark case {case} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(temporary, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: see the docstring)"
    )
    parser.add_argument("--child", choices=CASES, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_child(args.child, args.device, args.threads)))
        return
    load_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    rows = [_run_child(case, args.device, args.threads) for case in CASES]
    load_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"p = {rows[0]['p']:,} float32 parameters ({rows[0]['parameter_bytes'] / 1e6:.0f} MB)")
    print(f"load before: {load_before}\nload after:  {load_after}")
    print(f"{'case':18s} {'seconds':>8s} {'peak MB':>8s} {'x params':>8s} {'goal':>5s}")
    for row in rows:
        fit = row["case"] in FITS
        ok = row["seconds"] <= GOAL_SECONDS and row["memory_ratio"] <= GOAL_MEMORY_RATIO
        row["within_goal"] = ok if fit else None
        print(
            f"{row['case']:18s} {row['seconds']:8.3f} {row['peak_bytes'] / 1e6:8.1f} "
            f"{row['memory_ratio']:8.2f} {('ok' if ok else 'MISS') if fit else '-':>5s}"
        )
    out = args.out or Path(__file__).parent / "results" / f"bench_scale_{args.device}.json"
    payload = {
        "goal": {"seconds": GOAL_SECONDS, "memory_ratio": GOAL_MEMORY_RATIO},
        "memory_method": "peak VmHWM above VmRSS before the call, reset via /proc/self/clear_refs",
        "torch_threads": args.threads,
        "load_before": load_before,
        "load_after": load_after,
        "rows": rows,
    }
    _write_json(out, payload)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
