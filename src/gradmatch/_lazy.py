"""Lazy imports, so that an experiment module imports without torch.

``torch = lazy_import("torch")`` binds a module that is executed on first attribute access
(:class:`importlib.util.LazyLoader`, the standard library's recipe). The workflow imports every
experiment module to read its Settings, table declarations and chunk count; with lazy imports
that costs milliseconds and never initialises torch or CUDA on the submitting host.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_import(name: str) -> ModuleType:
    """The module ``name``, loaded on first use (already imported modules are returned as is)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
