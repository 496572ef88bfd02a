"""Figure S1 draws one curve per case in both panels and refuses drifts it cannot log-plot."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gradmatch.plots import figS1  # noqa: E402


def drift_table() -> pd.DataFrame:
    frames = []
    for case, lr in (("linear", 0.01), ("mlp_tanh", 0.01)):
        steps = np.arange(5)
        original = 1e-3 * steps.astype(float)
        modified = 1e-5 * steps.astype(float)
        ratio = np.divide(modified, original, out=np.zeros(5), where=original > 0)
        frames.append(
            pd.DataFrame(
                {
                    "case": case,
                    "lr": lr,
                    "step": steps,
                    "time": steps * lr,
                    "drift_original": original,
                    "drift_modified": modified,
                    "drift_ratio": ratio,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_figS1_draws_each_case_in_both_panels():
    figure = figS1.draw({"drift": drift_table()})
    ax_a, ax_b = figure.axes
    assert len(ax_a.get_lines()) == 2 * 2 + 2  # two flows per case, two legend stand-ins
    assert len(ax_b.get_lines()) == 2 + 1  # one ratio per case, the level-1 line
    # one trajectory per case, and each case's last-step ratio as the claims table prints it
    assert ax_b.get_title() == "(b) modified over original (2 trajectories)"
    labels = [text.get_text() for text in ax_b.get_legend().get_texts()]
    assert labels == [
        "linear η=0.01: ratio 0.01 at step 4",
        "MLP tanh η=0.01: ratio 0.01 at step 4",
    ]
    plt.close(figure)


def test_figS1_refuses_drifts_that_are_never_positive():
    table = drift_table().assign(drift_modified=0.0)
    with pytest.raises(ValueError, match="no step k > 0 with positive drifts"):
        figS1.draw({"drift": table})
