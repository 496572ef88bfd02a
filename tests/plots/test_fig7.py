"""Figure 7: drawn from smoke-scale tables; refusals name the table, column or value."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gradmatch.experiments import (  # noqa: E402
    ols_bootstrap,
    ols_bootstrap_sigma,
)
from gradmatch.plots import fig7  # noqa: E402


@pytest.fixture(scope="module")
def fig7_tables() -> dict[str, pd.DataFrame]:
    tables = ols_bootstrap.run(ols_bootstrap.Settings(n_endpoints=12, heatmap_m=(1, 6, 12)))
    sweep = ols_bootstrap_sigma.Settings(noise_stds=(0.5, 10.0), n_endpoints=12, n_pools=2)
    return {**tables, "sigma_sweep": ols_bootstrap_sigma.run(sweep)}


def test_fig7_draws_six_panels(fig7_tables):
    figure = fig7.draw(fig7_tables)
    titles = [ax.get_title() for ax in figure.axes]
    assert r"$\hat\Lambda_{m=12}$" in titles
    m = int(fig7_tables["distance"]["m"].max())
    assert f"one stacked sequence, m = 1..{m}" in titles
    pools = fig7_tables["sigma_sweep"]["pool"].nunique()
    legends = [
        t.get_text() for ax in figure.axes if ax.get_legend() for t in ax.get_legend().get_texts()
    ]
    assert f"bootstrap, mean ± 1.96 SE ({pools} pools)" in legends
    assert len(figure.axes) == 4 + 4 + 2  # heatmaps, their colorbars, E, F
    plt.close(figure)


def test_fig7_refuses_the_wrong_number_of_heatmaps(fig7_tables):
    estimates = fig7_tables["estimates"]
    with pytest.raises(ValueError, match="heatmap_m"):
        fig7.draw(dict(fig7_tables, estimates=estimates[estimates["m"] != 6]))
