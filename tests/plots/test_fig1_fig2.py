"""Figures 1 and 2 draw from their tables only and refuse tables that cannot support them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from gradmatch.experiments import ridge_stationarity, sgd_vs_flow
from gradmatch.plots import fig1_ridge_stationarity as fig1
from gradmatch.plots import fig2_sgd_vs_flow as fig2


@pytest.fixture(scope="module")
def ridge_tables():
    return ridge_stationarity.run(ridge_stationarity.Settings())


@pytest.fixture(scope="module")
def flow_tables():
    settings = sgd_vs_flow.Settings(flow_steps=400, grid_points=60)
    return sgd_vs_flow.run(settings)


def test_fig1_has_three_curves_the_legend_and_hidden_tick_labels(ridge_tables):
    figure = fig1.draw(ridge_tables)
    ax = figure.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["MSE loss", r"$\ell_2$ penalty", "Total objective"]
    assert [line.get_linestyle() for line in ax.get_lines()[:3]] == ["--", "--", "-"]
    assert all(not label.get_visible() or not label.get_text() for label in ax.get_xticklabels())
    assert ax.xaxis.get_tick_params()["labelbottom"] is False
    arrows = [child for child in ax.texts if child.arrow_patch is not None]
    assert len(arrows) == 2
    plt.close(figure)


def test_fig1_refuses_arrows_that_are_not_stationary(ridge_tables):
    tables = dict(ridge_tables)
    arrows = tables["arrows"].copy()
    arrows.loc[arrows["arrow"] == "grad_mse", "slope"] *= 0.5
    tables["arrows"] = arrows
    with pytest.raises(ValueError, match="not equal and opposite"):
        fig1.draw(tables)


@pytest.mark.parametrize(
    ("table", "column", "message"),
    [("curves", "value", "lacks column"), ("points", None, "is empty")],
)
def test_fig1_refuses_incomplete_tables(ridge_tables, table, column, message):
    tables = dict(ridge_tables)
    tables[table] = tables[table].drop(columns=column) if column else tables[table].iloc[:0]
    with pytest.raises(ValueError, match=f"'{table}' {message}"):
        fig1.draw(tables)


def test_fig2_has_28_contour_levels_no_ticks_and_both_arrow_kinds(flow_tables):
    figure = fig2.draw(flow_tables)
    ax = figure.axes[0]
    filled = [c for c in ax.collections if getattr(c, "filled", False)]
    assert len(filled) == 1 and len(filled[0].levels) == fig2.LEVELS == 28
    grid = flow_tables["loss_grid"]["loss"]
    assert filled[0].levels[-1] == pytest.approx(np.quantile(grid, 0.985))
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    labels = {text.get_text() for text in ax.get_legend().get_texts()}
    assert {"Full-batch step", "Minibatch step", "Gradient flow trajectory"} <= labels
    plt.close(figure)


def test_fig2_refuses_a_partial_loss_grid(flow_tables):
    tables = dict(flow_tables)
    tables["loss_grid"] = tables["loss_grid"].iloc[:-5]
    with pytest.raises(ValueError, match="not a full grid"):
        fig2.draw(tables)


def test_fig2_refuses_a_missing_marker(flow_tables):
    tables = dict(flow_tables)
    tables["markers"] = tables["markers"].query("marker != 'theta_star'")
    with pytest.raises(ValueError, match="theta_star"):
        fig2.draw(tables)
