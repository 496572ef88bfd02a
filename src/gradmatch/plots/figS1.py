"""Figure S1 (Appendix I): drift of gradient descent from the original and the modified flow.

(a) ‖θ_k^GD − θ_flow(kη)‖ (solid) and ‖θ_k^GD − θ_modified(kη)‖ (dashed) against time t = kη,
log y, one colour per case; (b) their ratio modified/original against time, log y, with the
level 1 dotted (below 1: the modified flow tracks GD more closely). Step k = 0 (both drifts 0)
is left out. Each case is one trajectory; the legend of (b) gives the ratio at the case's last
step, the value the claims table checks (``drift_ratio``, printed the same way).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gradmatch.plots import style
from gradmatch.plots.numbers import fmt

INPUTS = ("drift",)
COLUMNS = ["case", "lr", "step", "time", "drift_original", "drift_modified", "drift_ratio"]


def _label(group: pd.DataFrame) -> str:
    """ "linear η=0.01" or "MLP tanh η=0.01"."""
    row = group.iloc[0]
    name = "linear" if row["case"].startswith("linear") else f"MLP {row['case'].split('_', 1)[1]}"
    return f"{name} η={row['lr']:g}"


def last_ratio(group: pd.DataFrame) -> str:
    """ "ratio 0.1234 at step 50": the drift ratio at the case's last step."""
    last = group.loc[group["step"].idxmax()]
    return f"ratio {fmt(last['drift_ratio'])} at step {int(last['step'])}"


def draw(tables: dict[str, pd.DataFrame]):
    """Panels (a) drift and (b) ratio from the ``drift`` table of ``igr_long_horizon``."""
    style.require_columns(tables, {"drift": COLUMNS}, "figS1")
    drift = tables["drift"]
    drift = drift[drift["step"] > 0]
    positive = (drift["drift_original"] > 0) & (drift["drift_modified"] > 0)
    if drift.empty or not positive.any():
        raise ValueError(
            "figS1: no step k > 0 with positive drifts; raise "
            "igr_long_horizon.synthetic_steps or mlp_steps"
        )
    drift = drift[positive]
    colours = plt.get_cmap("tab10")(np.arange(drift["case"].nunique()) % 10)
    with style.context():
        fig, (ax_a, ax_b) = plt.subplots(
            1, 2, figsize=style.figure_size("text", 0.38), layout="constrained"
        )
        for colour, (_, group) in zip(colours, drift.groupby("case", sort=False), strict=True):
            label = _label(group)
            ax_a.plot(group["time"], group["drift_original"], "-", color=colour, label=label)
            ax_a.plot(group["time"], group["drift_modified"], "--", color=colour)
            ax_b.plot(
                group["time"], group["drift_ratio"], "-", color=colour,
                label=f"{label}: {last_ratio(group)}",
            )  # fmt: skip
        ax_a.plot([], [], "-", color="gray", label="vs original flow")
        ax_a.plot([], [], "--", color="gray", label="vs modified flow")
        ax_a.set(
            yscale="log",
            xlabel=r"time $t=k\eta$",
            ylabel=r"drift $\|\theta^{GD}_k-"
            r"\theta(k\eta)\|$",
            title="(a) drift of GD from each flow",
        )
        ax_b.axhline(1.0, ls=":", color="black", lw=1.0)
        ax_b.set(
            yscale="log",
            xlabel=r"time $t=k\eta$",
            ylabel="drift ratio modified / original",
            title=f"(b) modified over original ({drift['case'].nunique()} trajectories)",
        )
        ax_a.legend(fontsize=6, loc="lower right")
        ax_b.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    return fig
