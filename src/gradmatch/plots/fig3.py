"""Figure 3: estimated vs true elastic-net strengths λ1, λ2 of trained MLPs, mean ± SE over seeds.

Columns: λ1 recovery (x = true λ1, one line per true λ2) and λ2 recovery (roles swapped), both
log–log with a dashed diagonal for perfect recovery, as in the paper. Rows: one per estimator in
the table, the authors' stochastic Adam fit first (the paper's figure), then the exact
least-squares solution. Error bars are ±1 standard error over seeds, std(ddof=1)/√n; each
panel states n, the seeds behind each point, counted in the table. A mean λ̂ ≤ 0 cannot sit on
a log axis: such points are left out and counted in the panel.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gradmatch.plots import style

INPUTS = ("summary",)
METHOD_TITLES = {"adam": "authors' Adam fit", "lstsq": "least squares"}
PENALTIES = {"l1": ("l2", r"\lambda_1"), "l2": ("l1", r"\lambda_2")}
CMAP = "viridis"


def _methods(frame: pd.DataFrame) -> list[str]:
    found = [m for m in METHOD_TITLES if f"lambda_hat_l1_{m}" in frame.columns]
    if not found:
        raise ValueError(
            "fig3: table 'summary' has no estimates; expected columns lambda_hat_l1_<method> "
            f"for a method in {list(METHOD_TITLES)}"
        )
    return found


def summarise(frame: pd.DataFrame, penalty: str, method: str) -> pd.DataFrame:
    """Mean, standard error (ddof=1, /√n) and n of λ̂_penalty per (true λ_penalty, true other)."""
    other = PENALTIES[penalty][0]
    keys = [f"lambda_true_{penalty}", f"lambda_true_{other}"]
    grouped = frame.groupby(keys)[f"lambda_hat_{penalty}_{method}"]
    table = grouped.agg(mean="mean", std=lambda s: s.std(ddof=1), n="count").reset_index()
    table["se"] = (table["std"] / np.sqrt(table["n"])).fillna(0.0)
    return table.rename(columns={keys[0]: "true", keys[1]: "other"})


def _panel(ax, table: pd.DataFrame, penalty: str, colors) -> None:
    other_symbol = PENALTIES[PENALTIES[penalty][0]][1]
    hidden = 0
    for index, (other, rows) in enumerate(table.groupby("other")):
        rows = rows.sort_values("true")
        positive = rows["mean"] > 0
        hidden += int((~positive).sum())
        mean = rows["mean"].where(positive)  # NaN breaks the line where a mean is ≤ 0
        lower = np.minimum(rows["se"], mean * (1 - 1e-3))  # keep bars above 0 on log axes
        ax.errorbar(
            rows["true"], mean, yerr=[lower, rows["se"].where(positive)], color=colors[index],
            marker="o", markersize=3, capsize=2, linewidth=1.2,
            label=rf"$10^{{{int(round(np.log10(other)))}}}$",
        )  # fmt: skip
    limits = _limits(table)
    ax.plot(limits, limits, linestyle="--", color="black", linewidth=1.0, zorder=0)
    ax.set(xscale="log", yscale="log", xlim=limits, ylim=limits, aspect="equal")
    ax.set_xlabel(rf"True ${PENALTIES[penalty][1]}$")
    ax.set_ylabel(rf"Estimated ${PENALTIES[penalty][1]}$")
    ax.legend(
        title=rf"True ${other_symbol}$", loc="upper left", bbox_to_anchor=(1.01, 1.0),
        fontsize=7, title_fontsize=7,
    )  # fmt: skip
    notes = [seeds_note(table)] + ([f"{hidden} mean(s) ≤ 0 not shown"] if hidden else [])
    ax.text(0.98, 0.02, "\n".join(notes), transform=ax.transAxes, ha="right", va="bottom",
            fontsize=7, color="dimgray")  # fmt: skip


def seeds_note(table: pd.DataFrame) -> str:
    """ "n = 3 seeds per point" (or "n = 2–3 ..." where cells differ), from the table's counts."""
    low, high = int(table["n"].min()), int(table["n"].max())
    count = f"{low}" if low == high else f"{low}–{high}"
    return f"n = {count} seed{'s' if high != 1 else ''} per point"


def _limits(table: pd.DataFrame) -> tuple[float, float]:
    values = np.concatenate([table["true"], table.loc[table["mean"] > 0, "mean"]])
    return float(values.min()) / 3, float(values.max()) * 3


def draw(tables: dict[str, pd.DataFrame]) -> Figure:
    """Two recovery panels per estimator present in ``tables['summary']``."""
    needs = ["lambda_true_l1", "lambda_true_l2", "seed"]
    style.require_columns(tables, {"summary": needs}, "fig3")
    frame = tables["summary"]
    methods = _methods(frame)
    with style.context():
        figure, axes = plt.subplots(
            len(methods),
            2,
            squeeze=False,
            figsize=style.figure_size("text", aspect=0.42 * len(methods)),
        )
        for row, method in enumerate(methods):
            for col, penalty in enumerate(PENALTIES):
                table = summarise(frame, penalty, method)
                n_lines = table["other"].nunique()
                colors = plt.get_cmap(CMAP)(np.linspace(0.0, 0.85, max(n_lines, 1)))
                _panel(axes[row, col], table, penalty, colors)
                axes[row, col].set_title(
                    rf"${PENALTIES[penalty][1]}$ recovery ({METHOD_TITLES[method]})"
                )
        figure.tight_layout()
    return figure
