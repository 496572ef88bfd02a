"""Figure 2: SGD steps against the full-batch gradient flow on a two-parameter tanh model.

The model is f(x; θ) = tanh(θ₁x + θ₂) with the mean squared error
L(θ) = (1/n) Σ (f(x_i; θ) − y_i)² on n = 96 points x = linspace(−2.5, 2.5) and the target
y = 0.75·tanh(1.4x − 0.35) + 0.12·sin(2.7x). A reference minimum θ* is found with Adam; the
start θ0 = θ* + d·u lies at distance d along a random unit vector u. From θ0, full-batch
gradient descent with a small step (``flow_lr``; :func:`small_step_descent`, not an ODE solver)
stands in for the gradient flow dθ/dt = −∇L(θ) and is drawn as the path ``gradient_flow``; SGD
with a large step follows minibatch gradients, and at each iterate θ_k both the full-batch step
−η∇L(θ_k) and the minibatch step −η∇L_B(θ_k) are recorded. Their difference is the
implicit regularization the trajectory form of the estimator (paper Eq. 4) attributes to SGD.

Values: paper Appendix H.1 and the authors' ``make_sgd_vs_full_batch``. Computed in float64
(the authors used float32; the difference is far below the width of a line).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gradmatch import settings as base
from gradmatch._lazy import lazy_import
from gradmatch.tables import Table, columns

torch = lazy_import("torch")

PRESET = columns(("preset", "str", "scale preset"))
THETA = columns(
    ("theta_1", "float64", "θ₁, the slope inside tanh"),
    ("theta_2", "float64", "θ₂, the offset inside tanh"),
)
TABLES = {
    "path": Table(
        columns(
            ("path", "str", "gradient_flow (small-step full-batch GD) | sgd"),
            ("step", "int64", "iterate index k"),
        )
        + THETA
        + columns(("loss", "float64", "L(θ_k), full-batch mean squared error"))
        + PRESET,
        key=("path", "step"),
        doc="the iterates of the gradient-flow proxy and of SGD",
    ),
    "sgd_steps": Table(
        columns(("step", "int64", "SGD step k"))
        + THETA
        + columns(
            ("full_step_1", "float64", "θ₁ component of −η∇L(θ_k), the full-batch step"),
            ("full_step_2", "float64", "θ₂ component of −η∇L(θ_k)"),
            ("batch_step_1", "float64", "θ₁ component of −η∇L_B(θ_k), the minibatch step"),
            ("batch_step_2", "float64", "θ₂ component of −η∇L_B(θ_k)"),
            ("learning_rate", "float64", "SGD step size η"),
            ("batch_indices", "str", "indices of the minibatch B, space-separated"),
        )
        + PRESET,
        key=("step",),
        doc="one row per SGD step: its iterate and both step vectors (the arrows of Fig. 2)",
    ),
    "markers": Table(
        columns(("marker", "str", "theta_star (reference minimum) | theta_0 (start)"))
        + THETA
        + columns(
            ("loss", "float64", "L(θ) at the marker"),
            ("grad_norm", "float64", "‖∇L(θ)‖ at the marker"),
        )
        + PRESET,
        key=("marker",),
    ),
    "loss_grid": Table(
        columns(
            ("grid_row", "int64", "row index (θ₂ axis)"),
            ("grid_col", "int64", "column index (θ₁ axis)"),
        )
        + THETA
        + columns(("loss", "float64", "L(θ₁, θ₂) on the grid"))
        + PRESET,
        key=("grid_row", "grid_col"),
        doc="the loss surface on a padded grid, long format",
    ),
}
RESOURCES = base.Resources(runtime=10, mem_mb=2000)


class Settings(base.Settings):
    """Every value of Figure 2; defaults are the paper's."""

    n_points: int = Field(
        96, ge=2, description="training inputs x = linspace(x_min, x_max, n_points) (paper: 96)"
    )
    x_min: float = Field(-2.5, description="left end of the inputs (paper: -2.5)")
    x_max: float = Field(2.5, description="right end of the inputs, > x_min (paper: 2.5)")
    torch_seed: int = Field(
        4, ge=0, description="global torch seed during the run (paper: torch.manual_seed(4))"
    )
    reference_start: tuple[float, float] = Field(
        (0.8, 0.1), description="Adam start (θ₁, θ₂) for the reference minimum θ* (paper: 0.8, 0.1)"
    )
    reference_lr: float = Field(0.04, gt=0, description="Adam learning rate for θ* (paper: 0.04)")
    reference_steps: int = Field(900, ge=1, description="full-batch Adam steps for θ* (paper: 900)")
    start_distance: float = Field(0.40, gt=0, description="‖θ0 − θ*‖ (paper: 0.40)")
    generator_seed: int = Field(
        21,
        ge=0,
        description="torch Generator seed for u, then reused for the minibatches (paper: 21)",
    )
    flow_lr: float = Field(
        0.004,
        gt=0,
        description="step of the small-step full-batch GD standing in for the flow (paper: 0.004)",
    )
    flow_steps: int = Field(
        3000, ge=1, description="steps of the gradient-flow proxy (paper: 3000)"
    )
    sgd_lr: float = Field(0.40, gt=0, description="SGD step size η (paper: 0.40)")
    batch_size: int = Field(8, ge=1, description="SGD minibatch size, <= n_points (paper: 8)")
    sgd_steps: int = Field(6, ge=1, description="SGD steps (paper: 6)")
    grid_points: int = Field(
        320, ge=2, description="the loss grid is grid_points × grid_points (paper: 320)"
    )
    grid_pad_min: float = Field(
        0.1, ge=0, description="grid padding = max(grid_pad_min, fraction × range) (paper: 0.1)"
    )
    grid_pad_fraction: float = Field(
        0.25, ge=0, description="grid padding fraction of the iterates' range (paper: 0.25)"
    )
    preset: base.Preset

    @model_validator(mode="after")
    def _ranges(self):
        if not self.x_min < self.x_max:
            raise base.FieldError(
                "x_max", self.x_max, f"must exceed x_min = {self.x_min}; allowed: x_max > x_min"
            )
        if self.batch_size > self.n_points:
            raise base.FieldError(
                "batch_size",
                self.batch_size,
                f"exceeds n_points = {self.n_points}; allowed: 1 .. n_points",
            )
        base.fits_in_memory(
            "grid_points",
            self.grid_points,
            self.grid_points**2 * 8,
            f"the loss surface: grid_points² = {self.grid_points}² × 8 bytes",
        )
        return self


def training_data(settings: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    """x = linspace(x_min, x_max, n), y = 0.75·tanh(1.4x − 0.35) + 0.12·sin(2.7x)."""
    x = torch.linspace(settings.x_min, settings.x_max, settings.n_points, dtype=torch.float64)
    return x, 0.75 * torch.tanh(1.4 * x - 0.35) + 0.12 * torch.sin(2.7 * x)


def loss(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L(θ) = mean_i (tanh(θ₁x_i + θ₂) − y_i)²."""
    return torch.mean((torch.tanh(theta[0] * x + theta[1]) - y) ** 2)


def gradient(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇L(θ) on the points (x, y), by autograd."""
    leaf = theta.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(leaf, x, y), leaf)
    return grad


def reference_minimum(settings: Settings, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """θ*: Adam from ``reference_start`` for ``reference_steps`` full-batch steps."""
    theta = torch.tensor(settings.reference_start, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([theta], lr=settings.reference_lr)
    for _ in range(settings.reference_steps):
        optimizer.zero_grad()
        loss(theta, x, y).backward()
        optimizer.step()
    return theta.detach()


def start_point(settings: Settings, theta_star: torch.Tensor, generator: torch.Generator):
    """θ0 = θ* + d·u, u = g/‖g‖, g ~ N(0, I₂) drawn in float32 (as the paper) from ``generator``."""
    direction = torch.randn(2, generator=generator).to(torch.float64)
    return theta_star + settings.start_distance * direction / direction.norm()


def small_step_descent(settings: Settings, theta0, x, y) -> torch.Tensor:
    """Full-batch GD θ_{k+1} = θ_k − η∇L(θ_k) with the small step η = ``flow_lr``, the stand-in
    for the gradient flow (drawn as ``gradient_flow``): the (flow_steps + 1) × 2 path from θ0."""
    path = [theta0]
    for _ in range(settings.flow_steps):
        path.append(path[-1] - settings.flow_lr * gradient(path[-1], x, y))
    return torch.stack(path)


def sgd(settings: Settings, theta0, x, y, generator: torch.Generator) -> list[dict]:
    """SGD steps θ_{k+1} = θ_k − η∇L_B(θ_k), B the first batch_size of a fresh randperm."""
    steps, theta = [], theta0
    for step in range(settings.sgd_steps):
        batch = torch.randperm(settings.n_points, generator=generator)[: settings.batch_size]
        full = -settings.sgd_lr * gradient(theta, x, y)
        minibatch = -settings.sgd_lr * gradient(theta, x[batch], y[batch])
        steps.append({"step": step, "theta": theta, "full": full, "batch": minibatch, "idx": batch})
        theta = theta + minibatch
    steps.append({"step": settings.sgd_steps, "theta": theta})
    return steps


def grid_axes(settings: Settings, focus: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Axes of the loss grid: the range of ``focus`` points padded by max(min, fraction·range)."""
    axes = []
    for column in range(2):
        low, high = float(focus[:, column].min()), float(focus[:, column].max())
        pad = max(settings.grid_pad_min, settings.grid_pad_fraction * (high - low))
        axes.append(np.linspace(low - pad, high + pad, settings.grid_points))
    return axes[0], axes[1]


def loss_grid(settings: Settings, focus: torch.Tensor, x, y) -> pd.DataFrame:
    """L(θ₁, θ₂) on the padded grid, long format; grid_row indexes θ₂, grid_col indexes θ₁."""
    axis_1, axis_2 = grid_axes(settings, focus)
    theta_1, theta_2 = np.meshgrid(axis_1, axis_2, indexing="xy")
    xs, ys = x.numpy(), y.numpy()
    values = np.empty_like(theta_1)
    for row in range(theta_1.shape[0]):
        pred = np.tanh(theta_1[row, :, None] * xs + theta_2[row, :, None])
        values[row] = np.mean((pred - ys) ** 2, axis=-1)
    rows, cols = np.indices(theta_1.shape)
    return pd.DataFrame(
        {
            "grid_row": rows.ravel(),
            "grid_col": cols.ravel(),
            "theta_1": theta_1.ravel(),
            "theta_2": theta_2.ravel(),
            "loss": values.ravel(),
        }
    )


def _path_table(name: str, points: torch.Tensor, x, y) -> pd.DataFrame:
    values = points.numpy()
    return pd.DataFrame(
        {
            "path": name,
            "step": np.arange(len(values)),
            "theta_1": values[:, 0],
            "theta_2": values[:, 1],
            "loss": [float(loss(point, x, y)) for point in points],
        }
    )


def _steps_table(steps: list[dict], settings: Settings) -> pd.DataFrame:
    rows = [
        {
            "step": item["step"],
            "theta_1": float(item["theta"][0]),
            "theta_2": float(item["theta"][1]),
            "full_step_1": float(item["full"][0]),
            "full_step_2": float(item["full"][1]),
            "batch_step_1": float(item["batch"][0]),
            "batch_step_2": float(item["batch"][1]),
            "learning_rate": settings.sgd_lr,
            "batch_indices": " ".join(str(int(i)) for i in item["idx"]),
        }
        for item in steps
        if "full" in item
    ]
    return pd.DataFrame(rows)


def _markers_table(theta_star, theta0, x, y) -> pd.DataFrame:
    points = {"theta_star": theta_star, "theta_0": theta0}
    return pd.DataFrame(
        [
            {
                "marker": name,
                "theta_1": float(point[0]),
                "theta_2": float(point[1]),
                "loss": float(loss(point, x, y)),
                "grad_norm": float(gradient(point, x, y).norm()),
            }
            for name, point in points.items()
        ]
    )


def run(settings: Settings) -> dict[str, pd.DataFrame]:
    """Tables ``path`` (flow, SGD iterates), ``sgd_steps`` (arrows), ``markers``, ``loss_grid``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.torch_seed)
        x, y = training_data(settings)
        theta_star = reference_minimum(settings, x, y)
        generator = torch.Generator().manual_seed(settings.generator_seed)
        theta0 = start_point(settings, theta_star, generator)
        flow = small_step_descent(settings, theta0, x, y)
        steps = sgd(settings, theta0, x, y, generator)
    iterates = torch.stack([item["theta"] for item in steps])
    focus = torch.cat([theta_star[None], iterates])
    tables = {
        "path": pd.concat(
            [_path_table("gradient_flow", flow, x, y), _path_table("sgd", iterates, x, y)],
            ignore_index=True,
        ),
        "sgd_steps": _steps_table(steps, settings),
        "markers": _markers_table(theta_star, theta0, x, y),
        "loss_grid": loss_grid(settings, focus, x, y),
    }
    for frame in tables.values():
        frame["preset"] = settings.preset
    return {name: TABLES[name].frame(frame) for name, frame in tables.items()}
