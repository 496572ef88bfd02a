"""Appendix: drift of gradient descent from the original and the modified gradient flow over time.

Barrett & Dherin (2022): gradient descent θ_{k+1} = θ_k − η∇L(θ_k) stays O(η²) close per step to
the *modified* flow

    dθ/dt = −∇L̃(θ) = −∇L(θ) − (η/2)·H(θ)∇L(θ),     L̃ = L + (η/4)‖∇L‖²,

but only O(η) close to the original flow dθ/dt = −∇L(θ). The paper's Eq. 6 estimator
(:mod:`gradmatch.core.igr`, Figure 6) relies on this one-step statement; here we check how long
it lasts. From one shared θ0 we run N steps of discrete GD and integrate both flows with
classical RK4 (:mod:`gradmatch.core.flows`; ``rk4_substeps`` per interval of length η, Hg by
double backpropagation), and record the drifts ‖θ_k^GD − θ_flow(kη)‖ and
‖θ_k^GD − θ_modified(kη)‖ and their ratio at every k.

Cases (float64 throughout):

* synthetic linear regression: X ~ N(0, I) of shape (n, p), β = beta_scale·N(0, I),
  y = Xβ + noise_std·N(0, 1), θ0 = 0, L(θ) = mean_i (x_iᵀθ − y_i)² (PyTorch MSE, no 1/2), one
  run per η in ``synthetic_lrs``;
* an MLP d → 64 → 32 → 10 without hidden biases (output bias kept), tanh or ReLU, cross-entropy,
  on ``mlp_samples`` training images (first entries of a permutation with seed ``seed`` of the
  train split of ``dataset``, normalised as in Figure 6 by :mod:`gradmatch.data.normalization`;
  MNIST is read from ``mnist_dir``, which the workflow fills), default PyTorch initialisation
  with ``torch.manual_seed(seed)``.

Values: the authors' ``barrett_igr_long_horizon`` as described in paper Appendix I.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gradmatch import settings as base
from gradmatch._lazy import lazy_import
from gradmatch.progress import progress_bar
from gradmatch.tables import Table, columns

torch = lazy_import("torch")
synthetic = lazy_import("gradmatch.data.synthetic")
autodiff = lazy_import("gradmatch.core.autodiff")
flows = lazy_import("gradmatch.core.flows")
data_norm = lazy_import("gradmatch.data.normalization")
train = lazy_import("gradmatch.train")

TABLES = {
    "drift": Table(
        columns(
            ("case", "str", "linear_eta<η> | mlp_<activation>"),
            ("model", "str", "linear | mlp"),
            ("activation", "str", "hidden activation of the MLP (none for linear)"),
            ("data", "str", "synthetic | the image data set"),
            ("lr", "float64", "GD step size η"),
            ("n_params", "int64", "p, scalar parameters of the model"),
            ("step", "int64", "GD step k"),
            ("drift_original", "float64", "‖θ_k − φ(kη)‖, GD against the gradient flow"),
            ("drift_modified", "float64", "‖θ_k − φ̃(kη)‖, GD against the modified flow"),
            ("loss_gd", "float64", "L(θ_k) on the full batch"),
            ("time", "float64", "flow time kη"),
            ("drift_ratio", "float64", "drift_modified/drift_original (NaN at k = 0)"),
            ("rk4_substeps", "int64", "RK4 substeps per interval η"),
            ("preset", "str", "scale preset"),
        ),
        key=("case", "step"),
        doc="one row per (case, step k): drifts of GD from both flows at time kη",
    )
}
# runtime: the least minutes a job asks; its rule asks max(this, margin × the cost projection)
# × attempt (gradmatch.cost.runtime_minutes)
RESOURCES = base.Resources(gpu=1, threads=2, runtime=15, mem_mb=8000)

StepSize = Annotated[float, Field(gt=0)]
Width = Annotated[int, Field(ge=1)]


class Settings(base.Settings):
    """Every value of the long-horizon comparison; defaults are the authors' (paper Appendix I)."""

    synthetic_samples: int = Field(500, ge=2, description="n, rows of X (paper: 500)")
    synthetic_features: int = Field(
        10, ge=1, description="p, columns of X (= parameters) (paper: 10)"
    )
    synthetic_beta_scale: float = Field(
        3.0, gt=0, description="β = beta_scale · N(0, I) (paper: 3.0)"
    )
    synthetic_noise_std: float = Field(0.1, ge=0, description="y = Xβ + noise_std · ε (paper: 0.1)")
    synthetic_lrs: tuple[StepSize, ...] = Field(
        (0.01, 0.03), min_length=1, description="GD step sizes η, one run each (paper: 0.01, 0.03)"
    )
    synthetic_steps: int = Field(50, ge=1, description="GD steps N (paper: 50)")
    mlp_hidden: tuple[Width, ...] = Field(
        (64, 32), description="hidden widths of the MLP, no hidden biases (paper: 64, 32)"
    )
    mlp_activations: tuple[Literal["tanh", "relu"], ...] = Field(
        ("tanh", "relu"), description="one MLP run per activation (paper: tanh, relu)"
    )
    mlp_lr: float = Field(0.01, gt=0, description="GD step size η of the MLP runs (paper: 0.01)")
    mlp_steps: int = Field(30, ge=0, description="GD steps N of the MLP runs (paper: 30)")
    mlp_samples: int = Field(
        1000, ge=1, description="training images in the MLP's full batch (paper: 1000)"
    )
    rk4_substeps: int = Field(
        20, ge=1, description="RK4 substeps per interval η for both flows (paper: 20)"
    )
    seed: int = Field(0, ge=0, description="data draw, permutation and torch init seed (paper: 0)")
    dataset: base.Dataset
    mnist_dir: base.MnistDir
    device: base.Device
    preset: base.Preset

    @model_validator(mode="after")
    def _checks(self):
        base.distinct("synthetic_lrs", self.synthetic_lrs)
        base.distinct("mlp_activations", self.mlp_activations)
        rows = base.DATASET_ROWS[self.dataset]["train"]
        if self.mlp_samples > rows:
            raise base.FieldError(
                "mlp_samples",
                self.mlp_samples,
                f"exceeds the {rows} training images of {self.dataset}; allowed: 1 .. {rows}",
            )
        n, p = self.synthetic_samples, self.synthetic_features
        base.fits_in_memory(
            "synthetic_samples",
            n,
            (n * (p + 1) + p * p) * 8,
            f"X, y and the p × p Hessian in float64: (synthetic_samples {n} × "
            f"(synthetic_features {p} + 1) + {p}²) × 8 bytes",
        )
        return self


def drift_trace(problem: Problem, lr: float, steps: int, substeps: int) -> dict[str, np.ndarray]:
    """GD and RK4 of the original and modified flows from θ0; drifts at t = kη, k = 0..steps.

    Returns numpy arrays ``step``, ``time`` = kη, ``drift_original`` = ‖θ_k − φ(kη)‖,
    ``drift_modified`` = ‖θ_k − φ̃(kη)‖ and ``loss_gd`` = L(θ_k). Both flows are integrated
    continuously from θ0 (never reset to the GD iterate), ``substeps`` RK4 steps per interval η.
    """
    model, loss, x, y = problem.model, problem.loss, problem.x, problem.y
    gd = original = modified = problem.theta0.double()
    rows: dict[str, list] = {"step": [], "drift_original": [], "drift_modified": [], "loss_gd": []}
    steps_bar = progress_bar(desc=f"igr_long_horizon: η={lr:g}", total=steps + 1, unit="steps")
    for step in range(steps + 1):
        rows["step"].append(step)
        rows["drift_original"].append(float(torch.linalg.vector_norm(gd - original)))
        rows["drift_modified"].append(float(torch.linalg.vector_norm(gd - modified)))
        rows["loss_gd"].append(problem.value(gd))
        steps_bar.update()
        if step == steps:
            break
        gd = gd - lr * autodiff.gradient(model, loss, x, y, gd).double()
        original = flows.gradient_flow(model, loss, x, y, lr, theta=original, substeps=substeps)
        modified = flows.modified_flow(model, loss, x, y, lr, lr, theta=modified, substeps=substeps)
    steps_bar.close()
    out = {key: np.asarray(value) for key, value in rows.items()}
    out["time"] = out["step"] * lr
    return out


@dataclass
class Problem:
    """A float64 model, its loss name and full batch (x, y), and the shared start θ0."""

    model: torch.nn.Module
    loss: str
    x: torch.Tensor
    y: torch.Tensor
    theta0: torch.Tensor

    def value(self, theta: torch.Tensor) -> float:
        """L(θ) on the full batch."""
        return autodiff.loss_value(self.model, self.loss, self.x, self.y, theta)


def synthetic_problem(settings: Settings, device) -> Problem:
    """Linear regression y = Xβ + noise, model x ↦ xᵀθ (no bias) from θ0 = 0, MSE (float64)."""
    generator = torch.Generator().manual_seed(settings.seed)
    p = settings.synthetic_features
    problem = synthetic.linear_regression(
        generator,
        settings.synthetic_samples,
        p,
        settings.synthetic_beta_scale,
        settings.synthetic_noise_std,
        draw_dtype=torch.float64,
    )
    x, y = problem.X, problem.y
    model = torch.nn.Linear(p, 1, bias=False).double().to(device)
    with torch.no_grad():
        model.weight.zero_()
    theta0 = torch.zeros(p, dtype=torch.float64, device=device)
    return Problem(model, "mse", x.to(device), y.to(device), theta0)


def mlp_problem(settings: Settings, activation: str, device) -> Problem:
    """MLP d → hidden → 10 (no hidden bias), CE, on the first ``mlp_samples`` permuted images."""
    x, y = data_norm.load_normalized(settings.dataset, "train", settings.mnist_dir)
    if settings.mlp_samples > len(x):
        raise ValueError(
            f"igr_long_horizon.mlp_samples = {settings.mlp_samples} exceeds the "
            f"{len(x)} training images of {settings.dataset}; lower it in the config"
        )
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(settings.seed))
    keep = order[: settings.mlp_samples]
    spec = train.MLPSpec(x.shape[1], settings.mlp_hidden, 10, activation, hidden_bias=False)
    torch.manual_seed(settings.seed)
    model = train.build_mlp(spec).double().to(device)
    theta0 = torch.cat([param.detach().reshape(-1) for param in model.parameters()])
    x = x[keep].to(device=device, dtype=torch.float64)
    return Problem(model, "cross_entropy", x, y[keep].to(device), theta0)


def _frame(trace: dict, **labels) -> pd.DataFrame:
    frame = pd.DataFrame(trace)
    frame["drift_ratio"] = frame["drift_modified"] / frame["drift_original"]
    for key, value in reversed(labels.items()):
        frame.insert(0, key, value)
    return frame


def cases(settings: Settings, device):
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


def cost_plan(settings: Settings, actual: dict[str, int] | None = None):
    """The steps of the job for :mod:`gradmatch.cost` (float64 throughout).

    Per case a fixed setup and N steps, each one gradient of GD, RK4 of the original flow
    (``rk4_substeps`` × 4 gradients) and of the modified flow (× 4 gradients with their
    Hessian–gradient products, ≈ 3 backward passes each); linear cases per η, MLP cases per
    activation. A case's setup is its data (the synthetic draw, or the normalised train split of
    ``dataset``: one flop per pixel) and the loss at θ0 (a forward pass over its rows). The job
    has no early stopping (``actual`` is accepted and unused).
    """
    from gradmatch import cost

    del actual  # fixed step counts
    per_step = 1 + 4 * settings.rk4_substeps + 12 * settings.rk4_substeps
    sizes = (base.DATASET_PIXELS[settings.dataset], *settings.mlp_hidden, 10)
    mlp_macs = cost.mlp_macs(sizes)
    n_linear, n_mlp = len(settings.synthetic_lrs), len(settings.mlp_activations)
    linear_flops = per_step * cost.training_flops(
        settings.synthetic_features, settings.synthetic_samples
    )
    mlp_flops = per_step * cost.training_flops(mlp_macs, settings.mlp_samples)
    linear_setup = cost.forward_flops(settings.synthetic_features, settings.synthetic_samples)
    pixels = base.DATASET_ROWS[settings.dataset]["train"] * base.DATASET_PIXELS[settings.dataset]
    mlp_setup = pixels + cost.forward_flops(mlp_macs, settings.mlp_samples)
    return cost.Plan(
        members=n_linear + n_mlp,
        params=mlp_macs + 10,
        phases=(
            cost.Phase("linear_case", n_linear, linear_setup, "float64"),
            cost.Phase("linear_step", n_linear * settings.synthetic_steps, linear_flops, "float64"),
            cost.Phase("mlp_case", n_mlp, mlp_setup, "float64"),
            cost.Phase("mlp_step", n_mlp * settings.mlp_steps, mlp_flops, "float64"),
        ),
    )


def run(settings: Settings) -> pd.DataFrame:
    """One row per (case, step k): drifts of GD from both flows at time kη, and their ratio.

    ``drift_ratio`` = drift_modified/drift_original is NaN at k = 0, where both drifts are 0.
    """
    device = train.resolve_device(settings.device)
    frames = []
    for labels, problem, lr, steps in cases(settings, device):
        trace = drift_trace(problem, lr, steps, settings.rk4_substeps)
        frames.append(_frame(trace, **labels, lr=lr, n_params=problem.theta0.numel()))
    table = pd.concat(frames, ignore_index=True)
    table["rk4_substeps"] = settings.rk4_substeps
    table["preset"] = settings.preset
    return TABLES["drift"].frame(table)
