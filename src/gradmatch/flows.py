"""Alias of :mod:`gradmatch.core.flows` (the same module object)."""

import sys

from gradmatch.core import flows as _module

sys.modules[__name__] = _module
