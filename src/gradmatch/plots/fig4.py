"""Figure 4: early stopping in OLS as an implicit Λ_t: theory, estimates, retraining, λ̂_t trace."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch
from matplotlib.ticker import MaxNLocator

from gradmatch.plots import _ols, style

INPUTS = ("endpoint", "theory", "fixed_estimate", "variable_distance", "ridge_trace")
NEEDS = {
    "endpoint": [
        "noise_std",
        "stop_step",
        "coordinate",
        "beta_true",
        "theta_hat",
        "q_hat_lstsq",
        "theta_retrained_lstsq",
    ],
    "theory": ["noise_std", "stop_step", "row", "col", "value"],
    "fixed_estimate": ["m", "stop_step", "row", "col", "value"],
    "variable_distance": ["pool", "m", "distance_frobenius"],
    "ridge_trace": ["step", "lambda_hat_adam", "lambda_closed_form", "lambda_theory"],
}
NOISE_STD = 1.0  # Figure 4 uses σ = 1 (the σ = 10 rows of ols_endpoint belong to Figure 7)
FIGURE = "fig4"


def _panel_a(fig, ax, theory: pd.DataFrame) -> int:
    rows = _ols.select(theory, FIGURE, "table 'theory'", noise_std=NOISE_STD)
    t = int(rows["stop_step"].iloc[0])
    _ols.heatmap(
        fig, ax, _ols.matrix(rows, FIGURE, "table 'theory'"), rf"Theory $\Lambda^{{({t})}}$"
    )
    return t


def _panel_b(fig, ax, estimate: pd.DataFrame, t: int) -> None:
    m = int(estimate["m"].max())
    if int(estimate["stop_step"].iloc[0]) != t:
        raise ValueError(
            f"{FIGURE}: fixed_estimate is at t = {int(estimate['stop_step'].iloc[0])} but the "
            f"theory panel at t = {t}; rebuild both from one config"
        )
    rows = estimate[estimate["m"] == m]
    title = rf"$\hat\Lambda$, $m={m}$ endpoints, fixed $t$"
    _ols.heatmap(fig, ax, _ols.matrix(rows, FIGURE, "table 'fixed_estimate'"), title)


def _panel_c(fig, spec, endpoint: pd.DataFrame) -> None:
    rows = _ols.select(endpoint, FIGURE, "table 'endpoint'", noise_std=NOISE_STD)
    rows = rows.sort_values("coordinate")
    grid = spec.subgridspec(1, 5, width_ratios=[3.0, 1.6, 0.3, 0.3, 0.3], wspace=0.1)
    ax_q = fig.add_subplot(grid[0])
    _ols.heatmap(fig, ax_q, np.diag(rows["q_hat_lstsq"].to_numpy()), r"diag($\hat q$), 1 endpoint")
    _ols.panel_label(ax_q, "C")
    columns = {
        r"$\hat\theta^{\Lambda}$": rows["theta_retrained_lstsq"],
        r"$\hat\theta$": rows["theta_hat"],
        r"$\theta$": rows["beta_true"],
    }
    stacked = np.column_stack([values.to_numpy() for values in columns.values()])
    cmap, norm = style.diverging(stacked, cmap=_ols.HEATMAP_CMAP)
    axes = [fig.add_subplot(grid[index]) for index in (2, 3, 4)]
    for ax, (title, values) in zip(axes, columns.items(), strict=True):
        image = ax.imshow(values.to_numpy()[:, None], cmap=cmap, norm=norm, aspect=1.0)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(image, ax=axes, orientation="horizontal", fraction=0.06, pad=0.04)
    bar.ax.tick_params(labelsize=6)
    bar.ax.xaxis.set_major_locator(MaxNLocator(3))
    _retrain_arrow(fig, ax_q, axes[0])


def _retrain_arrow(fig, source, target) -> None:
    fig.canvas.draw()
    start = source.get_position()
    end = target.get_position()
    y = start.y0 + 0.5 * start.height
    fig.add_artist(
        FancyArrowPatch(
            (start.x1 + 0.005, y),
            (end.x0 - 0.005, y),
            transform=fig.transFigure,
            arrowstyle="-|>",
            mutation_scale=10,
            color="black",
            lw=1.0,
        )
    )
    fig.text(
        0.5 * (start.x1 + end.x0),
        y + 0.012,
        "Retrain with\nexplicit\nregularization",
        ha="center",
        va="bottom",
        fontsize=6,
    )


def _panel_d(ax, distance: pd.DataFrame) -> None:
    summary = _ols.pool_summary(distance, "m", "distance_frobenius")
    pools = int(summary["n"].max())
    _ols.band(
        ax,
        summary["m"],
        summary["mean"],
        summary["half"],
        "tab:blue",
        f"mean ± 1.96 SE ({pools} pools of {int(distance['m'].max())} endpoints)",
        lw=1.4,
    )
    ax.set_yscale("log")
    ax.set_xlabel("Number of distinct training endpoints $m$")
    ax.set_ylabel(r"$\|\hat\Lambda_m^{(t_k)} - \bar\Lambda\|_F$")
    ax.legend(loc="upper right")


def _panel_e(ax, trace: pd.DataFrame) -> None:
    trace = trace.sort_values("step")
    ax.plot(
        trace["step"],
        trace["lambda_hat_adam"],
        "o-",
        ms=4,
        color="tab:blue",
        label="Gradient matching (Adam)",
    )
    ax.plot(
        trace["step"],
        trace["lambda_closed_form"],
        "x",
        ms=6,
        color="black",
        label="Closed form (= lstsq)",
    )
    ax.plot(
        trace["step"],
        trace["lambda_theory"],
        "--",
        color="tab:red",
        label=r"Theory tr$(\Lambda^{(t)})/p$",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Gradient descent steps $t$")
    ax.set_ylabel(r"Scalar ridge penalty $\hat\lambda_t$")
    ax.set_title(f"one trajectory, {trace['step'].nunique()} checkpoints", fontsize=8)
    ax.legend(loc="lower left", fontsize=7)


def draw(tables: dict[str, pd.DataFrame]) -> Figure:
    """Panels A (Λ_t), B (Λ̂ fixed t), C (diag fit + retrain), D (distance vs m), E (λ̂_t)."""
    style.require_columns(tables, NEEDS, FIGURE)
    with style.context():
        fig = plt.figure(figsize=style.figure_size("text", aspect=0.78))
        outer = fig.add_gridspec(2, 1, height_ratios=[1.0, 1.05], hspace=0.45)
        top = outer[0].subgridspec(1, 3, width_ratios=[1.0, 1.0, 2.1], wspace=0.3)
        bottom = outer[1].subgridspec(1, 2, wspace=0.35)
        ax_a, ax_b = fig.add_subplot(top[0]), fig.add_subplot(top[1])
        t = _panel_a(fig, ax_a, tables["theory"])
        _panel_b(fig, ax_b, tables["fixed_estimate"], t)
        ax_d, ax_e = fig.add_subplot(bottom[0]), fig.add_subplot(bottom[1])
        _panel_d(ax_d, tables["variable_distance"])
        _panel_e(ax_e, tables["ridge_trace"])
        for ax, letter in ((ax_a, "A"), (ax_b, "B"), (ax_d, "D"), (ax_e, "E")):
            _ols.panel_label(ax, letter)
        _panel_c(fig, top[2], tables["endpoint"])
    return fig
