"""Every config key the report text and the --report captions quote exists in every preset."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gradmatch import config as config_lib
from gradmatch.report.tex_fragments import flatten

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "config").glob("*.yaml"))
CAPTION_KEY = re.compile(r"snakemake\.config((?:\[\"[^\"]+\"\])+)")


def _caption_keys() -> set[tuple[str, ...]]:
    keys = set()
    for caption in (ROOT / "workflow" / "report").glob("*.rst"):
        for match in CAPTION_KEY.finditer(caption.read_text()):
            keys.add(tuple(re.findall(r"\[\"([^\"]+)\"\]", match.group(1))))
    return keys


def _lookup(config: dict, path: tuple[str, ...]):
    value = config
    for part in path:
        value = value[part]
    return value


@pytest.mark.parametrize("preset", PRESETS, ids=lambda path: path.name)
def test_caption_keys_exist(preset):
    resolved = config_lib.resolve(config_lib.load_yaml(preset))
    keys = _caption_keys()
    assert keys, "no caption quotes a config key"
    missing = []
    for path in sorted(keys):
        try:
            _lookup(resolved, path)
        except (KeyError, TypeError):
            missing.append(".".join(path))
    assert not missing, f"captions quote keys {missing} that {preset.name} does not resolve"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda path: path.name)
def test_report_setting_macros_exist(preset):
    leaves = set(flatten(config_lib.resolve(config_lib.load_yaml(preset))))
    quoted = set(re.findall(r"\\setting\{([^}]+)\}", (ROOT / "paper" / "main.tex").read_text()))
    assert quoted, "the report quotes no setting"
    assert not sorted(quoted - leaves), f"main.tex quotes unknown settings for {preset.name}"
