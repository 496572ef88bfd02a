"""Figure 1 draws from its tables only and refuses tables that cannot support it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from gradmatch.experiments import ridge_stationarity
from gradmatch.plots import fig1


@pytest.fixture(scope="module")
def ridge_tables():
    return ridge_stationarity.run(ridge_stationarity.Settings())


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
