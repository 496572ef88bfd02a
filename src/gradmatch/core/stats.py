"""Small statistics shared by the experiments and the claims (numpy and pandas only)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    r"""Spearman rank correlation of ``x`` and ``y``.

    .. math::

        \rho = \frac{\sum_i (r_i - \bar r)(s_i - \bar s)}
                    {\sqrt{\sum_i (r_i - \bar r)^2 \, \sum_i (s_i - \bar s)^2}}

    the Pearson correlation of the ranks ``r = rank(x)`` and ``s = rank(y)``, where tied values
    get the average of the ranks they span. NaN when fewer than two points are given or when
    either side is constant (the correlation is undefined there).
    """
    ranks_x = pd.Series(np.asarray(x, dtype=float)).rank(method="average").to_numpy()
    ranks_y = pd.Series(np.asarray(y, dtype=float)).rank(method="average").to_numpy()
    if ranks_x.size < 2 or np.ptp(ranks_x) == 0 or np.ptp(ranks_y) == 0:
        return math.nan
    return float(np.corrcoef(ranks_x, ranks_y)[0, 1])
