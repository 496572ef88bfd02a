"""How a measured number is printed, the same in a figure, the claims table and the report text.

Torch- and matplotlib-free, so the claims (:mod:`gradmatch.report.claims`) format with it too:
a value annotated on a panel and the claims row that checks it are the same string.
"""

from __future__ import annotations


def fmt(value: float) -> str:
    """4 significant digits; scientific (2 decimals) when |value| < 1e-3 or ≥ 1e4, and 0 as 0."""
    value = float(value)
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.4g}"
    return f"{value:.2e}"
