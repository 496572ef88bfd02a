"""Lazy imports: a stand-in that imports the real module on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gradmatch._lazy import lazy_import

PROBE = """
import sys
from gradmatch._lazy import lazy_import
torch = lazy_import("torch")
assert "torch._C" not in sys.modules, "torch ran at lazy_import"
generator = torch.Generator().manual_seed(1)  # torch's metaclass works through the stand-in
print(float(torch.randn(1, generator=generator)), "torch._C" in sys.modules)
"""


def test_torch_runs_only_on_first_use_and_works_through_the_stand_in():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    value, loaded = result.stdout.split()
    assert loaded == "True" and abs(float(value) - 0.6614) < 1e-3


def test_an_imported_module_is_returned_as_is_and_a_missing_one_is_named():
    assert lazy_import("json") is sys.modules["json"]
    with pytest.raises(ModuleNotFoundError, match="no_such_module_xyz"):
        lazy_import("no_such_module_xyz")
