"""Figure 5 plot: facets depth × width, violins and seed points; bad tables raise."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402

from gradmatch.plots import fig5  # noqa: E402


def members_table(depths=(1, 3), widths=(32, 64), rates=(0.0, 0.25, 0.5), seeds=(1, 2, 3)):
    rows = []
    for depth, width, rate, seed in itertools.product(depths, widths, rates, seeds):
        rows.append(
            {
                "dataset": "digits", "preset": "default", "depth": depth, "width": width,
                "dropout_rate": rate, "seed": seed, "has_dropout": depth > 1 and rate > 0,
                "lambda_hat_lstsq": 1e-4 * (1 + rate * depth) + 1e-6 * seed,
                "fit_loss_lstsq": 1e-5 * (1 + rate), "spearman_rate_lambda_lstsq": 0.9,
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_draw_shows_only_architectures_with_a_dropout_layer():
    table = members_table()
    figure = fig5.draw({"members": table})
    facets = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert len(facets) == 2  # depth 3 × widths 32, 64; depth 1 has no dropout layer
    assert figure._suptitle.get_text() == (
        "Implicit L2 penalty of dropout\ndigits, 3 seeds, preset default\n"
        "depth 1 not shown: no dropout layer"
    )
    titles = sorted(ax.get_title() for ax in facets)
    assert titles[0] == "depth 3, width 32\nSpearman ρ = 0.9\nnetworks: 3 rates × 3 seeds"
    bottom = facets[-1]
    assert [t.get_text() for t in bottom.get_xticklabels()] == ["0", "0.25", "0.5"]
    scatters = [c for c in bottom.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in scatters) == 9  # 3 rates × 3 seeds
    assert len(bottom.collections) - len(scatters) == 3  # one violin per rate
    plt.close(figure)


def test_facet_title_prints_the_tables_rho_as_the_claims_table_does():
    table = members_table(depths=(2,), widths=(32,))
    table["spearman_rate_lambda_lstsq"] = 0.78125
    figure = fig5.draw({"members": table})
    (facet,) = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert "Spearman ρ = 0.7812" in facet.get_title()
    assert "not shown" not in figure._suptitle.get_text()
    table.loc[0, "spearman_rate_lambda_lstsq"] = 0.5
    with pytest.raises(ValueError, match="takes 2 values at depth 2, width 32"):
        fig5.draw({"members": table})
    plt.close(figure)


def test_a_table_without_any_dropout_layer_is_refused():
    with pytest.raises(
        ValueError, match="no architecture with a dropout layer among depths \\[1\\]"
    ):
        fig5.draw({"members": members_table(depths=(1,))})


def test_missing_column_raises():
    table = members_table().drop(columns="fit_loss_lstsq")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['fit_loss_lstsq'\]"):
        fig5.draw({"members": table})


def test_nan_estimate_raises():
    table = members_table()
    table.loc[0, "lambda_hat_lstsq"] = np.nan
    with pytest.raises(ValueError, match="non-finite lambda_hat_lstsq"):
        fig5.draw({"members": table})
