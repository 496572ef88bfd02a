"""Drawing helpers shared by the OLS figures (4 and 7): long matrices, heatmaps, bands.

Heatmaps use ``HEATMAP_CMAP`` = matplotlib's ``PuOr_r`` (purple–white–orange), a colour-blind
safe diverging map standing in for the paper's colorcet CET-CBD1 (blue–grey–yellow), which is
not a dependency; colour limits are symmetric about 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from gradmatch.plots import style

HEATMAP_CMAP = "PuOr_r"


def matrix(frame: pd.DataFrame, figure: str, what: str) -> np.ndarray:
    """The square matrix held by a long (row, col, value) table; raises if incomplete."""
    size = int(frame["row"].max()) + 1
    if len(frame) != size * size or frame[["row", "col"]].duplicated().any():
        raise ValueError(
            f"{figure}: {what} has {len(frame)} (row, col) entries; a {size}×{size} matrix "
            "needs each pair exactly once (filter the table to one matrix)"
        )
    values = np.zeros((size, size))
    values[frame["row"].to_numpy(int), frame["col"].to_numpy(int)] = frame["value"].to_numpy()
    return values


def select(frame: pd.DataFrame, figure: str, what: str, **keys) -> pd.DataFrame:
    """Rows of ``frame`` whose key columns equal ``keys``; raises naming the missing value."""
    mask = np.ones(len(frame), dtype=bool)
    for column, value in keys.items():
        mask &= np.isclose(frame[column], value) if _is_float(value) else frame[column] == value
    rows = frame[mask]
    if rows.empty:
        have = {column: sorted(frame[column].unique().tolist()) for column in keys}
        raise ValueError(f"{figure}: {what} has no rows with {keys}; it has {have}")
    return rows


def _is_float(value) -> bool:
    return isinstance(value, float)


def heatmap(fig, ax, values: np.ndarray, title: str, *, colorbar: bool = True):
    """Draw a matrix with symmetric diverging limits and a horizontal colorbar below it."""
    cmap, norm = style.diverging(values, cmap=HEATMAP_CMAP)
    image = ax.imshow(values, cmap=cmap, norm=norm, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
    if colorbar:
        bar = fig.colorbar(image, ax=ax, orientation="horizontal", fraction=0.06, pad=0.04)
        bar.ax.tick_params(labelsize=6)
        bar.ax.xaxis.set_major_locator(MaxNLocator(3))
        bar.formatter.set_powerlimits((-2, 2))
        bar.ax.xaxis.get_offset_text().set_fontsize(6)
        bar.update_ticks()
    return image


def band(ax, x, mean, half_width, color: str, label: str, **line) -> None:
    """A line with a shaded mean ± half-width band."""
    ax.fill_between(x, mean - half_width, mean + half_width, color=color, alpha=0.25, lw=0)
    ax.plot(x, mean, color=color, label=label, **line)


def pool_summary(frame: pd.DataFrame, by: str, value: str) -> pd.DataFrame:
    """Mean over pools and the half-width 1.96·SD/√(#pools) per value of ``by``."""
    grouped = frame.groupby(by)[value]
    summary = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1), "n": grouped.size()})
    summary["half"] = 1.96 * summary["sd"].fillna(0.0) / np.sqrt(summary["n"])
    return summary.reset_index()


def panel_label(ax, letter: str) -> None:
    """Bold panel letter at the top left, outside the axes."""
    ax.text(
        -0.1,
        1.02,
        letter,
        transform=ax.transAxes,
        fontweight="bold",
        fontsize=11,
        va="bottom",
        ha="right",
    )
