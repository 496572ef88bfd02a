"""Long-horizon IGR appendix: the modified flow tracks gradient descent closer than the flow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gradmatch import config
from gradmatch.experiments import igr_long_horizon as lh
from gradmatch.plots import figS1
from gradmatch.train import resolve_device


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    settings = lh.Settings(mlp_activations=(), device="cpu", preset="smoke")
    return lh.run(settings)


def test_modified_flow_tracks_gd_closer_on_the_synthetic_regression(synthetic):
    later = synthetic[synthetic["step"] > 0]
    assert set(later["case"]) == {"linear_eta0.01", "linear_eta0.03"}
    assert (later["drift_ratio"] < 1).all()
    final = later.groupby("lr")["drift_ratio"].last()
    assert final[0.01] < 0.05 and final[0.03] < 0.1
    # the gap between the two flows is O(η): a larger step leaves a larger ratio
    assert final[0.01] < final[0.03]


def test_drift_table_starts_at_zero_and_grows(synthetic):
    first = synthetic[synthetic["step"] == 0]
    assert (first["drift_original"] == 0).all() and first["drift_ratio"].isna().all()
    trace = synthetic[synthetic["case"] == "linear_eta0.03"]
    assert trace["drift_original"].iloc[10] > trace["drift_original"].iloc[1] > 0
    assert trace["time"].iloc[-1] == pytest.approx(50 * 0.03)
    assert set(synthetic["preset"]) == {"smoke"} and set(synthetic["n_params"]) == {10}
    lh.TABLES["drift"].check(synthetic)


def test_gd_loss_decreases_on_the_regression(synthetic):
    trace = synthetic[synthetic["case"] == "linear_eta0.01"]["loss_gd"].to_numpy()
    assert np.all(np.diff(trace) < 0)


def test_mlp_case_runs_on_digits_and_stays_below_one_for_tanh():
    settings = lh.Settings(
        synthetic_lrs=(0.01,), synthetic_steps=1, mlp_hidden=(8,), mlp_activations=("tanh",),
        mlp_steps=3, mlp_samples=100, rk4_substeps=4, dataset="digits", device="cpu",
    )  # fmt: skip
    table = lh.run(settings)
    mlp = table[(table["case"] == "mlp_tanh") & (table["step"] > 0)]
    assert len(mlp) == 3 and (mlp["drift_ratio"] < 1).all()
    assert mlp["n_params"].iloc[0] == 64 * 8 + 8 * 10 + 10


def test_too_many_mlp_samples_names_the_key():
    with pytest.raises(ValueError, match="'igr_long_horizon.mlp_samples' = 5000: exceeds the 1500"):
        config.build_settings(lh.Settings, {"mlp_samples": 5000}, {"dataset": "digits"})


def test_unknown_activation_is_rejected():
    with pytest.raises(ValueError, match="mlp_activations"):
        lh.Settings(mlp_activations=("gelu",))


def test_plot_draws_two_panels_and_refuses_an_empty_table(synthetic):
    figure = figS1.draw({"drift": synthetic})
    assert len(figure.axes) == 2
    assert figure.axes[0].get_yscale() == "log" and figure.axes[1].get_yscale() == "log"
    with pytest.raises(ValueError, match="no step k > 0"):
        figS1.draw({"drift": synthetic[synthetic["step"] == 0]})


def test_mnist_without_mnist_dir_says_the_workflow_fills_it():
    settings = lh.Settings(dataset="mnist", device="cpu")
    with pytest.raises(ValueError, match="set mnist_dir"):
        lh.mlp_problem(settings, "tanh", resolve_device("cpu"))


def test_module_imports_and_reads_tables_without_torch():
    code = (
        "import sys; from gradmatch.experiments import igr_long_horizon as lh; "
        "s = lh.Settings(mlp_samples=10); "
        "print(list(lh.TABLES), lh.RESOURCES.gpu, s.rk4_substeps, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['drift']", "1", "20", "False"]
