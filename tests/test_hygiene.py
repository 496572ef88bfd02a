"""Publication hygiene: LICENSE, CITATION.cff and the generated config reference agree with the
package (issue 14 item 6)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

import gradmatch
from gradmatch import config as config_lib
from gradmatch.cli import schema

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_license_file_is_the_mit_license_that_pyproject_declares():
    text = (ROOT / "LICENSE").read_text()
    assert PYPROJECT["license"] == {"text": "MIT"}
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the gradmatch authors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def _citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_file_names_the_software_and_prefers_the_paper():
    citation = _citation()
    for key in ("cff-version", "message", "title", "authors"):  # required by CFF 1.2.0
        assert citation.get(key), f"CITATION.cff lacks the required key {key!r}"
    assert citation["cff-version"] == "1.2.0"
    assert citation["type"] == "software"
    assert citation["version"] == PYPROJECT["version"] == gradmatch.__version__
    assert citation["license"] == PYPROJECT["license"]["text"]
    paper = citation["preferred-citation"]
    assert paper["title"] == "Estimating Implicit Regularization in Deep Learning"
    assert paper["year"] == 2026
    names = [author["family-names"] for author in paper["authors"]]
    assert names == ["Rudoler", "Tan", "Hooker", "Kording"]
    for key in ("type", "title", "authors"):  # required of a reference
        assert paper.get(key), f"preferred-citation lacks the required key {key!r}"


def test_citation_file_is_valid_cff_when_cffconvert_is_installed():
    """The full schema check (``cffconvert --validate``) where the validator is available."""
    pytest.importorskip("cffconvert")
    from cffconvert.cli.create_citation import create_citation

    create_citation(str(ROOT / "CITATION.cff"), None).validate()  # raises on an invalid file


def test_config_reference_page_is_in_sync_with_the_settings():
    committed = (ROOT / "config" / "README.md").read_text()
    generated = schema.markdown(config_lib.json_schema(), schema.factory_defaults())
    assert committed == generated, f"config/README.md is out of date: run `{schema.REGENERATE}`"


def test_config_reference_page_lists_every_key_with_its_default():
    page = schema.markdown(config_lib.json_schema(), schema.factory_defaults())
    resolved = config_lib.resolve({})
    for section in config_lib.sections():
        assert f"\n## {section}\n" in page
        for key in resolved[section]:
            assert f"| `{key}` |" in page or f"| `{key}." in page, f"{section}.{key} missing"
    pattern = r"^\| `lambda1_values` \| list of number \| `([^`]*)` \| ([^|]*) \|"
    row = re.search(pattern, page, re.M)
    assert row is not None
    assert row.group(1) == "[0.0001, 0.001, 0.01, 0.1, 1.0, 10.0]"
    assert row.group(2).strip() == "length ≥ 1; each > 0"


def test_the_readme_links_the_config_reference():
    assert "(config/README.md)" in (ROOT / "README.md").read_text()


def test_the_schema_command_prints_the_reference_page(capsys):
    from gradmatch.cli import main

    assert main(["schema", "--markdown"]) == 0
    assert capsys.readouterr().out == (ROOT / "config" / "README.md").read_text()
