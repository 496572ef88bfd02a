"""Config validation (schema, section $refs, messages) and typed settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from gradmatch import config as config_lib
from gradmatch.config import ConfigError, build_settings, load_yaml, validate

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "config").glob("*.yaml"))
SECTIONS = ROOT / "workflow" / "schemas" / "sections"


def write_schema(folder: Path) -> Path:
    """A small two-file schema: globals plus one section reached by a relative $ref."""
    (folder / "sections").mkdir()
    (folder / "sections" / "toy.schema.yaml").write_text(
        yaml.safe_dump(
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "steps": {"description": "an integer >= 1", "type": "integer", "minimum": 1},
                    "mode": {"description": "fast | slow", "enum": ["fast", "slow"]},
                },
            }
        )
    )
    main = folder / "config.schema.yaml"
    main.write_text(
        yaml.safe_dump(
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "device": {"enum": ["auto", "cpu", "cuda"]},
                    "toy": {"$ref": "sections/toy.schema.yaml"},
                },
            }
        )
    )
    return main


def test_presets_are_valid():
    assert {path.name for path in PRESETS} >= {"config.yaml", "smoke.yaml", "paper.yaml"}
    for path in PRESETS:
        validate(load_yaml(path))


def test_presets_share_their_keys():
    def keys(tree, prefix=""):
        out = set()
        for key, value in tree.items():
            out.add(prefix + key)
            if isinstance(value, dict):
                out |= keys(value, f"{prefix}{key}.")
        return out

    reference = keys(load_yaml(ROOT / "config" / "config.yaml"))
    for path in PRESETS:
        found = keys(load_yaml(path))
        assert found == reference, (
            f"config/{path.name} and config/config.yaml must have the same keys (CONTRIBUTING.md); "
            f"only in {path.name}: {sorted(found - reference)}; "
            f"only in config.yaml: {sorted(reference - found)}"
        )


def test_unknown_top_level_key_is_named_with_the_allowed_keys():
    config = load_yaml(ROOT / "config" / "smoke.yaml") | {"learning_rat": 0.1}
    with pytest.raises(ConfigError) as error:
        validate(config)
    message = str(error.value)
    assert "learning_rat" in message and "allowed keys" in message
    assert "device" in message and "wandb" in message


def test_bad_enum_value_names_the_key_and_the_allowed_values():
    config = load_yaml(ROOT / "config" / "smoke.yaml") | {"device": "tpu"}
    with pytest.raises(ConfigError, match=r"'device': 'tpu' is not allowed; allowed: \['auto', "):
        validate(config)


def test_nested_enum_names_the_dotted_key():
    config = load_yaml(ROOT / "config" / "smoke.yaml")
    config["wandb"] = dict(config["wandb"], mode="sometimes")
    with pytest.raises(ConfigError, match=r"'wandb\.mode': 'sometimes' is not allowed"):
        validate(config)


def test_section_ref_is_resolved_for_unknown_keys_enums_and_bounds(tmp_path):
    schema = write_schema(tmp_path)
    validate({"device": "cpu", "toy": {"steps": 3, "mode": "fast"}}, schema)
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['stepz'\] in toy; "):
        validate({"toy": {"stepz": 3}}, schema)
    with pytest.raises(ConfigError, match=r"'toy\.mode': 'medium' is not allowed; allowed: "):
        validate({"toy": {"mode": "medium"}}, schema)
    with pytest.raises(ConfigError, match=r"'toy\.steps'.*minimum 1"):
        validate({"toy": {"steps": 0}}, schema)


def test_unknown_key_in_every_real_section_is_named():
    base = load_yaml(ROOT / "config" / "smoke.yaml")
    sections = [key for key, value in base.items() if isinstance(value, dict) and key != "wandb"]
    for section in sections:
        config = dict(base, **{section: dict(base[section], not_a_setting=1)})
        with pytest.raises(ConfigError) as error:
            validate(config)
        assert "not_a_setting" in str(error.value) and section in str(error.value), section


def test_section_schemas_close_their_keys_and_describe_each():
    for path in sorted(SECTIONS.glob("*.schema.yaml")):
        schema = load_yaml(path)
        assert schema.get("additionalProperties") is False, f"{path.name}: additionalProperties"
        for key, spec in schema.get("properties", {}).items():
            assert spec.get("description"), f"{path.name}: key '{key}' has no description"


def test_missing_config_file_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_yaml(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a YAML mapping"):
        load_yaml(tmp_path / "list.yaml")


@dataclasses.dataclass(frozen=True)
class Toy:
    steps: int = 1
    widths: tuple = (1,)
    preset: str = "default"


def test_build_settings_rejects_unknown_keys_naming_them_and_the_fields():
    with pytest.raises(ConfigError) as error:
        build_settings(Toy, {"steps": 2, "stepz": 3})
    message = str(error.value)
    assert "['stepz']" in message and "['preset', 'steps', 'widths']" in message


def test_build_settings_fills_globals_and_freezes_lists():
    settings = build_settings(
        Toy, {"widths": [4, [5, 6]]}, {"preset": "smoke", "device": "cpu", "steps": 7}
    )
    assert settings == Toy(steps=7, widths=(4, (5, 6)), preset="smoke")
    assert hash(settings)
    # a section value wins over a global of the same name
    assert build_settings(Toy, {"preset": "paper"}, {"preset": "smoke"}).preset == "paper"


def test_settings_record_is_canonical_json():
    record = config_lib.settings_record(Toy(steps=3))
    assert record == '{"preset": "default", "steps": 3, "widths": [1]}'


@dataclasses.dataclass(frozen=True)
class Tracked:
    steps: int = 1
    wandb: dict | None = None


def test_settings_record_never_holds_the_wandb_settings():
    offline = Tracked(steps=2, wandb={"mode": "offline", "project": "p", "entity": "e"})
    assert config_lib.settings_record(offline) == '{"steps": 2}'
    assert config_lib.settings_record(offline) == config_lib.settings_record(Tracked(steps=2))
