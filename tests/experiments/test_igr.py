"""Figure 6 (IGR): Eq. 6 calibration, RK4 order, checkpoint selection and exclusion, tables,
settings, torch-free import, plots."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from gradmatch import config
from gradmatch.core import flows
from gradmatch.data import normalization
from gradmatch.experiments import igr
from gradmatch.plots import fig6


def tanh_regression(seed: int = 0):
    """A small tanh network with the (quadratic) mean squared error, float64."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=generator, dtype=torch.float64)
    y = torch.sin(x.sum(dim=1, keepdim=True))
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 8, bias=False), nn.Tanh(), nn.Linear(8, 1)).double()
    return model, x, y


@pytest.mark.parametrize("lr", [1e-3, 3e-3])
def test_lambda_hat_recovers_eta_p_over_4_at_small_step(lr):
    model, x, y = tanh_regression()
    settings = igr.Settings(probe_dtype="float64")
    fit = igr.probe_model(settings, model, (x, y), lr, loss="mse")
    p = sum(param.numel() for param in model.parameters())
    assert fit.lambda_theory == pytest.approx(lr * p / 4)
    assert fit.lambda_hat / fit.lambda_theory == pytest.approx(1.0, abs=0.10)
    assert fit.residual_ratio < 0.1
    assert fit.grad_norm_squared > 0


def test_rk4_flow_error_falls_as_substeps_to_the_fourth():
    model, x, y = tanh_regression(seed=1)
    time = 2.0
    reference = flows.gradient_flow(model, "mse", x, y, time, substeps=512)
    errors = [
        float(torch.linalg.vector_norm(
            flows.gradient_flow(model, "mse", x, y, time, substeps=k) - reference
        ))
        for k in (8, 16, 32)
    ]  # fmt: skip
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(3.5 < order < 4.5 for order in orders), orders


def test_select_checkpoint_flags_runs_below_threshold_and_breaks_ties_early():
    train = np.array([[0.5, 0.95, 0.2], [0.92, 0.97, 0.3], [0.91, 0.99, 0.89]])
    val = np.array([[0.9, 0.80, 0.9], [0.70, 0.85, 0.9], [0.70, 0.85, 0.9]])
    chosen, excluded = igr.select_checkpoint(train, val, 0.90)
    assert chosen.tolist() == [1, 1, -1]
    assert excluded.tolist() == [False, False, True]


def test_select_checkpoint_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        igr.select_checkpoint(np.zeros((3, 2)), np.zeros((2, 2)), 0.9)


def tiny_settings(**overrides) -> igr.Settings:
    values = dict(
        dataset="digits", widths=(4, 6), learning_rates=(1e-4, 0.5), epochs=2, n_train=256,
        n_val=64, n_test=64, probe_size=128, probe_steps=2, rk4_substeps=2, device="cpu",
    )  # fmt: skip
    values.update(overrides)
    return igr.Settings(**values)


def test_runs_that_never_reach_the_threshold_are_kept_and_flagged():
    out = igr.run(tiny_settings(min_train_accuracy=0.99), chunk=1)
    runs = out["runs"]
    assert len(runs) == 2 and runs["excluded"].all()
    assert runs["selected_epoch"].tolist() == [-1, -1]
    assert runs["lambda_hat"].isna().all() and runs["test_accuracy"].isna().all()
    assert (runs["max_train_accuracy"] < 0.99).all()
    assert runs["width"].tolist() == [6, 6]
    assert runs["n_params"].iloc[0] == 64 * 6 + 4 * 6 * 6 + 6 * 10 + 10
    assert len(out["epochs"]) == 2 * 2
    igr.TABLES["runs"].check(runs)
    igr.TABLES["epochs"].check(out["epochs"])
    with pytest.raises(ValueError, match="none of the 2 runs"):
        fig6.draw({"runs": runs})


def test_eligible_run_is_probed_at_its_best_validation_epoch():
    out = igr.run(tiny_settings(min_train_accuracy=0.0), chunk=0)
    runs, epochs = out["runs"], out["epochs"]
    assert not runs["excluded"].any()
    for _, row in runs.iterrows():
        history = epochs[epochs["lr"] == row["lr"]]
        best = history.loc[history["val_accuracy"].idxmax()]
        assert row["selected_epoch"] == best["epoch"]
        assert row["test_accuracy"] == best["test_accuracy"]
    assert np.isfinite(runs["lambda_hat"]).all() and (runs["r_ig"] > 0).all()
    assert runs["lambda_ratio"].tolist() == pytest.approx(
        (runs["lambda_hat"] / (runs["lr"] * runs["n_params"] / 4)).tolist()
    )
    for name, table in igr.TABLES.items():
        table.check(out[name], name)


def test_chunk_out_of_range_names_the_widths():
    with pytest.raises(ValueError, match="chunk 2 out of range"):
        igr.run(tiny_settings(), chunk=2)


def test_split_larger_than_the_data_names_the_key():
    with pytest.raises(config.ConfigError, match=r"'igr\.n_train' = 1500: n_train \+ n_val = 1600"):
        config.build_settings(igr.Settings, {"n_train": 1500, "n_val": 100}, {"dataset": "digits"})


def test_digits_normalisation_uses_the_train_split_statistics():
    x, _ = normalization.load_normalized("digits", "train", None)
    assert float(x.double().mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(x.double().std()) == pytest.approx(1.0, abs=1e-5)
    assert normalization.normalization("mnist", None) == (0.1307, 0.3081)


def test_mnist_without_mnist_dir_says_the_workflow_fills_it():
    settings = igr.Settings(dataset="mnist")
    assert settings.mnist_dir is None
    with pytest.raises(ValueError, match="set mnist_dir"):
        igr.split_data(settings)


def test_module_imports_reads_tables_and_counts_chunks_without_torch():
    code = (
        "import sys; from gradmatch.experiments import igr; "
        "s = igr.Settings(widths=(4, 8, 16)); "
        "print(igr.n_chunks(s), sorted(igr.TABLES), igr.RESOURCES.gpu, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "['epochs',", "'runs']", "1", "False"]


def test_settings_defaults_are_the_paper_values_and_bad_values_name_the_key():
    settings = igr.Settings()
    assert settings.widths == (50, 100, 200, 400, 800, 1600) and len(settings.learning_rates) == 7
    assert (settings.epochs, settings.n_train, settings.probe_steps) == (50, 10_000, 5)
    assert "wandb" not in settings.record()
    for changes, key in [
        ({"widths": ()}, "widths"),
        ({"learning_rates": (0.1, 0.0)}, "learning_rates"),
        ({"min_train_accuracy": 1.5}, "min_train_accuracy"),
        ({"probe_dtype": "float16"}, "probe_dtype"),
        ({"data_root": "data/raw/mnist"}, "data_root"),
    ]:
        with pytest.raises(ValueError, match=key):
            igr.Settings(**changes)


def test_smoke_preset_overlays_the_paper_defaults():
    smoke = config.section_settings(config.load_yaml("config/smoke.yaml"), "igr")
    assert smoke.widths == (8, 16) and smoke.learning_rates == (0.001, 0.5)
    assert (smoke.epochs, smoke.min_train_accuracy, smoke.probe_size) == (2, 0.15, 256)
    assert (smoke.depth, smoke.probe_seed_offset, smoke.dataset) == (5, 991, "digits")
    assert json.loads(config.settings_record(smoke))["preset"] == "smoke"


def test_fig6_counts_excluded_runs_in_the_title():
    runs = pd.DataFrame(
        {
            "n_params": [100, 100, 400, 400],
            "lr": [0.01, 0.1, 0.01, 0.1],
            "excluded": [False, False, False, True],
            "min_train_accuracy": 0.9,
            "r_ig": [1e-3, 5e-4, 2e-3, np.nan],
            "lambda_hat": [0.2, 2.6, 1.1, np.nan],
            "lambda_theory": [0.25, 2.5, 1.0, 10.0],
            "test_accuracy": [0.9, 0.92, 0.91, np.nan],
        }
    )
    figure = fig6.draw({"runs": runs})
    assert "3 of 4 runs shown; 1 excluded" in figure._suptitle.get_text()
    assert len(figure.axes) == 4  # three panels and the colorbar
