"""Figure 2: SGD steps against the full-batch gradient flow on a two-parameter tanh model.

The model is f(x; θ) = tanh(θ₁x + θ₂) with the mean squared error
L(θ) = (1/n) Σ (f(x_i; θ) − y_i)² on n = 96 points x = linspace(−2.5, 2.5) and the target
y = 0.75·tanh(1.4x − 0.35) + 0.12·sin(2.7x). A reference minimum θ* is found with Adam; the
start θ0 = θ* + d·u lies at distance d along a random unit vector u. From θ0, full-batch
gradient descent with a small step stands in for the gradient flow dθ/dt = −∇L(θ); SGD with a
large step follows minibatch gradients, and at each iterate θ_k both the full-batch step
−η∇L(θ_k) and the minibatch step −η∇L_B(θ_k) are recorded. Their difference is the
implicit regularization the trajectory form of the estimator (paper Eq. 4) attributes to SGD.

Values: paper Appendix H.1 and the authors' ``make_sgd_vs_full_batch``. Computed in float64
(the authors used float32; the difference is far below the width of a line).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


@dataclass(frozen=True)
class Settings:
    """Every value of Figure 2; defaults are the paper's."""

    n_points: int = 96  # training inputs x = linspace(x_min, x_max, n_points)
    x_min: float = -2.5
    x_max: float = 2.5
    torch_seed: int = 4  # global torch seed during the run (paper: torch.manual_seed(4))
    reference_start: tuple[float, float] = (0.8, 0.1)  # Adam start for θ*
    reference_lr: float = 0.04  # Adam learning rate for θ*
    reference_steps: int = 900  # Adam steps for θ*
    start_distance: float = 0.40  # ‖θ0 − θ*‖
    generator_seed: int = 21  # torch Generator for u, then reused for the minibatch indices
    flow_lr: float = 0.004  # full-batch GD step of the gradient-flow proxy
    flow_steps: int = 3000
    sgd_lr: float = 0.40
    batch_size: int = 8
    sgd_steps: int = 6
    grid_points: int = 320  # loss grid is grid_points × grid_points
    grid_pad_min: float = 0.1  # padding = max(grid_pad_min, grid_pad_fraction × range)
    grid_pad_fraction: float = 0.25
    preset: str = "default"  # recorded in every table (filled from the global key)

    def __post_init__(self) -> None:
        checks = {
            "n_points": self.n_points >= 2,
            "batch_size": 1 <= self.batch_size <= self.n_points,
            "reference_steps": self.reference_steps >= 1,
            "flow_steps": self.flow_steps >= 1,
            "sgd_steps": self.sgd_steps >= 1,
            "grid_points": self.grid_points >= 2,
            "start_distance": self.start_distance > 0,
            "reference_start": len(self.reference_start) == 2,
            "x_max": self.x_max > self.x_min,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"sgd_vs_flow: invalid setting(s) {bad}; need n_points >= 2, "
                "1 <= batch_size <= n_points, step counts >= 1, grid_points >= 2, "
                "start_distance > 0, a 2-entry reference_start and x_max > x_min"
            )


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


def gradient_flow(settings: Settings, theta0, x, y) -> torch.Tensor:
    """Full-batch GD θ_{k+1} = θ_k − η∇L(θ_k): the (flow_steps + 1) × 2 path from θ0."""
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
        flow = gradient_flow(settings, theta0, x, y)
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
    return tables
