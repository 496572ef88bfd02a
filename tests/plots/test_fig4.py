"""Figure 4: drawn from smoke-scale tables; refusals name the table, column or value."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gradmatch.experiments import (  # noqa: E402
    ols_endpoint,
    ols_fixed_stop,
    ols_ridge_trace,
    ols_variable_stop,
)
from gradmatch.plots import fig4  # noqa: E402
from gradmatch.settings import AdamFit, EarlyStopping  # noqa: E402


@pytest.fixture(scope="module")
def fig4_tables() -> dict[str, pd.DataFrame]:
    endpoint = ols_endpoint.run(
        ols_endpoint.Settings(adam_fit=AdamFit(max_epochs=200, patience=150))
    )
    return {
        **endpoint,
        "fixed_estimate": ols_fixed_stop.run(ols_fixed_stop.Settings(n_endpoints=12))["estimate"],
        "variable_distance": ols_variable_stop.run(
            ols_variable_stop.Settings(
                n_endpoints=12,
                n_pools=2,
                early_stopping=EarlyStopping(max_epochs=800, patience=5, min_delta=1e-3),
            )
        )["distance"],
        "ridge_trace": ols_ridge_trace.run(
            ols_ridge_trace.Settings(
                checkpoints=(1, 10, 100),
                adam_fit=AdamFit(lr=0.05, max_epochs=300, patience=2000, init=1.0),
            )
        ),
    }


def test_fig4_draws_five_panels_with_colorbars(fig4_tables):
    figure = fig4.draw(fig4_tables)
    titles = [ax.get_title() for ax in figure.axes]
    assert r"Theory $\Lambda^{(500)}$" in titles and r"diag($\hat q$), 1 endpoint" in titles
    # how many endpoints stand behind each panel, read from the tables
    m = int(fig4_tables["fixed_estimate"]["m"].max())
    assert rf"$\hat\Lambda$, $m={m}$ endpoints, fixed $t$" in titles
    checkpoints = fig4_tables["ridge_trace"]["step"].nunique()
    assert f"one trajectory, {checkpoints} checkpoints" in titles
    distance = fig4_tables["variable_distance"]
    pools, endpoints = distance["pool"].nunique(), int(distance["m"].max())
    legends = [
        t.get_text() for ax in figure.axes if ax.get_legend() for t in ax.get_legend().get_texts()
    ]
    assert f"mean ± 1.96 SE ({pools} pools of {endpoints} endpoints)" in legends
    labels = {ax.get_xlabel() for ax in figure.axes}
    assert "Gradient descent steps $t$" in labels
    assert "Number of distinct training endpoints $m$" in labels
    assert len(figure.axes) == 2 + 4 + 2 + 4  # 4 heatmaps + 3 columns, D, E, 4 colorbars
    plt.close(figure)


def test_fig4_refuses_a_missing_column(fig4_tables):
    broken = dict(fig4_tables, ridge_trace=fig4_tables["ridge_trace"].drop(columns="lambda_theory"))
    with pytest.raises(ValueError, match="ridge_trace.*lambda_theory"):
        fig4.draw(broken)


def test_fig4_refuses_panels_from_different_stop_steps(fig4_tables):
    shifted = fig4_tables["fixed_estimate"].assign(stop_step=123)
    with pytest.raises(ValueError, match="t = 123"):
        fig4.draw(dict(fig4_tables, fixed_estimate=shifted))


def test_fig4_refuses_an_endpoint_table_without_sigma_1(fig4_tables):
    endpoint = fig4_tables["endpoint"]
    theory = fig4_tables["theory"]
    tables = dict(fig4_tables, theory=theory[theory["noise_std"] == 10.0], endpoint=endpoint)
    with pytest.raises(ValueError, match="noise_std"):
        fig4.draw(tables)
