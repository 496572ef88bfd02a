"""Figure 2 draws from its tables only and refuses tables that cannot support it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from gradmatch.experiments import sgd_vs_flow
from gradmatch.plots import fig2


@pytest.fixture(scope="module")
def flow_tables():
    settings = sgd_vs_flow.Settings(flow_steps=400, grid_points=60)
    return sgd_vs_flow.run(settings)


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
    steps = flow_tables["sgd_steps"]
    batch = len(str(steps["batch_indices"].iloc[0]).split())
    assert f"SGD iterates ({len(steps)} steps, batch {batch})" in labels
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
