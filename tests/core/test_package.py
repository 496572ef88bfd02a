"""The package face: lazy top-level exports of gradmatch.core, no aliases, no torch at import."""

import subprocess
import sys

import pytest

import gradmatch


def test_import_gradmatch_and_numpy_modules_do_not_import_torch():
    code = (
        "import sys, gradmatch, gradmatch.config, gradmatch.core.regularizers, "
        "gradmatch.core.theory, gradmatch.core.estimators; gradmatch.Ridge; "
        "gradmatch.match_gradients; "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_there_are_no_alias_modules():
    import importlib

    for name in ("estimators", "flows", "regularizers", "theory"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"gradmatch.{name}")


def test_top_level_names_are_the_core_objects():
    from gradmatch.core import autodiff, estimators, flows, igr, regularizers

    assert gradmatch.Ridge is regularizers.Ridge
    assert gradmatch.match_gradients is estimators.match_gradients
    assert gradmatch.loss_gradient is autodiff.loss_gradient
    assert gradmatch.gradient_flow is flows.gradient_flow
    assert gradmatch.estimate_igr is igr.estimate_igr


@pytest.mark.parametrize("name", gradmatch.__all__)
def test_every_public_name_resolves(name):
    assert getattr(gradmatch, name) is not None


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gradmatch.nope  # noqa: B018
