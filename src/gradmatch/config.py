"""Configuration: what a config file means, validated before any job runs.

**The rule.** A config file is an overlay on the Settings defaults, which are the paper's values:
a key a file leaves out takes the default of its Settings field, never another preset's value.
Global keys (:data:`gradmatch.settings.GLOBAL_KEYS`) sit at the top and fill the field of the
same name in every section that declares one. The CLI (``--configfile``) and the workflow apply
the same rule through :func:`resolve`; ``gradmatch check-config FILE --resolved`` prints the
result. Sections are the analyses of :mod:`gradmatch.experiments` plus :data:`TOOL_SECTIONS`.

The JSON schema (``gradmatch schema``) is generated from the same classes.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gradmatch import experiments
from gradmatch.settings import GLOBAL_KEYS, WORKFLOW_KEYS, Block, FieldError, Globals

T = TypeVar("T", bound=BaseModel)

# sections that configure a tool, not an analysis: name -> "module:Class"
TOOL_SECTIONS = {"mnist": "gradmatch.data.mnist:DownloadSettings"}

__all__ = [
    "GLOBAL_KEYS",
    "ConfigError",
    "build_settings",
    "json_schema",
    "load_yaml",
    "resolve",
    "section_settings",
    "sections",
    "settings_record",
    "validate",
]


class ConfigError(ValueError):
    """A configuration key or value that a Settings class does not accept."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a key given twice in one mapping, naming its line."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.name}:{line}: key {key!r} given twice (first on line {seen[key]})"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read one YAML mapping from ``path``; errors name the file, line and column."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"{source}: config file not found (presets live in config/*.yaml)")
    text = source.read_text()
    loader = _UniqueKeyLoader(text)
    loader.name = str(source)
    try:
        loaded = loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else str(source)
        raise ConfigError(f"{where}: YAML error: {error.problem}") from None
    finally:
        loader.dispose()
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{source}: a config file must hold a YAML mapping at its top level")
    return loaded


def sections() -> dict[str, type[BaseModel]]:
    """Section name -> its Settings class (analyses and tools)."""
    found = {name: experiments.module(name).Settings for name in experiments.names()}
    for name, target in TOOL_SECTIONS.items():
        module_name, _, class_name = target.partition(":")
        found[name] = getattr(importlib.import_module(module_name), class_name)
    return dict(sorted(found.items()))


def _key_path(prefix: str, loc: tuple) -> str:
    return ".".join([prefix, *(str(part) for part in loc)]) if prefix else ".".join(map(str, loc))


def _describe(error: ValidationError, prefix: str) -> str:
    """One line naming the key, the value and what is allowed (the first error)."""
    first = error.errors(include_url=False)[0]
    key = _key_path(prefix, first["loc"]) or "<top level>"
    if first["type"] == "extra_forbidden":
        parent = _key_path(prefix, first["loc"][:-1]) or "the top level"
        allowed = _allowed_keys(error, first["loc"][:-1])
        return f"unknown config key {key!r} in {parent}; allowed keys: {allowed}"
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        # a check across fields (a model validator) names the field it fails on
        key = _key_path(prefix, (*first["loc"], *cause.key.split(".")))
        return f"config key {key!r} = {cause.value!r}: {cause}"
    if isinstance(cause, ValueError) and first["type"] == "value_error":
        return f"config key {key!r}: {cause}"
    value = first.get("input")
    return f"config key {key!r}: {first['msg']} (got {value!r})"


def _allowed_keys(error: ValidationError, loc: tuple) -> list[str]:
    model = _MODELS_BY_TITLE.get(error.title)
    for part in loc:
        if model is None:
            return []
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        is_block = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_block else None
    return sorted(model.model_fields) if model is not None else []


_MODELS_BY_TITLE: dict[str, type[BaseModel]] = {}


def build_settings(
    settings_cls: type[T],
    section: dict[str, Any] | None,
    globals_: dict[str, Any] | None = None,
    name: str = "",
) -> T:
    """The Settings of one section: its keys over the defaults, globals filling their fields.

    A global key fills the field of the same name when the class has one; the section may not
    set a global itself. Any error is one ConfigError naming ``<name>.<key>``.
    """
    section = dict(section or {})
    name = name or settings_cls.__module__.rsplit(".", 1)[-1]
    clashes = sorted(set(section) & set(GLOBAL_KEYS + WORKFLOW_KEYS))
    if clashes:
        raise ConfigError(
            f"config section {name!r} sets {clashes}: these are global keys, set at the top level"
        )
    fields = settings_cls.model_fields
    values = {key: value for key, value in (globals_ or {}).items() if key in fields}
    values.update(section)
    values = _overlay_blocks(settings_cls, values)
    _MODELS_BY_TITLE[settings_cls.__name__] = settings_cls
    try:
        return settings_cls.model_validate(values)
    except ValidationError as error:
        raise ConfigError(_describe(error, name)) from None


def _overlay_blocks(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """Nested blocks overlay too: a partial mapping for a block field keeps the block's other
    defaults (``early_stopping: {max_epochs: 3}`` changes only max_epochs)."""
    merged = dict(values)
    for key, value in values.items():
        field = model.model_fields.get(key)
        default = getattr(field, "default", None)
        if isinstance(value, dict) and isinstance(default, BaseModel):
            base = default.model_dump()
            nested = type(default)
            merged[key] = _overlay_blocks(nested, {**base, **value})
    return merged


def _globals_model() -> type[Block]:
    return Globals


def _split(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(globals, sections) of a config mapping; unknown top-level keys are an error."""
    known_sections = sections()
    unknown = sorted(set(config) - set(GLOBAL_KEYS) - set(known_sections))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {unknown} at the top level; allowed keys: "
            f"{sorted(GLOBAL_KEYS)} and the sections {sorted(known_sections)}"
        )
    model = _globals_model()
    globals_ = _overlay_blocks(model, {key: config[key] for key in GLOBAL_KEYS if key in config})
    _MODELS_BY_TITLE[model.__name__] = model
    try:
        parsed = model.model_validate(globals_)
    except ValidationError as error:
        raise ConfigError(_describe(error, "")) from None
    return parsed.model_dump(mode="json"), {name: config.get(name) for name in known_sections}


def section_settings(config: dict[str, Any], name: str, **workflow_values: Any):
    """The Settings of section ``name`` under ``config`` (overlay rule), with workflow-owned
    values such as ``mnist_dir`` filled in."""
    globals_, parts = _split(config)
    if name not in parts:
        raise ConfigError(f"no config section {name!r}; sections: {sorted(parts)}")
    return build_settings(sections()[name], parts[name], {**globals_, **workflow_values}, name)


def validate(config: dict[str, Any]) -> None:
    """Build every section's Settings; raise one ConfigError naming the first bad key."""
    globals_, parts = _split(config)
    classes = sections()
    for name, section in parts.items():
        if section is not None and not isinstance(section, dict):
            raise ConfigError(f"config section {name!r} must be a mapping, got {section!r}")
        build_settings(classes[name], section, globals_, name)


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """The complete config that ``config`` means: globals, then every section, defaults filled."""
    validate(config)
    globals_, parts = _split(config)
    resolved: dict[str, Any] = dict(globals_)
    for name, cls in sections().items():
        settings = build_settings(cls, parts[name], globals_, name)
        dumped = settings.model_dump(mode="json")
        resolved[name] = {
            key: value
            for key, value in dumped.items()
            if key not in GLOBAL_KEYS and key not in WORKFLOW_KEYS
        }
    return resolved


def json_schema() -> dict[str, Any]:
    """The JSON schema of a config file, generated from the Settings classes."""
    properties: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    globals_schema = _globals_model().model_json_schema(ref_template="#/$defs/{model}")
    definitions.update(globals_schema.pop("$defs", {}))
    properties.update(globals_schema["properties"])
    for name, cls in sections().items():
        schema = cls.model_json_schema(ref_template="#/$defs/{model}")
        definitions.update(schema.pop("$defs", {}))
        for key in GLOBAL_KEYS + WORKFLOW_KEYS:
            schema["properties"].pop(key, None)
        properties[name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "gradmatch config",
        "description": __doc__.split("\n\n")[1].replace("\n", " "),
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "$defs": definitions,
    }


def settings_record(settings: BaseModel) -> str:
    """The settings as canonical JSON, for parquet provenance columns (no W&B keys)."""
    return json.dumps(settings.record(), sort_keys=True, default=str)
