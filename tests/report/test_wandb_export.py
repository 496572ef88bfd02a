"""wandb-export turns a (fake) W&B API's runs into a parquet table without leaking secrets."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pandas as pd
import pytest

from gradmatch import io
from gradmatch.report import wandb_export


class FakeSummary:
    def __init__(self, values):
        self._json_dict = values


class FakeApi:
    def __init__(self, runs):
        self._runs = runs
        self.requested = []

    def runs(self, path):
        self.requested.append(path)
        return list(self._runs)


def _run(run_id, group, lam, **config):
    return SimpleNamespace(
        id=run_id,
        name=f"{group}-{run_id}",
        group=group,
        state="finished",
        created_at="2026-05-01T12:00:00",
        config={"_wandb": {"cli": "x"}, **config},
        summary=FakeSummary({"lambda_hat": lam, "_runtime": 3.0, "loss": math.nan}),
    )


def test_export_writes_one_row_per_run_with_config_and_summary(tmp_path):
    api = FakeApi(
        [
            _run("b2", "dropout", 0.5, width=128, api_key="leaked"),
            _run("a1", "igr", 2.0, width=50, lr=0.01),
        ]
    )
    table = wandb_export.export(api, "gm", "lab")
    assert api.requested == ["lab/gm"]
    out = io.write_parquet(table, tmp_path / "runs.parquet")
    back = pd.read_parquet(out)
    assert list(back.columns) == wandb_export.COLUMNS
    assert list(back["run_id"]) == ["a1", "b2"]
    dropout = back.set_index("run_id").loc["b2"]
    assert json.loads(dropout["config_json"]) == {"api_key": "<redacted>", "width": 128}
    summary = json.loads(dropout["summary_json"])
    assert summary == {"lambda_hat": 0.5, "loss": "nan"}
    assert dropout["group"] == "dropout" and dropout["entity"] == "lab"
    assert b"leaked" not in out.read_bytes()


def test_export_without_entity_and_empty_project():
    api = FakeApi([])
    with pytest.raises(ValueError, match="project gm has no runs"):
        wandb_export.export(api, "gm", None)
    assert api.requested == ["gm"]
