"""Table declarations: frames built in order with their dtypes; checks name each problem."""

from __future__ import annotations

import pandas as pd
import pytest

from gradmatch import experiments
from gradmatch.tables import Column, Table, columns

TABLE = Table(
    columns(("seed", "int64", "seed"), ("loss", "float64", "loss", "nats"), ("tag", "str")),
    key=("seed",),
)


def test_frame_orders_columns_and_fixes_dtypes():
    frame = TABLE.frame([{"tag": "a", "loss": 1, "seed": 3}])
    assert list(frame.columns) == ["seed", "loss", "tag"]
    assert str(frame["loss"].dtype) == "float64" and str(frame["seed"].dtype) == "int64"
    TABLE.check(frame)


def test_check_names_missing_undeclared_reordered_and_mistyped_columns():
    with pytest.raises(ValueError, match=r"missing columns \['tag'\], undeclared columns \['x'\]"):
        TABLE.check(pd.DataFrame({"seed": [1], "loss": [0.5], "x": [1]}), "t")
    with pytest.raises(ValueError, match="columns in order"):
        TABLE.check(pd.DataFrame({"loss": [0.5], "seed": [1], "tag": ["a"]}), "t")
    with pytest.raises(
        ValueError, match=r"dtypes \{'seed': 'float64'\}, declared \{'seed': 'int64'\}"
    ):
        TABLE.check(pd.DataFrame({"seed": [1.0], "loss": [0.5], "tag": ["a"]}), "t")


def test_declaration_errors_are_named():
    with pytest.raises(ValueError, match="dtype 'float32'"):
        Column("x", "float32")
    with pytest.raises(ValueError, match=r"more than once"):
        Table(columns(("a", "int64"), ("a", "int64")))
    with pytest.raises(ValueError, match=r"key \['b'\] is not among its columns"):
        Table(columns(("a", "int64")), key=("b",))
    with pytest.raises(KeyError, match="no column 'b'"):
        TABLE["b"]


def test_every_analysis_declares_keyed_documented_tables():
    for name in experiments.names():
        declared = experiments.module(name).TABLES
        assert declared, name
        for table_name, table in declared.items():
            assert all(column.doc for column in table.columns), (name, table_name)
            assert "preset" in table.names, (name, table_name)
