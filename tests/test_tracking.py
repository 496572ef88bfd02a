"""W&B tracking: offline runs can be read back, disabled writes nothing, secrets never land."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from gradmatch.tracking import REDACTED, Tracker, is_secret_name, read_offline_run, resolve, scrub

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """Keep W&B's own caches inside tmp_path and drop any real credentials from the env."""
    for name in ("WANDB_PROJECT", "WANDB_ENTITY", "GRADMATCH_WANDB_DIR", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _read_when_finished(run_dir: Path, expected_rows: int, summary_key: str = "lambda_hat") -> dict:
    """The offline log is written by W&B's service process: wait (bounded) for the last rows."""
    deadline = time.monotonic() + 30
    while True:
        run = read_offline_run(run_dir)
        if len(run["history"]) >= expected_rows and summary_key in run["summary"]:
            return run
        if time.monotonic() > deadline:
            return run
        time.sleep(0.2)


def test_offline_run_holds_config_metrics_and_summary(wandb_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    config = {
        "learning_rate": 0.05,
        "api_key": "written-by-mistake",
        "nested": {"authToken": "also-secret", "widths": [128, 256]},
        "note": f"pasted {FAKE_KEY} here",
    }
    with Tracker(
        {"mode": "offline", "project": "gm-test", "entity": None},
        group="dropout",
        name="chunk-0",
        config=config,
    ) as tracker:
        for epoch in range(3):
            tracker.log({"train_loss": 1.0 / (epoch + 1), "epoch": epoch}, step=epoch)
        tracker.summary({"lambda_hat": 0.125, "stop_epoch": 2})
        run_dir = tracker.run_dir

    assert run_dir is not None
    assert run_dir.parent == wandb_env / "data" / "generated" / "wandb" / "wandb"
    run = _read_when_finished(run_dir, expected_rows=3)
    assert [row["train_loss"] for row in run["history"]] == pytest.approx([1.0, 0.5, 1 / 3])
    assert [row["_step"] for row in run["history"]] == [0, 1, 2]
    assert run["summary"]["lambda_hat"] == 0.125
    assert run["summary"]["stop_epoch"] == 2
    assert run["config"]["learning_rate"] == 0.05
    assert run["config"]["api_key"] == REDACTED
    assert run["config"]["nested"] == {"authToken": REDACTED, "widths": [128, 256]}
    assert run["config"]["note"] == f"pasted {REDACTED} here"

    # no secret in any file W&B wrote (logs, metadata, the transaction log)
    for path in wandb_env.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for secret in (FAKE_KEY, "written-by-mistake", "also-secret"):
                assert secret.encode() not in content, f"{secret} leaked into {path}"


def test_offline_directory_is_configurable(wandb_env, monkeypatch):
    monkeypatch.setenv("GRADMATCH_WANDB_DIR", str(wandb_env / "elsewhere"))
    with Tracker({"mode": "offline"}, group="g", name="n", config={}) as tracker:
        tracker.log({"x": 1.0}, step=0)
        run_dir = tracker.run_dir
    assert run_dir.parent == wandb_env / "elsewhere" / "wandb"
    assert not (wandb_env / "data").exists()


def test_disabled_writes_nothing_and_never_imports_wandb(tmp_path):
    script = (
        "import sys\n"
        "from gradmatch.tracking import Tracker\n"
        "for settings in (None, {'mode': 'disabled', 'project': 'p', 'entity': None}):\n"
        "    with Tracker(settings, group='g', name='n', config={'a': 1}) as t:\n"
        "        t.log({'loss': 1.0}, step=0)\n"
        "        t.summary({'lambda_hat': 2.0})\n"
        "        assert t.run_dir is None and not t.enabled\n"
        "print('wandb' in sys.modules)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "WANDB_MODE"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []
    # a mode left unset follows $WANDB_MODE=disabled the same way
    unset = script.replace("{'mode': 'disabled',", "{'mode': None,")
    result = subprocess.run(
        [sys.executable, "-c", unset],
        cwd=tmp_path, env={**env, "WANDB_MODE": "disabled"}, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    assert result.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []


def test_logging_outside_the_context_is_an_error(wandb_env):
    tracker = Tracker({"mode": "offline"}, group="g", name="n", config={})
    with pytest.raises(RuntimeError, match="context manager"):
        tracker.log({"x": 1.0})
    assert not (wandb_env / "data").exists()


def test_project_and_entity_fall_back_to_environment_then_default(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    monkeypatch.delenv("WANDB_ENTITY", raising=False)
    assert resolve({"mode": "offline", "project": None, "entity": None}) == {
        "mode": "offline",
        "project": "gradmatch",
        "entity": None,
    }
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.setenv("WANDB_ENTITY", "lab")
    assert resolve({"mode": "online"})["project"] == "from-env"
    assert resolve({"mode": "online"})["entity"] == "lab"
    assert resolve({"mode": "online", "project": "cfg", "entity": "me"})["project"] == "cfg"
    assert resolve(None)["mode"] == "disabled"


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match=r"wandb.mode: 'cloud' is not allowed"):
        resolve({"mode": "cloud"})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['api_key'\]"):
        resolve({"mode": "offline", "api_key": "x"})


def test_scrub_redacts_credential_names_recursively(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for name in (
        "api_key",
        "WANDB_API_KEY",
        "apiKey",
        "token",
        "hf-token",
        "client_secret",
        "password",
        "key",
    ):
        assert is_secret_name(name), name
    for name in ("learning_rate", "monkey_width", "tokens_per_batch", "keyframes", "dropout"):
        assert not is_secret_name(name), name
    cleaned = scrub({"a": 1, "b": [{"secret": "s"}, 2], "c": ("x",)})
    assert cleaned == {"a": 1, "b": [{"secret": REDACTED}, 2], "c": ["x"]}


def test_member_logger_logs_active_members_per_epoch(wandb_env):
    import numpy as np

    assert Tracker(None, group="g", name="n", config={}).member_logger(["a"]) is None
    with Tracker({"mode": "offline"}, group="elastic_net", name="chunk-0", config={}) as tracker:
        on_epoch = tracker.member_logger(["l1=0.1", "l1=1"])
        on_epoch(0, {"train_loss": np.array([2.0, 4.0]), "active": np.array([True, True])})
        on_epoch(1, {"train_loss": np.array([1.0, 3.0]), "active": np.array([True, False])})
        tracker.member_summary(
            [{"lambda_hat": np.float64(0.1), "method": "adam"}, {"lambda_hat": 0.9}],
            ["l1=0.1", "l1=1"],
        )
        tracker.summary({"stop": 1})
        run_dir = tracker.run_dir
    run = _read_when_finished(run_dir, expected_rows=2, summary_key="stop")
    assert [row.get("l1=0.1/train_loss") for row in run["history"]] == [2.0, 1.0]
    assert [row.get("l1=1/train_loss") for row in run["history"]] == [4.0, None]
    assert run["summary"]["l1=0.1/lambda_hat"] == 0.1
    assert run["summary"]["l1=1/lambda_hat"] == 0.9
    assert "l1=0.1/method" not in run["summary"]


@pytest.mark.slow
def test_elastic_net_chunk_logs_offline_and_keeps_parquet_identical(wandb_env):
    from gradmatch import config as config_lib
    from gradmatch.experiments import elastic_net

    section = {
        "lambda1_values": [1e-2], "lambda2_values": [1e-2, 1e-1], "seeds": [0], "chunk_size": 2,
        "n_samples": 200, "early_stopping": {"max_epochs": 2}, "adam_fit": {"max_epochs": 2},
        "fit_methods": ["lstsq", "adam"],
        "progress": False,
    }  # fmt: skip
    frames = {}
    for mode in ("disabled", "offline"):
        wandb = {"mode": mode, "project": "gm-test", "entity": None}
        settings = config_lib.build_settings(
            elastic_net.Settings, section, {"preset": "smoke", "wandb": wandb}
        )
        frames[mode] = elastic_net.run(settings, chunk=0)
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(frames["disabled"], frames["offline"])
    (run_dir,) = (wandb_env / "data" / "generated" / "wandb" / "wandb").glob("offline-run-*")
    label = "l1=0.01_l2=0.1_seed=0"
    run = _read_when_finished(run_dir, expected_rows=2, summary_key=f"{label}/lambda_hat_l2_adam")
    assert run["config"]["members"] == ["l1=0.01_l2=0.01_seed=0", label]
    assert len(run["history"]) == 2 and f"{label}/train_objective_last" in run["history"][0]
    offline = frames["offline"].set_index("lambda_true_l2")
    assert run["summary"][f"{label}/lambda_hat_l2_adam"] == pytest.approx(
        offline.loc[0.1, "lambda_hat_l2_adam"]
    )


def _disabled_and_offline(wandb_env, run_chunk) -> tuple[dict, Path]:
    """Run one chunk with W&B disabled, then offline; parquet bytes of each table, run folder."""
    from gradmatch import io as gm_io

    written = {}
    for mode in ("disabled", "offline"):
        tables = run_chunk({"mode": mode, "project": "gm-test", "entity": None})
        if not isinstance(tables, dict):
            tables = {"table": tables}
        written[mode] = {}
        for name, frame in tables.items():
            path = gm_io.write_parquet(frame, wandb_env / f"{mode}_{name}.parquet")
            written[mode][name] = path.read_bytes()
        if mode == "disabled":
            assert not (wandb_env / "data" / "generated" / "wandb").exists()
    assert written["disabled"] == written["offline"]  # byte-identical tables
    (run_dir,) = (wandb_env / "data" / "generated" / "wandb" / "wandb").glob("offline-run-*")
    return written["offline"], run_dir


@pytest.mark.slow
def test_dropout_chunk_logs_offline_and_keeps_parquet_byte_identical(wandb_env):
    from gradmatch import config as config_lib
    from gradmatch.experiments import dropout

    section = {
        "depths": [2], "widths": [4], "rates": [0.0, 0.5], "seeds": [1],
        "early_stopping": {"max_epochs": 2}, "adam_fit": {"max_epochs": 1}, "batch_size": 512,
    }  # fmt: skip
    globals_ = {"preset": "smoke", "dataset": "digits", "device": "cpu"}

    def run_chunk(wandb):
        settings = config_lib.build_settings(
            dropout.Settings, section, {**globals_, "wandb": wandb}
        )
        return dropout.run(settings, chunk=0)

    tables, run_dir = _disabled_and_offline(wandb_env, run_chunk)
    label = "p=0.5_seed=1"
    run = _read_when_finished(run_dir, expected_rows=2, summary_key=f"{label}/lambda_hat_lstsq")
    assert run["config"]["members"] == ["p=0_seed=1", label]
    assert (run["config"]["depth"], run["config"]["width"]) == (2, 4)
    assert len(run["history"]) == 2 and f"{label}/val_loss" in run["history"][0]
    frame = pd.read_parquet(io.BytesIO(tables["table"])).set_index("dropout_rate")
    assert run["summary"][f"{label}/lambda_hat_lstsq"] == pytest.approx(
        frame.loc[0.5, "lambda_hat_lstsq"]
    )
    assert "wandb" not in frame["settings"].iloc[0] and "gm-test" not in frame["settings"].iloc[0]


@pytest.mark.slow
def test_igr_chunk_logs_offline_and_keeps_parquet_byte_identical(wandb_env):
    from gradmatch import config as config_lib
    from gradmatch.experiments import igr

    section = {
        "widths": [4], "learning_rates": [1e-3, 0.5], "epochs": 2, "n_train": 128, "n_val": 32,
        "n_test": 32, "probe_size": 64, "probe_steps": 1, "rk4_substeps": 1,
        "min_train_accuracy": 0.0,
    }  # fmt: skip
    globals_ = {"preset": "smoke", "dataset": "digits", "device": "cpu"}

    def run_chunk(wandb):
        settings = config_lib.build_settings(igr.Settings, section, {**globals_, "wandb": wandb})
        return igr.run(settings, chunk=0)

    tables, run_dir = _disabled_and_offline(wandb_env, run_chunk)
    label = "lr=0.5"
    run = _read_when_finished(run_dir, expected_rows=2, summary_key=f"{label}/lambda_hat")
    assert run["config"]["members"] == ["lr=0.001", label] and run["config"]["width"] == 4
    assert len(run["history"]) == 2 and f"{label}/val_acc" in run["history"][1]
    runs = pd.read_parquet(io.BytesIO(tables["runs"])).set_index("lr")
    assert run["summary"][f"{label}/lambda_hat"] == pytest.approx(runs.loc[0.5, "lambda_hat"])
    assert run["summary"][f"{label}/lambda_theory"] == pytest.approx(runs.loc[0.5, "lambda_theory"])


def test_the_workflow_channel_gradmatch_wandb_is_read_and_checked():
    from gradmatch.tracking import ENV_VAR, from_environment

    assert ENV_VAR == "GRADMATCH_WANDB"
    assert from_environment({}) is None and from_environment({ENV_VAR: " "}) is None
    assert from_environment({ENV_VAR: '{"mode": "offline"}'}) == {
        "mode": "offline",
        "project": None,
        "entity": None,
    }
    exported = {"mode": "online", "project": "p", "entity": "e"}
    assert from_environment({ENV_VAR: json.dumps(exported)}) == exported
    with pytest.raises(ValueError, match=r"^\$GRADMATCH_WANDB is not valid JSON .*'\{mode'"):
        from_environment({ENV_VAR: "{mode"})
    with pytest.raises(ValueError, match=r"^\$GRADMATCH_WANDB must be a JSON object, got '\[1\]'"):
        from_environment({ENV_VAR: "[1]"})
    with pytest.raises(ValueError, match=r"^\$GRADMATCH_WANDB: key 'mode': .*\(got 'cloud'\)"):
        from_environment({ENV_VAR: '{"mode": "cloud"}'})
    with pytest.raises(ValueError, match=r"^\$GRADMATCH_WANDB: key 'api_key': Extra inputs"):
        from_environment({ENV_VAR: '{"mode": "offline", "api_key": "x"}'})


# ---- clusters: $WANDB_MODE, run ids that survive a retry, uploading offline runs ----


def test_wandb_mode_is_followed_when_the_config_leaves_the_mode_unset(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert resolve({"mode": None})["mode"] == "disabled"
    for value, mode in (("offline", "offline"), ("dryrun", "offline"), ("disabled", "disabled"),
                        ("online", "online"), ("run", "online")):  # fmt: skip
        monkeypatch.setenv("WANDB_MODE", value)
        assert resolve({"mode": None})["mode"] == mode
        assert resolve(None)["mode"] == mode
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert resolve({"mode": "disabled"})["mode"] == "disabled"  # the config wins
    monkeypatch.setenv("WANDB_MODE", "shared")
    with pytest.raises(ValueError, match=r"\$WANDB_MODE is 'shared'.*wandb.mode in the config"):
        resolve({"mode": None})


def test_the_config_default_leaves_the_mode_unset_and_says_so():
    from gradmatch import config as config_lib
    from gradmatch.settings import Wandb

    assert Wandb().mode is None
    assert config_lib.resolve({})["wandb"]["mode"] is None
    described = config_lib.json_schema()["$defs"]["Wandb"]["properties"]["mode"]["description"]
    assert "$WANDB_MODE" in described


def test_run_ids_are_the_same_for_a_retry_and_differ_for_another_job():
    from gradmatch.tracking import run_id

    config = {"lr": 0.05, "seeds": [1, 2]}
    first = Tracker({"mode": "disabled"}, group="dropout", name="chunk-3", config=config)
    retry = Tracker({"mode": "disabled"}, group="dropout", name="chunk-3", config=dict(config))
    assert first.run_id == retry.run_id == run_id("dropout", "chunk-3", config)
    assert len(first.run_id) == 24 and int(first.run_id, 16) >= 0
    others = {
        Tracker(None, group="dropout", name="chunk-4", config=config).run_id,
        Tracker(None, group="igr", name="chunk-3", config=config).run_id,
        Tracker(None, group="dropout", name="chunk-3", config={**config, "lr": 0.1}).run_id,
    }
    assert first.run_id not in others and len(others) == 3


def test_a_retried_offline_job_writes_under_the_same_run_id(wandb_env, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # the config leaves the mode unset
    folders = []
    for attempt in range(2):
        with Tracker({"mode": None}, group="igr", name="chunk-0", config={"a": 1}) as tracker:
            tracker.log({"loss": 1.0 / (attempt + 1)}, step=attempt)
            folders.append(tracker.run_dir)
    assert folders[0] != folders[1]  # W&B keeps one folder per attempt offline ...
    ids = {next(folder.glob("run-*.wandb")).name for folder in folders}
    assert ids == {f"run-{tracker.run_id}.wandb"}  # ... under one run id: one run once synced


def _offline_folder(root: Path, name: str, synced: bool = False) -> Path:
    folder = root / "wandb" / f"offline-run-20260101_000000-{name}"
    folder.mkdir(parents=True)
    (folder / f"run-{name}.wandb").write_bytes(b":W&B")
    if synced:
        (folder / f"run-{name}.wandb.synced").write_text("")
    return folder


def test_wandb_sync_uploads_only_the_folders_not_synced_yet(tmp_path):
    from gradmatch.tracking import sync_offline, unsynced_runs

    done = _offline_folder(tmp_path, "aaa", synced=True)
    waiting = [_offline_folder(tmp_path, "bbb"), _offline_folder(tmp_path, "ccc")]
    (tmp_path / "wandb" / "offline-run-empty").mkdir()  # a run killed before its log began
    assert unsynced_runs(tmp_path) == waiting
    calls = []

    def runner(command, check):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0)

    assert sync_offline(tmp_path, runner=runner, project="gm") == waiting
    assert calls == [["wandb", "sync", "--project", "gm", "--mark-synced", *map(str, waiting)]]
    assert str(done) not in calls[0]

    def failing(command, check):
        return subprocess.CompletedProcess(command, 1)

    with pytest.raises(RuntimeError, match=r"exit status 1 for 2 run folder\(s\).*wandb login"):
        sync_offline(tmp_path, runner=failing)


def test_wandb_sync_command_with_nothing_to_upload_says_so(tmp_path, capsys):
    from gradmatch.cli import main

    assert main(["wandb-sync", "--dir", str(tmp_path)]) == 0
    assert "no offline run under" in capsys.readouterr().out


@pytest.mark.slow
def test_the_wandb_sync_rule_runs_locally_without_network(workflow_copy, run_snakemake):
    """The rule for real, in a copy of the workflow, with nothing waiting: no network needed."""
    workdir = workflow_copy("wandb_sync")
    log = run_snakemake(workdir, "--cores", "1", "wandb_sync")
    assert "localrule wandb_sync:" in log
    written = (workdir / "data" / "logs" / "report" / "wandb_sync.log").read_text()
    assert "no offline run under data/generated/wandb is waiting to be uploaded" in written
