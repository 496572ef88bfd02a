"""Figure 6: implicit gradient regularization, λ̂ (Eq. 6) against R_IG, test accuracy and ηp/4.

Three panels, every run coloured by its parameter count p (log colour scale, one colorbar):
(left) R_IG = ‖∇L‖²/p against λ̂, log–log, runs as translucent points and a dashed line per p
through the per-(p, η) means ordered by η; (middle) test accuracy (%) against λ̂, log x;
(right) λ̂ against λ_theory = ηp/4, log–log, with the dotted identity line. Runs flagged
``excluded`` (train accuracy never reached the threshold) are not drawn; their count is in the
title. The authors colour with crameri:batlow, which matplotlib lacks; viridis is the stand-in.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.ticker import NullFormatter

from gradmatch.plots import style

INPUTS = ("runs",)
COLUMNS = [
    "n_params",
    "lr",
    "excluded",
    "min_train_accuracy",
    "r_ig",
    "lambda_hat",
    "lambda_theory",
    "test_accuracy",
]
CMAP = "viridis"


def _included(runs: pd.DataFrame) -> pd.DataFrame:
    kept = runs[~runs["excluded"].astype(bool)]
    kept = kept[np.isfinite(kept["lambda_hat"]) & (kept["lambda_hat"] > 0)]
    if kept.empty:
        raise ValueError(
            f"fig6: none of the {len(runs)} runs has a positive λ̂ (all excluded or failed); "
            "train longer (igr.epochs) or lower igr.min_train_accuracy"
        )
    return kept


def _log_limits(values) -> tuple[float, float]:
    """Limits 1.5× beyond the data, widened to at least one decade so a major tick is labelled."""
    low, high = float(np.min(values)) / 1.5, float(np.max(values)) * 1.5
    if high / low < 10:
        centre = np.sqrt(low * high)
        low, high = centre / np.sqrt(10), centre * np.sqrt(10)
    return low, high


def _set_log(ax, x=None, y=None) -> None:
    """Log scales on the given axes, limits from the data, only decade ticks labelled."""
    if x is not None:
        ax.set(xscale="log", xlim=_log_limits(x))
        ax.xaxis.set_minor_formatter(NullFormatter())
    if y is not None:
        ax.set(yscale="log", ylim=_log_limits(y))
        ax.yaxis.set_minor_formatter(NullFormatter())


def _means(kept: pd.DataFrame) -> pd.DataFrame:
    columns = ["lambda_hat", "r_ig", "test_accuracy", "lambda_theory"]
    return kept.groupby(["n_params", "lr"], as_index=False)[columns].mean()


def _scatter(ax, x, y, kept, norm, alpha) -> None:
    ax.scatter(x, y, c=kept["n_params"], cmap=CMAP, norm=norm, s=18, alpha=alpha, linewidths=0)


def _panel_rig(ax, kept, means, norm) -> None:
    _scatter(ax, kept["lambda_hat"], kept["r_ig"], kept, norm, alpha=0.5)
    for p, group in means.groupby("n_params"):
        group = group.sort_values("lr")
        colour = plt.get_cmap(CMAP)(norm(p))
        ax.plot(group["lambda_hat"], group["r_ig"], "--", lw=1.0, color=colour)
    _set_log(ax, x=kept["lambda_hat"], y=kept["r_ig"])
    ax.set(xlabel=r"$\hat\lambda$", ylabel=r"$R_{IG}=\|\nabla L\|^2/p$")


def _panel_accuracy(ax, kept, norm) -> None:
    _scatter(ax, kept["lambda_hat"], 100 * kept["test_accuracy"], kept, norm, alpha=0.8)
    _set_log(ax, x=kept["lambda_hat"])
    ax.set(xlabel=r"$\hat\lambda$", ylabel="test accuracy (%)")


def _panel_theory(ax, kept, norm) -> None:
    _scatter(ax, kept["lambda_theory"], kept["lambda_hat"], kept, norm, alpha=0.8)
    values = np.concatenate([kept["lambda_theory"], kept["lambda_hat"]])
    _set_log(ax, x=values, y=values)
    low, high = ax.get_xlim()
    ax.plot([low, high], [low, high], ":", color="black", lw=1.0, label="identity")
    ax.set(xlabel=r"$\lambda_{theory}=\eta p/4$", ylabel=r"$\hat\lambda$")
    ax.legend(loc="upper left")


def draw(tables: dict[str, pd.DataFrame]):
    """The 1×3 figure from the aggregated ``runs`` table of :mod:`gradmatch.experiments.igr`."""
    style.require_columns(tables, {"runs": COLUMNS}, "fig6")
    runs = tables["runs"]
    kept = _included(runs)
    norm = LogNorm(
        vmin=runs["n_params"].min(), vmax=max(runs["n_params"].max(), runs["n_params"].min() + 1)
    )
    with style.context():
        fig, axes = plt.subplots(
            1, 3, figsize=style.figure_size("text", 0.36), layout="constrained"
        )
        _panel_rig(axes[0], kept, _means(kept), norm)
        _panel_accuracy(axes[1], kept, norm)
        _panel_theory(axes[2], kept, norm)
        bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=CMAP), ax=axes, shrink=0.9)
        bar.set_label("parameters p")
        threshold = float(runs["min_train_accuracy"].iloc[0])
        fig.suptitle(
            f"{len(kept)} of {len(runs)} runs shown; {int(runs['excluded'].sum())} excluded "
            f"(train accuracy < {threshold:.2f})",
            fontsize=8,
        )
    return fig
