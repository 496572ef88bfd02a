"""``gradmatch schema``: the JSON schema of a config file, generated from the Settings classes.

``--markdown`` prints the same schema as the reference page ``config/README.md``: one table per
section (global keys first), one row per key with its type, default, bounds and description;
a block such as ``early_stopping`` lists its keys as ``early_stopping.max_epochs``. The page is
regenerated, never edited: ``gradmatch schema --markdown > config/README.md``.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from pydantic_core import to_jsonable_python

from gradmatch import config as config_lib

REGENERATE = "gradmatch schema --markdown > config/README.md"

# JSON-schema bound keywords -> how the reference page writes them
_BOUNDS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "length ≥ {}"),
    ("minItems", "length ≥ {}"),
    ("maxItems", "length ≤ {}"),
    ("pattern", "matches `{}`"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--indent", type=int, default=2, help="JSON indentation")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help=f"print the reference page of every config key instead ({REGENERATE})",
    )


def command(args: argparse.Namespace) -> int:
    schema = config_lib.json_schema()
    if args.markdown:
        print(markdown(schema, factory_defaults()), end="")
    else:
        print(json.dumps(schema, indent=args.indent, ensure_ascii=False))
    return 0


def _prose(text: str) -> str:
    """Docstring text as Markdown on one line: ``code`` and :role:`name` become `code`."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", str(text))
    return " ".join(text.replace("``", "`").split())


def _cell(text: str) -> str:
    """One table cell: a single line, pipes escaped."""
    return _prose(text).replace("|", "\\|")


def _code(value: Any) -> str:
    return "`" + json.dumps(value, ensure_ascii=False) + "`"


def _type(node: dict[str, Any]) -> str:
    """The type of one schema node in words: ``integer``, ``list of number``, ``string or null``."""
    if "anyOf" in node:
        return " or ".join(_type(option) for option in node["anyOf"])
    if "enum" in node:
        return "one of " + ", ".join(_code(value) for value in node["enum"])
    kind = node.get("type", "any")
    if kind == "array" and "prefixItems" in node:
        return "(" + ", ".join(_type(item) for item in node["prefixItems"]) + ")"
    if kind == "array":
        return "list of " + _type(node.get("items", {}))
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return "mapping to " + _type(node["additionalProperties"])
    return {"object": "mapping"}.get(kind, kind)


def _bounds(node: dict[str, Any]) -> list[str]:
    """Every bound of one node, those of its items or alternatives prefixed ("each > 0")."""
    found = [template.format(node[key]) for key, template in _BOUNDS if key in node]
    for inner in ("items", "additionalProperties"):
        if isinstance(node.get(inner), dict):
            found += [f"each {bound}" for bound in _bounds(node[inner])]
    for option in node.get("anyOf", []):
        found += _bounds(option)
    return found


def _rows(
    properties: dict[str, Any], defaults: dict[str, Any], definitions: dict, prefix: str = ""
) -> list[str]:
    """Table rows for the keys of one section or block; a block's keys follow as dotted keys."""
    rows = []
    for key, node in properties.items():
        name = prefix + key
        # a block's defaults come from the field that holds it (a section may change them)
        default = defaults[key] if key in defaults else node.get("default")
        reference = node.get("$ref")
        if reference is not None:
            block = definitions[reference.rsplit("/", 1)[-1]]
            summary = node.get("description") or block.get("description", "").split("\n\n")[0]
            rows.append(f"| `{name}` | block | | | {_cell(summary)} |")
            rows += _rows(block["properties"], default or {}, definitions, prefix=name + ".")
            continue
        shown = _code(default) if "default" in node or key in defaults else "required"
        bounds = "; ".join(_bounds(node))
        rows.append(
            f"| `{name}` | {_cell(_type(node))} | {_cell(shown)} | {_cell(bounds)} "
            f"| {_cell(node.get('description', ''))} |"
        )
    return rows


def factory_defaults() -> dict[str, dict[str, Any]]:
    """Section -> the defaults that a factory computes, which a JSON schema leaves out."""
    found: dict[str, dict[str, Any]] = {}
    for name, cls in config_lib.sections().items():
        for key, field in cls.model_fields.items():
            if field.default_factory is not None:
                value = field.get_default(call_default_factory=True)
                found.setdefault(name, {})[key] = to_jsonable_python(value)
    return found


_HEADER = ["| key | type | default | bounds | description |", "|---|---|---|---|---|"]


def markdown(schema: dict[str, Any], defaults: dict[str, dict[str, Any]] | None = None) -> str:
    """The reference page of every config key, from the JSON schema of :func:`config.json_schema`
    and the ``defaults`` it cannot hold (section -> key -> value, see :func:`factory_defaults`)."""
    defaults = defaults or {}
    definitions = schema.get("$defs", {})
    sections = {k: v for k, v in schema["properties"].items() if k not in config_lib.GLOBAL_KEYS}
    global_keys = {k: v for k, v in schema["properties"].items() if k in config_lib.GLOBAL_KEYS}
    lines = [
        "# Config keys",
        "",
        f"<!-- generated from the Settings classes by `{REGENERATE}`; do not edit -->",
        "",
        _prose(schema["description"]),
        "",
        "Each preset (`config.yaml`, `smoke.yaml`, `paper.yaml`) lists only what differs from "
        "these defaults, which are the paper's values. `gradmatch check-config FILE --resolved` "
        "prints every value a file means.",
        "",
        "Sections: " + ", ".join(f"[`{name}`](#{name})" for name in sections) + ".",
        "",
        "## Global keys",
        "",
        "Set at the top level of a config file; each fills the field of the same name in every "
        "section that has one.",
        "",
        *_HEADER,
        *_rows(global_keys, {}, definitions),
    ]
    for name, section in sections.items():
        description = section.get("description", "").split("\n\n")[0]
        lines += ["", f"## {name}", "", _prose(description), "", *_HEADER]
        lines += _rows(section.get("properties", {}), defaults.get(name, {}), definitions)
    return "\n".join(lines) + "\n"
