"""The package face: lazy top-level exports, module aliases, no torch at import."""

import subprocess
import sys

import pytest

import gradmatch


def test_import_gradmatch_and_numpy_modules_do_not_import_torch():
    code = (
        "import sys, gradmatch, gradmatch.config, gradmatch.regularizers, gradmatch.theory, "
        "gradmatch.estimators; gradmatch.Ridge; gradmatch.match_gradients; "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_module_aliases_are_the_core_modules():
    import gradmatch.core.flows
    import gradmatch.core.regularizers
    import gradmatch.core.theory
    import gradmatch.flows
    import gradmatch.regularizers
    import gradmatch.theory

    assert gradmatch.regularizers is gradmatch.core.regularizers
    assert gradmatch.theory is gradmatch.core.theory
    assert gradmatch.flows is gradmatch.core.flows


@pytest.mark.parametrize("name", gradmatch.__all__)
def test_every_public_name_resolves(name):
    assert getattr(gradmatch, name) is not None


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gradmatch.nope  # noqa: B018
