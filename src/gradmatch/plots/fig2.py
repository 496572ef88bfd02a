"""Figure 2: loss landscape of tanh(θ₁x + θ₂) with the gradient-flow path and SGD steps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gradmatch.plots import style

INPUTS = ("path", "sgd_steps", "markers", "loss_grid")
NEEDS = {
    "path": ["path", "step", "theta_1", "theta_2"],
    "sgd_steps": [
        "step",
        "theta_1",
        "theta_2",
        "full_step_1",
        "full_step_2",
        "batch_step_1",
        "batch_step_2",
        "batch_indices",
    ],
    "markers": ["marker", "theta_1", "theta_2"],
    "loss_grid": ["grid_row", "grid_col", "theta_1", "theta_2", "loss"],
}
# The paper uses crameri:imola (blue -> green -> yellow); cmcrameri is not a dependency, and
# matplotlib's reversed YlGnBu runs the same way from dark blue to pale yellow.
COLORMAP = "YlGnBu_r"
LEVELS = 28
LEVEL_QUANTILE = 0.985


def _grid(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The long loss table back to (Θ₁, Θ₂, L) matrices; raises when the grid is incomplete."""
    shape = (frame["grid_row"].max() + 1, frame["grid_col"].max() + 1)
    if len(frame) != shape[0] * shape[1] or min(shape) < 2:
        raise ValueError(f"fig2: loss_grid has {len(frame)} rows, not a full grid of {shape}")
    ordered = frame.sort_values(["grid_row", "grid_col"])
    return tuple(ordered[name].to_numpy().reshape(shape) for name in ("theta_1", "theta_2", "loss"))


def _levels(loss: np.ndarray) -> np.ndarray:
    """LEVELS levels from the minimum to the LEVEL_QUANTILE quantile of the grid loss."""
    if not np.all(np.isfinite(loss)):
        raise ValueError("fig2: loss_grid holds non-finite losses; rebuild the sgd_vs_flow table")
    low = float(loss.min())
    high = max(float(np.quantile(loss, LEVEL_QUANTILE)), low + 1e-4)
    return np.linspace(low, high, LEVELS)


def _draw_landscape(ax, grid: pd.DataFrame) -> None:
    theta_1, theta_2, loss = _grid(grid)
    levels = _levels(loss)
    ax.contourf(theta_1, theta_2, loss, levels=levels, cmap=COLORMAP, extend="max")
    ax.contour(
        theta_1, theta_2, loss, levels=levels[::2], colors="white", linewidths=0.45, alpha=0.6
    )
    ax.set(xlim=(theta_1.min(), theta_1.max()), ylim=(theta_2.min(), theta_2.max()))


def _draw_paths(ax, path: pd.DataFrame, markers: pd.DataFrame, sgd_text: str) -> None:
    flow = path[path["path"] == "gradient_flow"].sort_values("step")
    sgd = path[path["path"] == "sgd"].sort_values("step")
    if flow.empty or sgd.empty:
        raise ValueError("fig2: table 'path' needs rows for both gradient_flow and sgd")
    ax.plot(
        flow["theta_1"],
        flow["theta_2"],
        "--",
        color=style.COLORS["flow"],
        lw=1.8,
        label="Gradient flow trajectory",
        zorder=2,
    )
    ax.scatter(
        sgd["theta_1"].iloc[1:],
        sgd["theta_2"].iloc[1:],
        s=30,
        zorder=7,
        color=style.COLORS["minibatch"],
        edgecolors="black",
        linewidths=0.6,
        label=sgd_text,
    )
    star, start = (_marker(markers, name) for name in ("theta_star", "theta_0"))
    ax.scatter(
        *star,
        marker="*",
        s=160,
        color=style.COLORS["optimum"],
        edgecolors="black",
        linewidths=0.9,
        zorder=8,
        label=r"$\theta^*$",
    )
    ax.scatter(*start, s=50, color="black", zorder=8, label=r"$\theta_0$")


def _marker(markers: pd.DataFrame, name: str) -> tuple[float, float]:
    rows = markers[markers["marker"] == name]
    if len(rows) != 1:
        raise ValueError(f"fig2: table 'markers' needs exactly one row for {name!r}")
    return float(rows["theta_1"].iloc[0]), float(rows["theta_2"].iloc[0])


def sgd_label(steps: pd.DataFrame) -> str:
    """The SGD legend entry with its step count and batch size, read from ``sgd_steps``."""
    sizes = {len(str(indices).split()) for indices in steps["batch_indices"]}
    if len(sizes) != 1:
        raise ValueError(f"fig2: table 'sgd_steps' mixes batch sizes {sorted(sizes)}")
    return f"SGD iterates ({len(steps)} steps, batch {sizes.pop()})"


def _draw_steps(ax, steps: pd.DataFrame) -> None:
    """At each SGD iterate: the full-batch step −η∇L (red) and the minibatch step −η∇L_B."""
    arrows = (
        ("full", style.COLORS["flow"], "Full-batch step"),
        ("batch", style.COLORS["minibatch"], "Minibatch step"),
    )
    for kind, color, label in arrows:
        ax.quiver(
            steps["theta_1"],
            steps["theta_2"],
            steps[f"{kind}_step_1"],
            steps[f"{kind}_step_2"],
            angles="xy",
            scale_units="xy",
            scale=1,
            color=color,
            edgecolor="black",
            linewidth=0.4,
            width=0.006,
            alpha=0.9,
            zorder=5,
            label=label,
        )


def draw(tables: dict[str, pd.DataFrame]) -> Figure:
    """Filled loss contours, flow path, SGD iterates and per-step arrows, θ* and θ0."""
    style.require_columns(tables, NEEDS, "fig2")
    grid = tables["loss_grid"]
    span = np.ptp(grid["theta_2"]) / max(np.ptp(grid["theta_1"]), 1e-12)
    with style.context():
        fig, ax = plt.subplots(figsize=style.figure_size(4.0, aspect=0.88 * min(span, 2.0) + 0.38))
        _draw_landscape(ax, grid)
        _draw_paths(ax, tables["path"], tables["markers"], sgd_label(tables["sgd_steps"]))
        _draw_steps(ax, tables["sgd_steps"])
        ax.set(xlabel=r"$\theta_1$", ylabel=r"$\theta_2$", xticks=[], yticks=[], aspect="equal")
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=2, frameon=False)
        fig.tight_layout()
    return fig
