"""Alias of :mod:`gradmatch.core.estimators` (the same module object)."""

import sys

from gradmatch.core import estimators as _module

sys.modules[__name__] = _module
