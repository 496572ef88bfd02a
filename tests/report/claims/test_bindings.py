"""The registered Fig. 5, Fig. 6 and Fig. S1 claims read the tables the experiments write.

Each experiment runs once on a tiny digits configuration (seconds on a CPU); its table goes
through the registered claims by table id, exactly as `gradmatch claims --input <id>=PATH` reads
the workflow's files, and is checked against the experiment's TABLES declaration on the way.
"""

from __future__ import annotations

import pandas as pd
import pytest

from gradmatch import config, io
from gradmatch.experiments import dropout, igr
from gradmatch.experiments import igr_long_horizon as lh
from gradmatch.report import claims
from gradmatch.report.claims import registry

TINY = {"dataset": "digits", "device": "cpu", "preset": "smoke"}


def _settings(section: str, overlay: dict):
    return config.section_settings({**TINY, section: overlay}, section)


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("claims_bindings")
    settings = _settings(
        "dropout",
        {"depths": [1, 2], "widths": [4], "rates": [0.0, 0.25, 0.5], "seeds": [1],
         "batch_size": 512, "early_stopping": {"max_epochs": 1},
         "adam_fit": {"max_epochs": 1, "batch_size": 512}},
    )  # fmt: skip
    members = pd.concat(
        [dropout.run(settings, chunk) for chunk in range(dropout.n_chunks(settings))],
        ignore_index=True,
    )
    runs = igr.run(
        _settings(
            "igr",
            {"widths": [4], "learning_rates": [1e-3, 0.5], "epochs": 1, "n_train": 128,
             "n_val": 32, "n_test": 32, "probe_size": 64, "probe_steps": 1, "rk4_substeps": 1,
             "min_train_accuracy": 0.0},
        ),
        chunk=0,
    )["runs"]  # fmt: skip
    drift = lh.run(
        _settings(
            "igr_long_horizon",
            {"synthetic_samples": 20, "synthetic_features": 2, "synthetic_lrs": [0.01],
             "synthetic_steps": 2, "mlp_hidden": [4], "mlp_activations": ["tanh"], "mlp_steps": 2,
             "mlp_samples": 20, "rk4_substeps": 1},
        )
    )  # fmt: skip
    paths = {}
    for table_id, frame in {
        "dropout.members": members,
        "igr.runs": runs,
        "igr_long_horizon.drift": drift,
    }.items():
        paths[table_id] = str(folder / f"{table_id}.parquet")
        io.write_parquet(frame, paths[table_id])
    return paths


def test_every_declared_analysis_declares_the_tables_the_claims_read():
    for table_id in claims.required_tables():
        registry.declaration(table_id)  # raises when TABLES exists but lacks the table
    assert set(claims.undeclared_tables()) <= set(claims.required_tables())


def test_fig5_fig6_and_figS1_claims_evaluate_on_the_experiments_tables(tables):
    selected = [c for c in claims.registered() if set(c.tables) <= set(tables)]
    assert {c.id for c in selected} == {
        "fig5.monotone", "fig6.slope", "fig6.calibration", "figS1.closer",
    }  # fmt: skip
    table = claims.evaluate_claims(selected, paths=tables).set_index("claim_id")
    assert list(table.index) == [
        "fig5.monotone.d1_w4_lstsq", "fig5.monotone.d1_w4_adam", "fig5.monotone.d2_w4_lstsq",
        "fig5.monotone.d2_w4_adam", "fig6.slope", "fig6.calibration",
        "figS1.closer.linear_eta0.01", "figS1.closer.mlp_tanh",
    ]  # fmt: skip
    assert table.loc["fig5.monotone.d1_w4_lstsq", "verdict"] == "n/a"
    assert table.loc["fig5.monotone.d2_w4_lstsq", "verdict"] in {"pass", "FAIL"}
    assert table.loc["fig5.monotone.d2_w4_lstsq", "detail"] == "3 rates × 1 seed"
    assert table.loc["fig6.slope", "detail"] == "2 runs; 0 excluded"
    assert set(table["preset"]) == {"smoke"}
    assert table.loc["fig5.monotone.d2_w4_lstsq", "dataset"] == "digits"
    assert table.loc["fig6.slope", "dataset"] == "digits"
    assert table.loc["figS1.closer.mlp_tanh", "dataset"] == "digits"
    assert table.loc["figS1.closer.linear_eta0.01", "dataset"] == "synthetic"
    assert table.loc["fig6.slope", "inputs"] == tables["igr.runs"]
    assert table.loc["fig6.slope", "source"].startswith("Sec. 3 (Fig. 6)")
    for statement in table["statement"]:
        assert claims.tex_escape(statement)
    for detail in table["detail"]:
        assert claims.tex_escape(detail) is not None
