"""Figure 7: Λ̂ from bootstrap resamples of one noisy OLS dataset, and its error against σ."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from gradmatch.plots import _ols, style

INPUTS = ("theory", "estimates", "distance", "sigma_sweep")
NEEDS = {
    "theory": ["stop_step", "row", "col", "value"],
    "estimates": ["m", "row", "col", "value"],
    "distance": ["m", "distance_frobenius", "zero_baseline_frobenius"],
    "sigma_sweep": ["noise_std", "pool", "distance_frobenius", "zero_baseline_frobenius"],
}
HIGHLIGHT_SIGMA = 10.0  # the σ of panels A-E, marked in panel F
FIGURE = "fig7"


def _heatmaps(fig, axes, tables: dict[str, pd.DataFrame]) -> None:
    theory = tables["theory"]
    t = int(theory["stop_step"].iloc[0])
    _ols.heatmap(
        fig, axes[0], _ols.matrix(theory, FIGURE, "table 'theory'"), rf"Theory $\Lambda^{{({t})}}$"
    )
    ms = sorted(tables["estimates"]["m"].unique())
    if len(ms) != len(axes) - 1:
        raise ValueError(
            f"{FIGURE}: table 'estimates' holds Λ̂ at m = {ms}; panels B-D need exactly "
            f"{len(axes) - 1} values (ols_bootstrap.heatmap_m)"
        )
    for ax, m in zip(axes[1:], ms, strict=True):
        rows = _ols.select(tables["estimates"], FIGURE, "table 'estimates'", m=int(m))
        title = rf"$\hat\Lambda_{{m={m}}}$" + (" (original)" if m == 1 else "")
        _ols.heatmap(fig, ax, _ols.matrix(rows, FIGURE, f"estimates at m = {m}"), title)


def _panel_e(ax, distance: pd.DataFrame, marks: list[int]) -> None:
    distance = distance.sort_values("m")
    ax.plot(
        distance["m"],
        distance["distance_frobenius"],
        color="tab:blue",
        label=r"$\|\hat\Lambda_m - \Lambda^{(t)}\|_F$",
    )
    marked = distance[distance["m"].isin(marks)]
    ax.plot(marked["m"], marked["distance_frobenius"], "o", color="tab:blue", ms=5)
    ax.axhline(
        distance["zero_baseline_frobenius"].iloc[0],
        ls="--",
        color="gray",
        label=r"zero baseline $\|\Lambda^{(t)}\|_F$",
    )
    ax.set_yscale("log")
    ax.set_title(f"one stacked sequence, m = 1..{int(distance['m'].max())}", fontsize=8)
    ax.set_xlabel("Number of stacked endpoints $m$")
    ax.set_ylabel(r"$\|\hat\Lambda_m - \Lambda^{(t)}\|_F$")
    ax.legend(loc="upper right", fontsize=7)


def _panel_f(ax, sweep: pd.DataFrame) -> None:
    summary = _ols.pool_summary(sweep, "noise_std", "distance_frobenius")
    pools = int(summary["n"].max())
    _ols.band(
        ax,
        summary["noise_std"],
        summary["mean"],
        summary["half"],
        "tab:purple",
        f"bootstrap, mean ± 1.96 SE ({pools} pools)",
        marker="o",
        ms=3,
    )
    ax.axhline(
        sweep["zero_baseline_frobenius"].iloc[0], ls="--", color="gray", label="zero baseline"
    )
    highlight = summary[summary["noise_std"].sub(HIGHLIGHT_SIGMA).abs() < 1e-9]
    if not highlight.empty:
        ax.plot(
            highlight["noise_std"],
            highlight["mean"],
            "*",
            ms=11,
            color="tab:orange",
            label=rf"$\sigma={HIGHLIGHT_SIGMA:g}$ (panels A–E)",
            zorder=5,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"Noise level $\sigma$")
    ax.set_ylabel(r"$\|\hat\Lambda_{m} - \Lambda^{(t)}\|_F$")
    ax.legend(loc="upper right", fontsize=7)


def draw(tables: dict[str, pd.DataFrame]) -> Figure:
    """Panels A (Λ_t), B-D (Λ̂ at three m), E (distance vs m), F (distance vs σ)."""
    style.require_columns(tables, NEEDS, FIGURE)
    with style.context():
        fig = plt.figure(figsize=style.figure_size("text", aspect=0.72))
        outer = fig.add_gridspec(2, 1, height_ratios=[1.0, 1.2], hspace=0.4)
        top = outer[0].subgridspec(1, 4, wspace=0.25)
        bottom = outer[1].subgridspec(1, 2, wspace=0.35)
        heat_axes = [fig.add_subplot(top[index]) for index in range(4)]
        _heatmaps(fig, heat_axes, tables)
        ax_e, ax_f = fig.add_subplot(bottom[0]), fig.add_subplot(bottom[1])
        marks = sorted(int(m) for m in tables["estimates"]["m"].unique())
        _panel_e(ax_e, tables["distance"], marks)
        _panel_f(ax_f, tables["sigma_sweep"])
        for ax, letter in zip([*heat_axes, ax_e, ax_f], "ABCDEF", strict=True):
            _ols.panel_label(ax, letter)
    return fig
