"""Alias of :mod:`gradmatch.core.theory` (the same module object)."""

import sys

from gradmatch.core import theory as _module

sys.modules[__name__] = _module
