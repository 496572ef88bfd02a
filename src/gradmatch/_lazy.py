"""Lazy imports, so that an experiment module imports without torch.

``torch = lazy_import("torch")`` binds a stand-in module whose first attribute access imports
the real module by the ordinary ``importlib.import_module`` and forwards to it. The workflow
imports every experiment module to read its Settings, table declarations and chunk count; with
lazy imports that costs milliseconds and never initialises torch or CUDA on the submitting host.
(The standard library's ``importlib.util.LazyLoader`` is not used: torch cannot be executed
through it — ``torch.Generator()`` then fails on its metaclass.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType


class _LazyModule(ModuleType):
    """A stand-in for the module ``name``: imports it on first attribute access."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"lazy stand-in for {name}")
        self.__dict__["_lazy_name"] = name

    def __getattr__(self, attribute: str):
        module = importlib.import_module(self.__dict__["_lazy_name"])
        return getattr(module, attribute)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__dict__["_lazy_name"]))


def lazy_import(name: str) -> ModuleType:
    """The module ``name``, imported on first use (an already imported module is returned).

    ``find_spec`` of a submodule imports its parent package: name top-level modules (torch) or
    gradmatch modules, never ``torch.func`` and the like.
    """
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    return _LazyModule(name)
