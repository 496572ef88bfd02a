"""Figure 5: estimated ridge penalty λ̂ against the dropout rate, one facet per (depth, width).

Rows are depths, columns widths (shared axes). In each facet the dropout rate is a categorical
x axis; a gray violin per rate shows the spread of λ̂ over seeds (clipped at the data range, as
seaborn's ``cut=0``), and one point per seed is coloured by the loss of the gradient-matching
fit (shared colour scale and colorbar). The plotted estimate is ``lambda_hat_lstsq``, the exact
minimiser of Eq. 3 (the authors' Adam estimate is ``lambda_hat_adam`` in the same table). Facet
titles carry Spearman ρ(λ̂, rate) and mark architectures without a dropout layer; the figure
title names the data set.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from gradmatch.plots import style

INPUTS = ("members",)
METHOD = "lstsq"
ESTIMATE = f"lambda_hat_{METHOD}"
COLOUR = f"fit_loss_{METHOD}"
SPEARMAN = f"spearman_rate_lambda_{METHOD}"
NEEDS = {
    "members": ["dataset", "preset", "depth", "width", "dropout_rate", "seed", "has_dropout",
                ESTIMATE, COLOUR, SPEARMAN],
}  # fmt: skip
CMAP = "Blues"
JITTER = 0.08  # horizontal spread of the seed points, in category units


def _check(members: pd.DataFrame) -> None:
    style.require_columns({"members": members}, NEEDS, "fig5")
    values = members[[ESTIMATE, COLOUR]].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError(f"fig5: non-finite {ESTIMATE} or {COLOUR}; the fits failed, rerun them")
    if members["dataset"].nunique() != 1:
        raise ValueError(f"fig5: rows from several datasets {sorted(members['dataset'].unique())}")


def _facet(ax, facet: pd.DataFrame, rates: np.ndarray, norm: Normalize) -> None:
    positions = np.arange(len(rates))
    groups = [facet.loc[facet["dropout_rate"] == rate, ESTIMATE].to_numpy() for rate in rates]
    filled = [(pos, g) for pos, g in zip(positions, groups, strict=True) if len(g) > 1]
    if filled:
        parts = ax.violinplot(
            [g for _, g in filled], positions=[pos for pos, _ in filled], widths=0.8,
            showextrema=False,
        )  # fmt: skip
        for body in parts["bodies"]:
            body.set_facecolor("lightgray")
            body.set_edgecolor("gray")
            body.set_alpha(0.8)
    for pos, rate in zip(positions, rates, strict=True):
        rows = facet[facet["dropout_rate"] == rate].sort_values("seed")
        offsets = np.linspace(-JITTER, JITTER, len(rows)) if len(rows) > 1 else np.zeros(1)
        ax.scatter(
            pos + offsets, rows[ESTIMATE], c=rows[COLOUR], cmap=CMAP, norm=norm, s=14,
            edgecolors="black", linewidths=0.4, zorder=3,
        )  # fmt: skip
    ax.set_xticks(positions, [f"{rate:g}" for rate in rates], rotation=45)


def draw(tables: dict[str, pd.DataFrame]) -> Figure:
    members = tables["members"]
    _check(members)
    depths = sorted(members["depth"].unique())
    widths = sorted(members["width"].unique())
    rates = np.sort(members["dropout_rate"].unique())
    norm = Normalize(vmin=members[COLOUR].min(), vmax=members[COLOUR].max())
    with style.context():
        width_in = min(style.TEXT_WIDTH_IN, 1.0 + 2.1 * len(widths))
        fig, axes = plt.subplots(
            len(depths), len(widths), sharex=True, sharey=True, squeeze=False,
            figsize=(width_in, 0.6 + 1.9 * len(depths)), layout="constrained",
        )  # fmt: skip
        for i, depth in enumerate(depths):
            for j, width in enumerate(widths):
                ax = axes[i, j]
                facet = members[(members["depth"] == depth) & (members["width"] == width)]
                if facet.empty:
                    ax.set_axis_off()
                    continue
                _facet(ax, facet, rates, norm)
                rho = facet[SPEARMAN].iloc[0]
                note = "" if facet["has_dropout"].any() else "no dropout layer\n"
                ax.set_title(f"depth {depth}, width {width}\n{note}Spearman ρ = {rho:.2f}")
                if j == 0:
                    ax.set_ylabel(r"$\hat\lambda$ (ridge)")
                if i == len(depths) - 1:
                    ax.set_xlabel("dropout rate")
        mappable = plt.cm.ScalarMappable(norm=norm, cmap=CMAP)
        fig.colorbar(mappable, ax=axes, label="Loss from fitting regularizer", shrink=0.8)
        dataset = members["dataset"].iloc[0]
        n_seeds = members["seed"].nunique()
        # two lines: a single facet is narrower than the one-line title
        fig.suptitle(
            f"Implicit L2 penalty of dropout\n{dataset}, {n_seeds} seed"
            f"{'s' if n_seeds != 1 else ''}, preset {members['preset'].iloc[0]}"
        )
    return fig
