"""Figure 5 experiment: the smoke preset trains, matches, and shows λ̂(0.5) > λ̂(0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradmatch import config as config_lib
from gradmatch.experiments import dropout

REPO = Path(__file__).resolve().parents[2]


def preset_settings(name: str, **overrides) -> dropout.Settings:
    loaded = config_lib.load_yaml(REPO / "config" / f"{name}.yaml")
    globals_ = {key: loaded[key] for key in config_lib.GLOBAL_KEYS} | {"device": "cpu"}
    return config_lib.build_settings(dropout.Settings, loaded["dropout"] | overrides, globals_)


@pytest.fixture(scope="module")
def smoke_table() -> pd.DataFrame:
    return dropout.run(preset_settings("smoke"), chunk=0)


def test_chunks_are_depth_width_pairs():
    settings = dropout.Settings(depths=(1, 3), widths=(32, 64), dataset="digits")
    assert dropout.n_chunks(settings) == 4
    assert [dropout.chunk_shape(settings, c) for c in range(4)] == [
        (1, 32), (1, 64), (3, 32), (3, 64),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="chunk 4 out of range; there are 4"):
        dropout.chunk_shape(settings, 4)


def test_invalid_settings_name_the_key():
    with pytest.raises(ValueError, match=r"\['rates', 'weights'\]"):
        dropout.Settings(rates=(0.0, 1.0), weights="last")


def test_spearman_ties_and_constant():
    assert dropout.spearman(np.array([0, 1, 2, 3]), np.array([1.0, 2.0, 4.0, 8.0])) == 1.0
    assert np.isnan(dropout.spearman(np.array([0, 1, 2]), np.array([5.0, 5.0, 5.0])))


@pytest.mark.slow
def test_smoke_lambda_grows_with_dropout(smoke_table):
    by_rate = smoke_table.set_index("dropout_rate")
    assert list(by_rate.index) == [0.0, 0.25, 0.5]
    assert by_rate.loc[0.5, "lambda_hat_lstsq"] > 1.5 * by_rate.loc[0.0, "lambda_hat_lstsq"]
    assert by_rate.loc[0.5, "lambda_hat_nnls"] > by_rate.loc[0.0, "lambda_hat_nnls"]


@pytest.mark.slow
def test_smoke_table_columns_and_fits(smoke_table):
    row = smoke_table.iloc[0]
    assert (row["dataset"], row["preset"], row["depth"], row["width"]) == ("digits", "smoke", 2, 32)
    assert len(smoke_table) == 3 and smoke_table["seed"].tolist() == [123, 123, 123]
    for method in dropout.METHODS:
        column = f"spearman_rate_lambda_{method}"
        assert smoke_table[column].nunique() == 1
        expected = dropout.spearman(
            smoke_table["dropout_rate"], smoke_table[f"lambda_hat_{method}"]
        )
        assert smoke_table[column].iloc[0] == pytest.approx(expected)
    # lstsq is the exact minimiser: no other λ has a lower matching loss
    assert (smoke_table["fit_loss_lstsq"] <= smoke_table["fit_loss_adam"] * (1 + 1e-12)).all()
    theta_fraction = smoke_table["lambda_hat_lstsq"] * 2 * smoke_table["theta_sq_norm"]
    cosine = smoke_table["fit_cosine_lstsq"] * smoke_table["loss_grad_norm"]
    np.testing.assert_allclose(theta_fraction / smoke_table["theta_sq_norm"] ** 0.5, cosine)
    assert (smoke_table["fit_steps_adam"] == smoke_table["fit_epochs_adam"]).all()  # full batch
    assert smoke_table["has_dropout"].tolist() == [False, True, True]


@pytest.mark.slow
def test_depth_one_has_no_dropout_so_rates_do_not_matter():
    settings = preset_settings(
        "smoke", depths=[1], rates=[0.0, 0.5], seeds=[123, 42], max_epochs=5, fit_max_epochs=5
    )
    table = dropout.run(settings, chunk=0)
    lam = table.pivot(index="seed", columns="dropout_rate", values="lambda_hat_lstsq")
    np.testing.assert_array_equal(lam[0.0], lam[0.5])
    assert not table["has_dropout"].any()
    assert table["spearman_rate_lambda_lstsq"].iloc[0] == 0.0
