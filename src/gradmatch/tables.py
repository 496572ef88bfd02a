"""Table declarations: each analysis declares the columns of every table it writes, once.

An experiment module holds ``TABLES = {"<table>": Table(...)}`` at its top (no torch needed);
the analysis builds its frames through :meth:`Table.frame` (which fixes the dtypes and the
column order), plots and claims name columns through the declaration, the workflow sorts chunk
tables by its ``key``, and a test checks every real output with :meth:`Table.check`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

DTYPES = ("int64", "float64", "bool", "str")


@dataclass(frozen=True)
class Column:
    """One column: ``name``, ``dtype`` (int64 | float64 | bool | str), ``unit``, ``doc``."""

    name: str
    dtype: str
    doc: str = ""
    unit: str = ""

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"column {self.name!r}: dtype {self.dtype!r}; use one of {DTYPES}")


@dataclass(frozen=True)
class Table:
    """The columns of one table, in order; ``key`` names the columns that identify a row
    (the sort order of an aggregated table)."""

    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    doc: str = ""
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = tuple(column.name for column in self.columns)
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"table declares columns {duplicated} more than once")
        unknown = sorted(set(self.key) - set(names))
        if unknown:
            raise ValueError(f"table key {unknown} is not among its columns {list(names)}")
        object.__setattr__(self, "names", names)

    def __getitem__(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"no column {name!r}; the table declares {list(self.names)}")

    def frame(self, data: pd.DataFrame | Mapping[str, Any] | Iterable[Mapping[str, Any]]):
        """A DataFrame with exactly the declared columns, in order, with the declared dtypes."""
        frame = data.copy() if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        self._check_names(frame, "Table.frame")
        frame = frame[list(self.names)]
        for column in self.columns:
            if not _dtype_matches(frame[column.name], column.dtype):
                frame[column.name] = frame[column.name].astype(column.dtype)
        return frame

    def check(self, frame: pd.DataFrame, what: str = "table") -> None:
        """Raise ValueError naming each missing, extra or mistyped column of ``frame``."""
        self._check_names(frame, what)
        if list(frame.columns) != list(self.names):
            order = list(frame.columns)
            raise ValueError(f"{what}: columns in order {order}, declared {list(self.names)}")
        wrong = {
            column.name: str(frame[column.name].dtype)
            for column in self.columns
            if not _dtype_matches(frame[column.name], column.dtype)
        }
        if wrong:
            declared = {name: self[name].dtype for name in wrong}
            raise ValueError(f"{what}: dtypes {wrong}, declared {declared}")

    def _check_names(self, frame: pd.DataFrame, what: str) -> None:
        missing = [name for name in self.names if name not in frame.columns]
        extra = [name for name in frame.columns if name not in self.names]
        if missing or extra:
            raise ValueError(f"{what}: missing columns {missing}, undeclared columns {extra}")


def _dtype_matches(series: pd.Series, dtype: str) -> bool:
    if dtype == "str":
        return pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)
    return str(series.dtype) == dtype


def columns(*specs: tuple[str, str] | tuple[str, str, str] | tuple[str, str, str, str]):
    """Shorthand: ``columns(("seed", "int64", "seed of the member"), ...)`` → Column tuple."""
    return tuple(Column(*spec) for spec in specs)
