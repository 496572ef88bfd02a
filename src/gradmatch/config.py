"""Configuration: YAML presets validated against the workflow's JSON schema, and typed settings.

The schema ``workflow/schemas/config.schema.yaml`` is the single list of allowed keys. Each
analysis reads its own section into the frozen ``Settings`` dataclass of its experiment module;
global keys (``preset``, ``device``, ``dataset``, ``wandb``) fill fields of the same name.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import referencing
import yaml
from referencing.jsonschema import DRAFT202012

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
GLOBAL_KEYS = ("preset", "device", "dataset", "wandb")

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration key or value that the schema or a Settings class does not accept."""


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read one YAML mapping from ``path``."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"{source}: config file not found (presets live in config/*.yaml)")
    with source.open() as handle:
        loaded = yaml.safe_load(handle)
    if not isinstance(loaded, dict):
        raise ConfigError(f"{source}: a config file must hold a YAML mapping at its top level")
    return loaded


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(part) for part in error.absolute_path) or "<top level>"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(allowed))
        where = key if key != "<top level>" else "the top level"
        return f"unknown config key(s) {unexpected} in {where}; allowed keys: {allowed}"
    if error.validator == "required":
        return f"config section '{key}' lacks a key: {error.message}"
    if "enum" in schema:
        return f"config key '{key}': {error.instance!r} is not allowed; allowed: {schema['enum']}"
    allowed_text = ""
    if error.validator in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        allowed_text = f"; the schema asks for {error.validator} {error.validator_value}"
    elif "description" in schema:
        allowed_text = f"; expected {schema['description']}"
    return f"config key '{key}': {error.message}{allowed_text}"


def _registry(schema_dir: Path) -> referencing.Registry:
    def retrieve(uri: str) -> referencing.Resource:
        return referencing.Resource.from_contents(
            load_yaml(schema_dir / uri), default_specification=DRAFT202012
        )

    return referencing.Registry(retrieve=retrieve)


def validate(config: dict[str, Any], schema_path: str | os.PathLike = SCHEMA_PATH) -> None:
    """Check ``config`` against the schema; raise one ConfigError naming the key and the rule.

    Section schemas are separate files referenced by relative ``$ref`` from the main schema.
    """
    schema = load_yaml(schema_path)
    validator = jsonschema.Draft202012Validator(
        schema, registry=_registry(Path(schema_path).parent)
    )
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_describe(error))


def build_settings(
    settings_cls: type[T], section: dict[str, Any], globals_: dict[str, Any] | None = None
) -> T:
    """Instantiate a frozen Settings dataclass from a config section and the global keys.

    Every section key must be a field (else ConfigError naming it and the fields); a global key
    fills the field of the same name when the class has one and the section does not set it.
    Lists become tuples so that settings stay hashable and frozen.
    """
    fields = {field.name: field for field in dataclasses.fields(settings_cls)}
    unknown = sorted(set(section) - set(fields))
    if unknown:
        raise ConfigError(
            f"{settings_cls.__module__}.{settings_cls.__name__}: unknown setting(s) {unknown}; "
            f"allowed: {sorted(fields)}"
        )
    values = {name: globals_[name] for name in (globals_ or {}) if name in fields}
    values.update(section)
    return settings_cls(**{name: _freeze(value) for name, value in values.items()})


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


# settings that steer side channels, not results: never recorded in a table
UNRECORDED_FIELDS = ("wandb",)


def settings_record(settings: Any) -> str:
    """The settings as canonical JSON, for parquet provenance columns.

    Fields in :data:`UNRECORDED_FIELDS` (the W&B tracking mode, project and entity) are left
    out, so a table is byte-identical whether tracking was on or off.
    """
    record = dataclasses.asdict(settings)
    for name in UNRECORDED_FIELDS:
        record.pop(name, None)
    return json.dumps(record, sort_keys=True, default=str)
