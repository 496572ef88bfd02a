"""Shared look of every figure: rc parameters, figure sizes, and colour helpers.

Use as ``with style.context(): fig = plt.figure(figsize=style.figure_size(...))``. Nothing here
knows about a particular figure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import matplotlib as mpl
import numpy as np
from matplotlib.colors import Colormap, Normalize

# Column widths of a two-column paper, in inches.
COLUMN_WIDTH_IN = 3.25
TEXT_WIDTH_IN = 6.75
GOLDEN = (1 + 5**0.5) / 2

RC_PARAMS = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.6,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,  # embed TrueType, so text stays editable
    "svg.fonttype": "none",
}

# Colours used with the same meaning across figures.
COLORS = {
    "loss": "tab:red",
    "penalty": "tab:blue",
    "total": "dimgray",
    "flow": "red",
    "minibatch": "lightgray",
    "optimum": "gold",
}


@contextlib.contextmanager
def context() -> Iterator[None]:
    """Apply :data:`RC_PARAMS` inside the block only (no global change)."""
    with mpl.rc_context(RC_PARAMS):
        yield


def figure_size(width: str | float = "column", aspect: float = 1 / GOLDEN) -> tuple[float, float]:
    """(width, height) in inches: width "column", "text" or inches; height = width × aspect."""
    widths = {"column": COLUMN_WIDTH_IN, "text": TEXT_WIDTH_IN}
    if isinstance(width, str):
        if width not in widths:
            raise ValueError(
                f"figure_size: width must be one of {sorted(widths)} or inches, got {width!r}"
            )
        width = widths[width]
    if width <= 0 or aspect <= 0:
        raise ValueError(f"figure_size: width and aspect must be > 0, got {width}, {aspect}")
    return float(width), float(width) * aspect


def diverging(values, cmap: str = "RdBu_r", center: float = 0.0) -> tuple[Colormap, Normalize]:
    """A diverging colormap and a norm with symmetric limits center ± max|values − center|.

    Pass both to ``imshow``/``pcolormesh``/``scatter`` (``cmap=..., norm=...``) so that the
    centre colour always means ``center``. Raises when ``values`` hold no finite number.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ValueError("diverging: no finite values to set the colour limits from")
    half = float(np.max(np.abs(finite - center))) or 1.0
    norm = Normalize(vmin=center - half, vmax=center + half)
    return mpl.colormaps[cmap], norm


def require_columns(tables: dict, needs: dict[str, list[str]], figure: str) -> None:
    """Raise ValueError naming the table and columns a figure needs but did not get."""
    for name, columns in needs.items():
        if name not in tables:
            raise ValueError(f"{figure}: table '{name}' missing; got {sorted(tables)}")
        frame = tables[name]
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(
                f"{figure}: table '{name}' lacks column(s) {missing}; rebuild it with the "
                "current gradmatch (snakemake --forcerun <rule>)"
            )
        if frame.empty:
            raise ValueError(f"{figure}: table '{name}' is empty")
