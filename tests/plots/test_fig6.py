"""Figure 6 draws included runs only, says how many were excluded, and refuses an empty set."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gradmatch.plots import fig6  # noqa: E402


def runs_table(excluded=(False, False, False, True)) -> pd.DataFrame:
    lrs = np.array([0.01, 0.05, 0.1, 0.5])
    n_params = 1000
    theory = lrs * n_params / 4
    return pd.DataFrame(
        {
            "n_params": n_params,
            "lr": lrs,
            "excluded": list(excluded),
            "min_train_accuracy": 0.9,
            "r_ig": 1.0 / lrs,
            "lambda_hat": 0.9 * theory,
            "lambda_theory": theory,
            "test_accuracy": [0.90, 0.91, 0.92, 0.50],
        }
    )


def test_fig6_draws_three_panels_and_counts_the_excluded_runs():
    figure = fig6.draw({"runs": runs_table()})
    panels = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) >= 3
    assert "3 of 4 runs shown; 1 excluded" in figure._suptitle.get_text()
    plt.close(figure)


def test_fig6_refuses_a_table_without_an_included_run():
    with pytest.raises(ValueError, match="none of the 4 runs has a positive"):
        fig6.draw({"runs": runs_table(excluded=(True, True, True, True))})
