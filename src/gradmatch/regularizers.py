"""Alias of :mod:`gradmatch.core.regularizers` (the same module object)."""

import sys

from gradmatch.core import regularizers as _module

sys.modules[__name__] = _module
