"""The registered Fig. 5, Fig. 6 and long-horizon claims read columns the experiments write.

Each experiment runs once on a tiny digits configuration (seconds on a CPU); its table goes
through the registered claims by table name, exactly as `gradmatch claims` reads the workflow's
files.
"""

from __future__ import annotations

import pandas as pd
import pytest

from gradmatch import io
from gradmatch.experiments import dropout, igr
from gradmatch.experiments import igr_long_horizon as lh
from gradmatch.report import claims

TINY = {"dataset": "digits", "device": "cpu", "preset": "smoke"}


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("claims_bindings")
    settings = dropout.Settings(
        depths=(1, 2), widths=(4,), rates=(0.0, 0.25, 0.5), seeds=(1,), max_epochs=1,
        fit_max_epochs=1, batch_size=512, **TINY,
    )  # fmt: skip
    members = pd.concat([dropout.run(settings, chunk) for chunk in range(2)], ignore_index=True)
    runs = igr.run(
        igr.Settings(
            widths=(4,), learning_rates=(1e-3, 0.5), epochs=1, n_train=128, n_val=32,
            n_test=32, probe_size=64, probe_steps=1, rk4_substeps=1, min_train_accuracy=0.0,
            **TINY,
        ),
        chunk=0,
    )["runs"]  # fmt: skip
    drift = lh.run(
        lh.Settings(
            synthetic_samples=20, synthetic_features=2, synthetic_lrs=(0.01,), synthetic_steps=2,
            mlp_hidden=(4,), mlp_activations=("tanh",), mlp_steps=2, mlp_samples=20,
            rk4_substeps=1, **TINY,
        )
    )  # fmt: skip
    paths = {}
    for name, frame in {"dropout": members, "igr_runs": runs, "igr_long_horizon": drift}.items():
        paths[name] = str(folder / f"{name}.parquet")
        io.write_parquet(frame, paths[name])
    return paths


def test_registered_tables_are_the_workflow_outputs():
    assert claims.TABLES["dropout"] == claims.Table(
        "data/generated/dropout/members.parquet", "aggregate_dropout"
    )
    assert claims.TABLES["igr_runs"] == claims.Table(
        "data/generated/igr/runs.parquet", "aggregate_igr"
    )
    assert claims.TABLES["igr_long_horizon"] == claims.Table(
        "data/generated/igr/long_horizon_drift.parquet", "igr_long_horizon"
    )


def test_fig5_fig6_and_long_horizon_claims_evaluate_on_the_experiments_tables(tables):
    registered = [c for c in claims.CLAIMS if set(c.tables) <= set(tables)]
    assert {c.id for c in registered} == {
        "fig5.monotone", "fig6.slope", "fig6.calibration", "igr_lh.closer",
    }  # fmt: skip
    table = claims.evaluate_claims(registered, paths=tables).set_index("claim_id")
    assert list(table.index) == [
        "fig5.monotone.d1_w4_lstsq", "fig5.monotone.d1_w4_adam", "fig5.monotone.d2_w4_lstsq",
        "fig5.monotone.d2_w4_adam", "fig6.slope", "fig6.calibration",
        "igr_lh.closer.linear_eta0.01", "igr_lh.closer.mlp_tanh",
    ]  # fmt: skip
    assert table.loc["fig5.monotone.d1_w4_lstsq", "verdict"] == "n/a"
    assert table.loc["fig5.monotone.d2_w4_lstsq", "verdict"] in {"pass", "FAIL"}
    assert table.loc["fig5.monotone.d2_w4_lstsq", "detail"] == "3 rates × 1 seed"
    assert table.loc["fig6.slope", "detail"] == "2 runs; 0 excluded"
    assert set(table["preset"]) == {"smoke"}
    assert table.loc["fig5.monotone.d2_w4_lstsq", "dataset"] == "digits"
    assert table.loc["fig6.slope", "dataset"] == "digits"
    assert table.loc["igr_lh.closer.mlp_tanh", "dataset"] == "digits"
    assert table.loc["igr_lh.closer.linear_eta0.01", "dataset"] == "synthetic"
    for statement in table["statement"]:
        assert claims.tex_escape(statement)
    for detail in table["detail"]:
        assert claims.tex_escape(detail) is not None
