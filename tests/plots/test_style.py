"""The shared plot style: symmetric diverging limits, figure sizes, column checks."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest

from gradmatch.plots import style


def test_diverging_limits_are_symmetric_about_the_centre():
    cmap, norm = style.diverging([-0.5, 2.0, np.nan], center=0.0)
    assert (norm.vmin, norm.vmax) == (-2.0, 2.0)
    assert norm(0.0) == pytest.approx(0.5)
    assert cmap.name == "RdBu_r"
    _, shifted = style.diverging([1.0, 4.0], center=2.0)
    assert (shifted.vmin, shifted.vmax) == (0.0, 4.0)


def test_diverging_refuses_values_without_a_finite_number():
    with pytest.raises(ValueError, match="no finite values"):
        style.diverging([np.nan, np.inf])


def test_figure_size_by_name_and_inches():
    assert style.figure_size("column", aspect=0.5) == (3.25, 1.625)
    assert style.figure_size(4.0, aspect=1.0) == (4.0, 4.0)
    with pytest.raises(ValueError, match="width must be one of"):
        style.figure_size("page")


def test_context_sets_rc_only_inside_the_block():
    before = mpl.rcParams["font.size"]
    with style.context():
        assert mpl.rcParams["font.size"] == style.RC_PARAMS["font.size"]
    assert mpl.rcParams["font.size"] == before


def test_require_columns_names_the_table_and_column():
    tables = {"runs": pd.DataFrame({"a": [1]})}
    with pytest.raises(ValueError, match=r"figX: table 'runs' lacks column\(s\) \['b'\]"):
        style.require_columns(tables, {"runs": ["a", "b"]}, "figX")
    with pytest.raises(ValueError, match="table 'other' missing"):
        style.require_columns(tables, {"other": ["a"]}, "figX")
