"""Figure 1: MSE, ℓ2 penalty and their sum, the three minima, and ∇R = −∇L at the ridge optimum."""

from __future__ import annotations

import matplotlib.patheffects as pe
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gradmatch.plots import style

INPUTS = ("curves", "points", "arrows")
NEEDS = {
    "curves": ["curve", "theta", "value"],
    "points": ["minimum", "curve", "theta", "value"],
    "arrows": ["arrow", "curve", "theta", "value", "slope"],
}
CURVES = {  # curve -> (legend label, colour, line style, width)
    "mse": ("MSE loss", style.COLORS["loss"], "--", 2.0),
    "penalty": (r"$\ell_2$ penalty", style.COLORS["penalty"], "--", 2.0),
    "total": ("Total objective", style.COLORS["total"], "-", 2.5),
}
MINIMA = {
    "ols": r"$\hat\theta_{\mathrm{OLS}}$",
    "penalty": r"$\ell_2$ min",
    "ridge": r"$\hat\theta_{\mathrm{ridge}}$",
}
ARROWS = {  # arrow -> (label, label offset in points, vertical alignment)
    "grad_penalty": (r"$\nabla\mathcal{R}$", (4, -6), "top"),
    "grad_mse": (r"$-\nabla\mathcal{L}$", (4, 6), "bottom"),
}
ARROW_LENGTH = 0.9  # in data units along the tangent
STATIONARITY_TOL = 1e-9  # |∇R + ∇L| above this means θ_ridge is not the ridge optimum


def _check(tables: dict[str, pd.DataFrame]) -> None:
    style.require_columns(tables, NEEDS, "fig1")
    for name, column, wanted in (
        ("curves", "curve", CURVES),
        ("points", "minimum", MINIMA),
        ("arrows", "arrow", ARROWS),
    ):
        missing = sorted(set(wanted) - set(tables[name][column]))
        if missing:
            raise ValueError(f"fig1: table '{name}' has no {column} {missing}")
    residual = float(tables["arrows"]["slope"].sum())
    if abs(residual) > STATIONARITY_TOL:
        raise ValueError(f"fig1: arrows are not equal and opposite (∇R + ∇L = {residual:.3g})")


def _draw_curves(ax, curves: pd.DataFrame) -> None:
    for name, (label, color, line, width) in CURVES.items():
        rows = curves[curves["curve"] == name].sort_values("theta")
        ax.plot(rows["theta"], rows["value"], line, color=color, lw=width, label=label, zorder=3)


def _draw_minima(ax, points: pd.DataFrame) -> None:
    dot = {"ms": 7, "markeredgecolor": "white", "markeredgewidth": 1, "zorder": 7}
    for row in points.itertuples():
        color = CURVES[row.curve][1]
        ax.plot(row.theta, row.value, "o", color=color, **dot)
        ax.plot(row.theta, 0, "o", color=color, clip_on=False, **dot)
        if row.value > 1e-6:
            ax.vlines(row.theta, 0, row.value, colors=color, linestyles=":", lw=1.4, zorder=4)
        ax.annotate(
            MINIMA[row.minimum],
            (row.theta, 0),
            xytext=(0, -9),
            color=color,
            textcoords="offset points",
            ha="center",
            va="top",
            annotation_clip=False,
        )


def _draw_arrows(ax, arrows: pd.DataFrame) -> None:
    """Each gradient drawn as a tangent of its curve at θ_ridge: slope ∇R up, slope ∇L down."""
    outline = [pe.Stroke(linewidth=3.8, foreground="black"), pe.Normal()]
    for row in arrows.itertuples():
        color = CURVES[row.curve][1]
        step = np.array([1.0, row.slope]) / np.hypot(1.0, row.slope) * ARROW_LENGTH
        tip = (row.theta + step[0], row.value + step[1])
        ax.annotate(
            "",
            xy=tip,
            xytext=(row.theta, row.value),
            zorder=8,
            arrowprops={
                "arrowstyle": "-|>",
                "lw": 1.8,
                "color": color,
                "mutation_scale": 11,
                "path_effects": outline,
            },
        )
        label, offset, align = ARROWS[row.arrow]
        middle = (row.theta + step[0] * 0.4, row.value + step[1] * 0.4)
        ax.annotate(
            label,
            middle,
            xytext=offset,
            textcoords="offset points",
            color=color,
            ha="left",
            va=align,
            fontsize=11,
        )


def _finish_axes(ax, curves: pd.DataFrame) -> None:
    low, high = curves["theta"].min(), curves["theta"].max()
    total = curves[curves["curve"] == "total"]
    top = float(total["value"][total["theta"] <= low + 0.925 * (high - low)].max()) * 1.08
    ax.set(xlim=(low, high), ylim=(0, top), ylabel="Loss")
    ax.set_xticks(np.arange(np.ceil(low * 2) / 2, high + 1e-9, 0.5))
    ax.set_yticks(np.arange(0, top, 2))
    ax.grid(True, color="#dddddd", lw=0.5, zorder=0)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    if low < 0 < high:
        ax.axvline(0, color="#bbbbbb", lw=1.0, zorder=1)
    ax.annotate(
        r"$\theta$",
        (1, 0),
        xycoords="axes fraction",
        xytext=(6, 0),
        textcoords="offset points",
        va="center",
        fontsize=12,
    )
    ax.legend(
        loc="lower left", bbox_to_anchor=(0, 1.01, 1, 0), ncol=3, mode="expand", borderaxespad=0
    )


def draw(tables: dict[str, pd.DataFrame]) -> Figure:
    """Curves, minima projected to the θ axis, and the stationarity arrows (paper Eq. 1-2)."""
    _check(tables)
    with style.context():
        fig, ax = plt.subplots(figsize=style.figure_size(5.0, aspect=0.68))
        _draw_curves(ax, tables["curves"])
        _draw_minima(ax, tables["points"])
        _draw_arrows(ax, tables["arrows"])
        _finish_axes(ax, tables["curves"])
        fig.tight_layout()
    return fig
