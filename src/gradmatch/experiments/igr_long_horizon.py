"""Appendix: drift of gradient descent from the original and the modified gradient flow over time.

Barrett & Dherin (2022): gradient descent θ_{k+1} = θ_k − η∇L(θ_k) stays O(η²) close per step to
the *modified* flow

    dθ/dt = −∇L̃(θ) = −∇L(θ) − (η/2)·H(θ)∇L(θ),     L̃ = L + (η/4)‖∇L‖²,

but only O(η) close to the original flow dθ/dt = −∇L(θ). The paper's Eq. 6 estimator
(:mod:`gradmatch.experiments.igr`) relies on this one-step statement; here we check how long it
lasts. From one shared θ0 we run N steps of discrete GD and integrate both flows with classical
RK4 (``rk4_substeps`` per interval of length η, Hg by double backpropagation), and record the
drifts ‖θ_k^GD − θ_flow(kη)‖ and ‖θ_k^GD − θ_modified(kη)‖ and their ratio at every k.

Cases (float64 throughout):

* synthetic linear regression: X ~ N(0, I) of shape (n, p), β = beta_scale·N(0, I),
  y = Xβ + noise_std·N(0, 1), θ0 = 0, L(θ) = mean_i (x_iᵀθ − y_i)² (PyTorch MSE, no 1/2), one
  run per η in ``synthetic_lrs``;
* an MLP d → 64 → 32 → 10 without hidden biases (output bias kept), tanh or ReLU, cross-entropy,
  on ``mlp_samples`` training images (first entries of a permutation with seed ``seed`` of the
  train split of ``dataset``, normalised as in :mod:`gradmatch.experiments.igr`), default PyTorch
  initialisation with ``torch.manual_seed(seed)``.

Values: the authors' ``barrett_igr_long_horizon`` as described in paper Appendix I.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from gradmatch.core import flows
from gradmatch.experiments.igr import load_normalized
from gradmatch.train.devices import resolve_device
from gradmatch.train.models import ACTIVATIONS, MLPSpec, build_mlp


@dataclass(frozen=True)
class Settings:
    """Every value of the long-horizon comparison; defaults are the authors'."""

    synthetic_samples: int = 500  # n rows of X
    synthetic_features: int = 10  # p columns of X (= parameters)
    synthetic_beta_scale: float = 3.0  # β = scale·N(0, I)
    synthetic_noise_std: float = 0.1  # y = Xβ + noise_std·ε
    synthetic_lrs: tuple[float, ...] = (0.01, 0.03)  # one run per η
    synthetic_steps: int = 50  # GD steps N
    mlp_hidden: tuple[int, ...] = (64, 32)  # hidden widths of the MLP (no hidden biases)
    mlp_activations: tuple[str, ...] = ("tanh", "relu")  # one run per activation
    mlp_lr: float = 0.01  # η of the MLP runs
    mlp_steps: int = 30  # GD steps N of the MLP runs
    mlp_samples: int = 1000  # training images in the full batch
    rk4_substeps: int = 20  # RK4 substeps per interval of length η
    seed: int = 0  # data draw, permutation and torch init seed
    dataset: str = "mnist"  # images of the MLP runs (global key): mnist | digits
    data_root: str = "data/raw/mnist"  # MNIST IDX files (dataset mnist only)
    device: str = "auto"  # auto | cpu | cuda (global key)
    preset: str = "default"  # recorded in every row (global key)

    def __post_init__(self) -> None:
        bad = [
            name
            for name, ok in {
                "synthetic_samples": self.synthetic_samples >= 2,
                "synthetic_features": self.synthetic_features >= 1,
                "synthetic_lrs": len(self.synthetic_lrs) > 0 and min(self.synthetic_lrs) > 0,
                "synthetic_steps": self.synthetic_steps >= 1,
                "mlp_lr": self.mlp_lr > 0,
                "mlp_steps": self.mlp_steps >= 0,
                "mlp_samples": self.mlp_samples >= 1,
                "rk4_substeps": self.rk4_substeps >= 1,
                "mlp_activations": set(self.mlp_activations) <= set(ACTIVATIONS),
                "dataset": self.dataset in ("mnist", "digits"),
            }.items()
            if not ok
        ]
        if bad:
            raise ValueError(
                f"igr_long_horizon: invalid setting(s) {bad}; need sizes and step counts >= 1, "
                f"positive step sizes, activations in {sorted(ACTIVATIONS)} and dataset "
                "mnist | digits"
            )


def drift_trace(problem: Problem, lr: float, steps: int, substeps: int) -> dict[str, np.ndarray]:
    """GD and RK4 of the original and modified flows from θ0; drifts at t = kη, k = 0..steps.

    Returns numpy arrays ``step``, ``time`` = kη, ``drift_original`` = ‖θ_k − φ(kη)‖,
    ``drift_modified`` = ‖θ_k − φ̃(kη)‖ and ``loss_gd`` = L(θ_k). Both flows are integrated
    continuously from θ0 (never reset to the GD iterate), ``substeps`` RK4 steps per interval η.
    """
    model, loss, x, y = problem.model, problem.loss, problem.x, problem.y
    gd = original = modified = problem.theta0.double()
    rows: dict[str, list] = {"step": [], "drift_original": [], "drift_modified": [], "loss_gd": []}
    for step in tqdm(range(steps + 1), desc=f"long horizon η={lr:g}", leave=False):
        rows["step"].append(step)
        rows["drift_original"].append(float(torch.linalg.vector_norm(gd - original)))
        rows["drift_modified"].append(float(torch.linalg.vector_norm(gd - modified)))
        rows["loss_gd"].append(problem.value(gd))
        if step == steps:
            break
        gd = gd - lr * flows.gradient(model, loss, x, y, gd).double()
        original = flows.gradient_flow(model, loss, x, y, lr, theta=original, substeps=substeps)
        modified = flows.modified_flow(model, loss, x, y, lr, lr, theta=modified, substeps=substeps)
    out = {key: np.asarray(value) for key, value in rows.items()}
    out["time"] = out["step"] * lr
    return out


@dataclass
class Problem:
    """A float64 model, its loss name and full batch (x, y), and the shared start θ0."""

    model: nn.Module
    loss: str
    x: torch.Tensor
    y: torch.Tensor
    theta0: torch.Tensor

    def value(self, theta: torch.Tensor) -> float:
        """L(θ) on the full batch."""
        params, start = {}, 0
        for name, parameter in self.model.named_parameters():
            params[name] = theta[start : start + parameter.numel()].view_as(parameter)
            start += parameter.numel()
        with torch.no_grad():
            output = torch.func.functional_call(self.model, params, (self.x,))
        if self.loss == "mse":
            return float(nn.functional.mse_loss(output.reshape(self.y.shape), self.y))
        return float(nn.functional.cross_entropy(output, self.y))


def synthetic_problem(settings: Settings, device: torch.device) -> Problem:
    """Linear regression y = Xβ + noise, model x ↦ xᵀθ (no bias) from θ0 = 0, MSE (float64)."""
    generator = torch.Generator().manual_seed(settings.seed)
    n, p = settings.synthetic_samples, settings.synthetic_features
    x = torch.randn(n, p, generator=generator, dtype=torch.float64)
    beta = settings.synthetic_beta_scale * torch.randn(p, generator=generator, dtype=torch.float64)
    noise = torch.randn(n, generator=generator, dtype=torch.float64)
    y = x @ beta + settings.synthetic_noise_std * noise
    model = nn.Linear(p, 1, bias=False).double().to(device)
    with torch.no_grad():
        model.weight.zero_()
    theta0 = torch.zeros(p, dtype=torch.float64, device=device)
    return Problem(model, "mse", x.to(device), y.to(device), theta0)


def mlp_problem(settings: Settings, activation: str, device: torch.device) -> Problem:
    """MLP d → hidden → 10 (no hidden bias), CE, on the first ``mlp_samples`` permuted images."""
    x, y = load_normalized(settings.dataset, "train", settings.data_root)
    if settings.mlp_samples > len(x):
        raise ValueError(
            f"igr_long_horizon.mlp_samples = {settings.mlp_samples} exceeds the "
            f"{len(x)} training images of {settings.dataset}; lower it in the config"
        )
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(settings.seed))
    keep = order[: settings.mlp_samples]
    spec = MLPSpec(x.shape[1], settings.mlp_hidden, 10, activation, hidden_bias=False)
    torch.manual_seed(settings.seed)
    model = build_mlp(spec).double().to(device)
    theta0 = torch.cat([param.detach().reshape(-1) for param in model.parameters()])
    x = x[keep].to(device=device, dtype=torch.float64)
    return Problem(model, "cross_entropy", x, y[keep].to(device), theta0)


def _frame(trace: dict, **labels) -> pd.DataFrame:
    frame = pd.DataFrame(trace)
    frame["drift_ratio"] = frame["drift_modified"] / frame["drift_original"]
    for key, value in reversed(labels.items()):
        frame.insert(0, key, value)
    return frame


def cases(settings: Settings, device: torch.device):
    """(labels, problem, η, steps) of every run: synthetic per η, then MLP per activation."""
    for lr in settings.synthetic_lrs:
        labels = {
            "case": f"linear_eta{lr:g}",
            "model": "linear",
            "activation": "none",
            "data": "synthetic",
        }
        yield labels, synthetic_problem(settings, device), lr, settings.synthetic_steps
    for activation in settings.mlp_activations:
        labels = {
            "case": f"mlp_{activation}",
            "model": "mlp",
            "activation": activation,
            "data": settings.dataset,
        }
        problem = mlp_problem(settings, activation, device)
        yield labels, problem, settings.mlp_lr, settings.mlp_steps


def run(settings: Settings) -> pd.DataFrame:
    """One row per (case, step k): drifts of GD from both flows at time kη, and their ratio.

    ``drift_ratio`` = drift_modified/drift_original is NaN at k = 0, where both drifts are 0.
    """
    device = resolve_device(settings.device)
    frames = []
    for labels, problem, lr, steps in cases(settings, device):
        trace = drift_trace(problem, lr, steps, settings.rk4_substeps)
        frames.append(_frame(trace, **labels, lr=lr, n_params=problem.theta0.numel()))
    table = pd.concat(frames, ignore_index=True)
    table["rk4_substeps"] = settings.rk4_substeps
    table["preset"] = settings.preset
    return table
