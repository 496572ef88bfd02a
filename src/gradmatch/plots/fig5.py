"""Figure 5: estimated ridge penalty λ̂ against the dropout rate, one facet per (depth, width).

Rows are depths, columns widths (shared axes), as in the paper: only architectures with a
dropout layer are drawn (column ``has_dropout``; in the authors' architecture depth 1 has none,
and the paper reports depths 3 and 5 only); the figure title names the depths left out. In each
facet the dropout rate is a categorical x axis; a gray violin per rate shows the spread of λ̂
over seeds (clipped at the data range, as seaborn's ``cut=0``), and one point per seed is
coloured by the loss of the gradient-matching fit (shared colour scale and colorbar). The
plotted estimate is ``lambda_hat_lstsq``, the exact minimiser of Eq. 3 (the authors' Adam
estimate is ``lambda_hat_adam`` in the same table). Each facet title gives the table's
``spearman_rate_lambda_lstsq`` (the number the claims table checks, printed the same way) and
the networks behind it (rates × seeds).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from gradmatch.plots import style
from gradmatch.plots.numbers import fmt

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


def with_dropout(members: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    """The rows of architectures that have a dropout layer, and the depths left out."""
    has = members.groupby(["depth", "width"])["has_dropout"].transform("any").astype(bool)
    shown = members[has]
    if shown.empty:
        raise ValueError(
            f"fig5: no architecture with a dropout layer among depths "
            f"{sorted(int(d) for d in members['depth'].unique())} (dropout follows hidden "
            "blocks 1..depth−1); "
            "add a depth ≥ 2 to dropout.depths"
        )
    left_out = sorted(set(members["depth"]) - set(shown["depth"]))
    return shown, [int(depth) for depth in left_out]


def facet_title(depth: int, width: int, facet: pd.DataFrame) -> str:
    """Depth, width, the table's Spearman ρ and the networks behind the facet."""
    rho = facet[SPEARMAN].unique()
    if len(rho) != 1:
        raise ValueError(
            f"fig5: {SPEARMAN} takes {len(rho)} values at depth {depth}, width {width}; the "
            "table records one per (depth, width), rebuild it"
        )
    rates, seeds = facet["dropout_rate"].nunique(), facet["seed"].nunique()
    return (
        f"depth {depth}, width {width}\nSpearman ρ = {fmt(rho[0])}\n"
        f"networks: {rates} rates × {seeds} seed{'s' if seeds != 1 else ''}"
    )


def draw(tables: dict[str, pd.DataFrame]) -> Figure:
    _check(tables["members"])
    members, left_out = with_dropout(tables["members"])
    depths = sorted(members["depth"].unique())
    widths = sorted(members["width"].unique())
    rates = np.sort(members["dropout_rate"].unique())
    norm = Normalize(vmin=members[COLOUR].min(), vmax=members[COLOUR].max())
    with style.context():
        width_in = min(style.TEXT_WIDTH_IN, 1.2 + 2.4 * len(widths))
        fig, axes = plt.subplots(
            len(depths), len(widths), sharex=True, sharey=True, squeeze=False,
            figsize=(width_in, 0.9 + 2.1 * len(depths)), layout="constrained",
        )  # fmt: skip
        for i, depth in enumerate(depths):
            for j, width in enumerate(widths):
                ax = axes[i, j]
                facet = members[(members["depth"] == depth) & (members["width"] == width)]
                if facet.empty:
                    ax.set_axis_off()
                    continue
                _facet(ax, facet, rates, norm)
                ax.set_title(facet_title(depth, width, facet), fontsize=7.5)
                if j == 0:
                    ax.set_ylabel(r"$\hat\lambda$ (ridge)")
                if i == len(depths) - 1:
                    ax.set_xlabel("dropout rate")
        mappable = plt.cm.ScalarMappable(norm=norm, cmap=CMAP)
        fig.colorbar(mappable, ax=axes, label="Loss from fitting regularizer", shrink=0.8)
        dataset = members["dataset"].iloc[0]
        n_seeds = members["seed"].nunique()
        dropped = (
            f"\ndepth {', '.join(map(str, left_out))} not shown: no dropout layer"
            if left_out
            else ""
        )
        # several lines: a single facet is narrower than a one-line title
        fig.suptitle(
            f"Implicit L2 penalty of dropout\n{dataset}, {n_seeds} seed"
            f"{'s' if n_seeds != 1 else ''}, preset {members['preset'].iloc[0]}{dropped}"
        )
    return fig
