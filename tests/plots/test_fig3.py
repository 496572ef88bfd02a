"""Figure 3 plot: panels, lines per penalty value, mean ± SE, and refusals."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from gradmatch.plots import fig3

GRID = (1e-3, 1e-1, 10.0)


def _summary(methods=("lstsq", "adam")) -> pd.DataFrame:
    rows = []
    for l1 in GRID:
        for l2 in GRID:
            for seed in range(3):
                row = {"lambda_true_l1": l1, "lambda_true_l2": l2, "seed": seed}
                for method in methods:
                    row[f"lambda_hat_l1_{method}"] = l1 * (1 + 0.1 * seed)
                    row[f"lambda_hat_l2_{method}"] = l2 * (1 - 0.1 * seed)
                rows.append(row)
    return pd.DataFrame(rows)


def test_summarise_gives_mean_and_standard_error_over_seeds():
    table = fig3.summarise(_summary(), "l1", "lstsq")
    cell = table[(table["true"] == 1e-1) & (table["other"] == 10.0)].iloc[0]
    values = 1e-1 * np.array([1.0, 1.1, 1.2])
    assert cell["mean"] == pytest.approx(values.mean())
    assert cell["se"] == pytest.approx(values.std(ddof=1) / np.sqrt(3))
    assert cell["n"] == 3


def test_draw_has_two_log_panels_per_method_with_one_line_per_other_penalty():
    figure = fig3.draw({"summary": _summary()})
    axes = figure.axes
    assert len(axes) == 4
    assert all(ax.get_xscale() == "log" and ax.get_yscale() == "log" for ax in axes)
    assert axes[0].get_title() == r"$\lambda_1$ recovery (authors' Adam fit)"
    assert axes[3].get_title() == r"$\lambda_2$ recovery (least squares)"
    assert [text.get_text() for text in axes[0].get_legend().get_texts()] == [
        "$10^{-3}$", "$10^{-1}$", "$10^{1}$",
    ]  # fmt: skip
    diagonal = [line for line in axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(diagonal) == 1


def test_non_positive_means_are_counted_not_drawn():
    frame = _summary(methods=("lstsq",))
    frame.loc[frame["lambda_true_l1"] == 1e-3, "lambda_hat_l1_lstsq"] = -1.0
    figure = fig3.draw({"summary": frame})
    texts = [text.get_text() for text in figure.axes[0].texts]
    n = frame["seed"].nunique()
    assert texts == [f"n = {n} seeds per point\n3 mean(s) ≤ 0 not shown"]


def test_each_panel_states_the_seeds_behind_each_point_from_the_table():
    frame = _summary(methods=("lstsq",))
    n = frame["seed"].nunique()
    figure = fig3.draw({"summary": frame})
    assert [ax.texts[0].get_text() for ax in figure.axes] == [f"n = {n} seeds per point"] * 2
    # one seed fewer in one cell: the range is stated, read from the counts
    dropped = frame.drop(index=frame.index[0])
    figure = fig3.draw({"summary": dropped})
    assert figure.axes[0].texts[0].get_text() == f"n = {n - 1}–{n} seeds per point"


def test_refuses_tables_without_estimates_or_columns():
    frame = _summary()
    with pytest.raises(ValueError, match="lacks column"):
        fig3.draw({"summary": frame.drop(columns="seed")})
    estimates = [c for c in frame.columns if c.startswith("lambda_hat")]
    with pytest.raises(ValueError, match="has no estimates"):
        fig3.draw({"summary": frame.drop(columns=estimates)})
