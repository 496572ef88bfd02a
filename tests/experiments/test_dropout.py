"""Figure 5 experiment: settings, chunks, and the smoke preset trains, matches, λ̂(0.5) > λ̂(0)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradmatch import config as config_lib
from gradmatch.core.stats import spearman
from gradmatch.experiments import dropout

REPO = Path(__file__).resolve().parents[2]


def preset_settings(name: str, **overrides) -> dropout.Settings:
    """The preset's dropout section with ``overrides`` overlaid (config rule), on the CPU."""
    loaded = config_lib.load_yaml(REPO / "config" / f"{name}.yaml")
    loaded = loaded | {"device": "cpu", "dropout": (loaded.get("dropout") or {}) | overrides}
    return config_lib.section_settings(loaded, "dropout")


@pytest.fixture(scope="module")
def smoke_table() -> pd.DataFrame:
    return dropout.run(preset_settings("smoke"), chunk=0)


def test_defaults_are_the_paper_values():
    paper = dropout.Settings()
    assert (paper.depths, paper.widths, len(paper.rates), len(paper.seeds)) == (
        (1, 3, 5), (128, 256, 512), 8, 10,
    )  # fmt: skip
    assert (paper.early_stopping.max_epochs, paper.early_stopping.patience) == (500, 50)
    fit = paper.adam_fit
    assert (fit.lr, fit.max_epochs, fit.patience, fit.batch_size) == (0.05, 2000, 100, 2048)
    assert (fit.plateau_factor, fit.plateau_patience, fit.init_log_std) == (0.5, 10, 0.1)
    assert paper.match_weights == "final" and paper.mnist_dir is None
    assert dropout.n_chunks(paper) == 9


def test_module_imports_reads_tables_and_counts_chunks_without_torch():
    code = (
        "import sys; from gradmatch.experiments import dropout as m; s = m.Settings(); "
        "print(m.n_chunks(s), sorted(m.TABLES), m.RESOURCES.gpu, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["9", "['members']", "1", "False"]


def test_chunks_are_depth_width_pairs():
    settings = dropout.Settings(depths=(1, 3), widths=(32, 64), dataset="digits", batch_size=64)
    assert dropout.n_chunks(settings) == 4
    assert [dropout.chunk_shape(settings, c) for c in range(4)] == [
        (1, 32), (1, 64), (3, 32), (3, 64),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="chunk 4 out of range; there are 4"):
        dropout.chunk_shape(settings, 4)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"rates": [0.0, 1.0]}, "dropout.rates"),
        ({"match_weights": "last"}, "dropout.match_weights"),
        ({"seeds": [1, 1]}, "seeds"),
        ({"momentum": 1.0}, "dropout.momentum"),
        ({"adam_fit": {"batch_size": 0}}, "dropout.adam_fit.batch_size"),
        ({"weights": "final"}, "dropout.weights"),
        ({"data_root": "data/raw/mnist"}, "dropout.data_root"),
    ],
)
def test_invalid_settings_name_the_key(changes, key):
    with pytest.raises(config_lib.ConfigError, match=key.replace(".", r"\.")):
        config_lib.build_settings(dropout.Settings, changes)


def test_mnist_without_mnist_dir_says_the_workflow_fills_it():
    with pytest.raises(ValueError, match="set mnist_dir"):
        dropout.load_data(dropout.Settings(dataset="mnist"))


@pytest.mark.slow
def test_smoke_lambda_grows_with_dropout(smoke_table):
    by_rate = smoke_table.set_index("dropout_rate")
    assert list(by_rate.index) == [0.0, 0.25, 0.5]
    assert by_rate.loc[0.5, "lambda_hat_lstsq"] > 1.5 * by_rate.loc[0.0, "lambda_hat_lstsq"]
    assert by_rate.loc[0.5, "lambda_hat_nnls"] > by_rate.loc[0.0, "lambda_hat_nnls"]


@pytest.mark.slow
def test_smoke_table_is_declared_and_the_fits_agree(smoke_table):
    dropout.TABLES["members"].check(smoke_table)
    row = smoke_table.iloc[0]
    assert (row["dataset"], row["preset"], row["depth"], row["width"]) == ("digits", "smoke", 2, 32)
    assert len(smoke_table) == 3 and smoke_table["seed"].tolist() == [123, 123, 123]
    assert set(smoke_table["matched_weights"]) == {"final"}
    for method in dropout.METHODS:
        column = f"spearman_rate_lambda_{method}"
        assert smoke_table[column].nunique() == 1
        expected = spearman(smoke_table["dropout_rate"], smoke_table[f"lambda_hat_{method}"])
        assert smoke_table[column].iloc[0] == pytest.approx(expected)
    # lstsq is the exact minimiser: no other λ has a lower matching loss
    assert (smoke_table["fit_loss_lstsq"] <= smoke_table["fit_loss_adam"] * (1 + 1e-12)).all()
    theta_fraction = smoke_table["lambda_hat_lstsq"] * 2 * smoke_table["theta_sq_norm"]
    cosine = smoke_table["fit_cosine_lstsq"] * smoke_table["loss_grad_norm"]
    np.testing.assert_allclose(theta_fraction / smoke_table["theta_sq_norm"] ** 0.5, cosine)
    assert (smoke_table["fit_steps_adam"] == smoke_table["fit_epochs_adam"]).all()  # full batch
    assert smoke_table["has_dropout"].tolist() == [False, True, True]
    recorded = json.loads(smoke_table["settings"].iloc[0])
    assert recorded["early_stopping"]["max_epochs"] == 60 and "wandb" not in recorded


@pytest.mark.slow
def test_depth_one_has_no_dropout_so_rates_do_not_matter():
    settings = preset_settings(
        "smoke",
        depths=[1],
        rates=[0.0, 0.5],
        seeds=[123, 42],
        early_stopping={"max_epochs": 5},
        adam_fit={"max_epochs": 5},
    )
    table = dropout.run(settings, chunk=0)
    lam = table.pivot(index="seed", columns="dropout_rate", values="lambda_hat_lstsq")
    np.testing.assert_array_equal(lam[0.0], lam[0.5])
    assert not table["has_dropout"].any()
    assert table["spearman_rate_lambda_lstsq"].iloc[0] == 0.0
