"""The config rule (a file overlays the Settings defaults), its messages, and the schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from pydantic import Field

from gradmatch import config as config_lib
from gradmatch import experiments
from gradmatch import settings as base
from gradmatch.config import ConfigError, build_settings, load_yaml, resolve, validate

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "config").glob("*.yaml"))


class Toy(base.Settings):
    steps: int = Field(1, ge=1, description="steps")
    widths: tuple[int, ...] = Field((1,), description="widths")
    early_stopping: base.EarlyStopping = base.EarlyStopping(max_epochs=10, patience=3)
    preset: base.Preset = "default"
    wandb: base.Wandb = base.Wandb()


@pytest.mark.parametrize("path", PRESETS, ids=lambda path: path.name)
def test_presets_are_valid_and_resolve_to_every_section(path):
    resolved = resolve(load_yaml(path))
    assert set(config_lib.sections()) <= set(resolved)
    assert resolved["preset"] == path.stem.replace("config", "default")


def test_a_missing_key_takes_the_settings_default_not_another_presets_value():
    empty = resolve({})
    for name, cls in config_lib.sections().items():
        defaults = cls().model_dump(mode="json")
        assert all(empty[name][key] == defaults[key] for key in empty[name]), name
    smoke = load_yaml(ROOT / "config" / "smoke.yaml")
    smoke["igr"] = {key: value for key, value in smoke["igr"].items() if key != "epochs"}
    assert resolve(smoke)["igr"]["epochs"] == experiments.module("igr").Settings().epochs


def test_every_preset_key_is_a_settings_field():
    fields = {name: set(cls.model_fields) for name, cls in config_lib.sections().items()}
    for path in PRESETS:
        for section, values in load_yaml(path).items():
            if section in config_lib.GLOBAL_KEYS:
                continue
            assert set(values or {}) <= fields[section], (path.name, section)


def test_partial_block_keeps_the_blocks_other_defaults():
    settings = build_settings(Toy, {"early_stopping": {"patience": 7}})
    assert settings.early_stopping == base.EarlyStopping(max_epochs=10, patience=7)


def test_globals_fill_fields_and_lists_become_tuples():
    settings = build_settings(Toy, {"widths": [4, 5]}, {"preset": "smoke", "device": "cpu"})
    assert settings.preset == "smoke" and settings.widths == (4, 5)
    assert hash(settings)


def test_a_section_may_not_set_a_global_key():
    with pytest.raises(ConfigError, match=r"sets \['preset'\]: these are global keys"):
        build_settings(Toy, {"preset": "paper"}, {}, "toy")


def test_unknown_top_level_key_is_named_with_the_allowed_keys():
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['colour'\] at the top level"):
        validate({"colour": 1})


def test_unknown_section_key_is_named_with_the_allowed_keys():
    with pytest.raises(ConfigError) as error:
        build_settings(Toy, {"stepz": 3}, {}, "toy")
    assert "'toy.stepz'" in str(error.value)
    assert "['early_stopping', 'preset', 'steps', 'wandb', 'widths']" in str(error.value)


def test_unknown_key_in_every_real_section_is_named():
    for name in config_lib.sections():
        with pytest.raises(ConfigError, match=rf"unknown config key '{name}\.no_such_key'"):
            validate({name: {"no_such_key": 1}})


def test_bad_enum_value_names_the_key_and_the_allowed_values():
    with pytest.raises(ConfigError) as error:
        validate({"device": "tpu"})
    assert "'device'" in str(error.value) and "'auto', 'cpu' or 'cuda'" in str(error.value)


def test_nested_key_is_named_with_its_dotted_path():
    with pytest.raises(ConfigError, match=r"'wandb\.mode'"):
        validate({"wandb": {"mode": "sometimes"}})
    with pytest.raises(ConfigError, match=r"'toy\.early_stopping\.patience'"):
        build_settings(Toy, {"early_stopping": {"patience": 0}}, {}, "toy")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_rejected_naming_the_key(value):
    section = next(
        name
        for name, cls in config_lib.sections().items()
        if any(field.annotation is float for field in cls.model_fields.values())
    )
    key = next(
        key
        for key, field in config_lib.sections()[section].model_fields.items()
        if field.annotation is float
    )
    with pytest.raises(ConfigError, match=rf"'{section}\.{key}'.*finite"):
        validate({section: {key: value}})


def test_duplicated_key_is_rejected_naming_the_line(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("preset: smoke\ndevice: cpu\npreset: paper\n")
    message = r"twice.yaml:3: key 'preset' given twice \(first on line 1\)"
    with pytest.raises(ConfigError, match=message):
        load_yaml(path)


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("preset: smoke\n\tdevice: cpu\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:2:1: YAML error"):
        load_yaml(path)


def test_missing_config_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.yaml: config file not found"):
        load_yaml(tmp_path / "nowhere.yaml")


def test_generated_schema_accepts_every_resolved_preset_and_describes_every_key():
    schema = config_lib.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in PRESETS:
        jsonschema.validate(resolve(load_yaml(path)), schema)
    for name in config_lib.sections():
        section = schema["properties"][name]
        assert section.get("additionalProperties") is False, name
        for key, entry in section["properties"].items():
            assert entry.get("description") or "$ref" in entry or "allOf" in entry, (name, key)


def test_schema_rejects_an_unknown_section_key():
    schema = config_lib.json_schema()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"ridge_stationarity": {"no_such_key": 1}}, schema)


def test_settings_record_is_canonical_json_without_the_wandb_settings():
    offline = Toy(steps=2, wandb=base.Wandb(mode="offline", project="p"))
    record = config_lib.settings_record(offline)
    assert record == config_lib.settings_record(Toy(steps=2))
    assert '"wandb"' not in record and record.startswith('{"early_stopping": {')


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("elastic_net", {"seeds": [0, 0]}, "'elastic_net.seeds' = [0, 0]: repeats [0]"),
        (
            "ols_fixed_stop",
            {"heatmap_endpoints": 200},
            "'ols_fixed_stop.heatmap_endpoints' = 200: exceeds n_endpoints = 100",
        ),
        ("sgd_vs_flow", {"x_max": -3.0}, "'sgd_vs_flow.x_max' = -3.0: must exceed x_min = -2.5"),
        (
            "elastic_net",
            {"n_samples": 10**9},
            "'elastic_net.n_samples' = 1000000000: needs about 2.95e+03 GiB (one data set",
        ),
    ],
)
def test_a_check_across_fields_names_the_field_it_fails_on(section, values, message):
    with pytest.raises(ConfigError) as caught:
        validate({section: values})
    assert str(caught.value).startswith(f"config key {message}")
    assert "\n" not in str(caught.value)


def test_checks_that_depend_on_the_data_set_use_its_size():
    digits = {"dataset": "digits", "igr": {"n_train": 1200, "n_val": 300, "n_test": 297}}
    with pytest.raises(ConfigError, match=r"'dropout\.batch_size' = 2048: exceeds the 1350"):
        validate(digits)
    validate({**digits, "dropout": {"batch_size": 1350}})
    with pytest.raises(ConfigError, match=r"'dropout\.val_fraction' = 0\.0003: leaves an empty"):
        validate({**digits, "dropout": {"batch_size": 64, "val_fraction": 0.0003}})
    with pytest.raises(ConfigError, match=r"'igr\.n_test' = 298: exceeds the 297 test images"):
        validate(
            {
                **digits,
                "dropout": {"batch_size": 64},
                "igr": {"n_train": 1200, "n_val": 300, "n_test": 298},
            }
        )


@pytest.mark.parametrize("path", PRESETS, ids=lambda path: path.name)
def test_the_cli_and_the_workflow_apply_the_same_rule(path, monkeypatch):
    """`gradmatch X --configfile F` and the workflow's `--settings/--globals` (the resolved
    section and the globals X declares) build the same Settings, for every analysis."""
    import argparse
    import json

    from gradmatch import cli

    monkeypatch.delenv("GRADMATCH_WANDB", raising=False)
    loaded = load_yaml(path)
    resolved = resolve(loaded)
    for name in experiments.names():
        from_file = cli._settings_from_args(
            name, argparse.Namespace(configfile=str(path), settings=None, globals=None)
        )
        fields = experiments.module(name).Settings.model_fields
        globals_ = {key: resolved[key] for key in config_lib.GLOBAL_KEYS if key in fields}
        from_workflow = cli._settings_from_args(
            name,
            argparse.Namespace(
                configfile=None,
                settings=json.dumps(resolved[name]),
                globals=json.dumps(globals_),
            ),
        )
        assert from_file == from_workflow == config_lib.section_settings(loaded, name), name
