"""Atomic output writing and checked parquet reading.

Every file the workflow produces is first written under a temporary name in the same folder and
then renamed (``os.replace`` is atomic on POSIX), so a job killed midway never leaves a file that
looks finished. Every parquet table carries its provenance (:mod:`gradmatch.provenance`: commit,
settings hash, versions, device, host, SLURM job) in its metadata, where
``pd.read_parquet(path).attrs["gradmatch"]`` and :func:`read_provenance` find it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_parquet(
    frame: pd.DataFrame,
    path: str | os.PathLike,
    *,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``frame`` to ``path`` atomically, without the index, byte-identical for equal input.

    The table carries ``provenance`` (a record of :mod:`gradmatch.provenance`; default: this
    process's, :func:`gradmatch.provenance.record` from no settings) as
    ``DataFrame.attrs["gradmatch"]``, stored by pandas in the parquet metadata; any other attrs
    of ``frame`` are not written.
    """
    from gradmatch import provenance as provenance_lib

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"write_parquet needs a pandas DataFrame, got {type(frame).__name__}")
    record = provenance_lib.record() if provenance is None else provenance
    table = frame.reset_index(drop=True)
    table.attrs = {provenance_lib.KEY: provenance_lib.canonical(dict(record))}
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, engine="pyarrow", index=False)
    return Path(path)


_ATTRS_KEY = b"PANDAS_ATTRS"  # where pandas keeps DataFrame.attrs in parquet metadata


def read_provenance(path: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance record of a parquet table (its schema metadata only, no data read), or
    None for a table written before provenance was recorded."""
    import pyarrow.parquet as pq

    from gradmatch.provenance import KEY

    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(
            f"{source}: no such parquet file; build it first (snakemake --cores 2 {source})"
        )
    try:
        metadata = pq.read_schema(source).metadata or {}
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(
            f"{source}: not a readable parquet table ({error}); delete it and rebuild it"
        ) from None
    if _ATTRS_KEY not in metadata:
        return None
    return json.loads(metadata[_ATTRS_KEY]).get(KEY)


def read_parquet(path: str | os.PathLike, *, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a parquet table; a missing file, an empty table or a missing column is an error."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(
            f"{source}: no such parquet file; build it first (snakemake --cores 2 {source})"
        )
    try:
        frame = pd.read_parquet(source, engine="pyarrow")
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(
            f"{source}: not a readable parquet table ({error}); delete it and rebuild it "
            f"(snakemake --cores 2 --forcerun {source})"
        ) from None
    if frame.empty:
        raise ValueError(f"{source}: the table is empty, so nothing can be drawn or summarised")
    missing = [name for name in columns or [] if name not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {missing}; it has {list(frame.columns)}. "
            "Rebuild it with the current gradmatch (snakemake --forcerun <rule>)."
        )
    return frame


def save_figure(figure, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """Save a matplotlib figure atomically; the format follows the suffix of ``path``."""
    final = Path(path)
    fmt = final.suffix.lstrip(".").lower()
    if not fmt:
        raise ValueError(f"{final}: a figure path needs a suffix such as .pdf or .png")
    if fmt == "pdf":
        savefig_kwargs.setdefault("metadata", {"CreationDate": None, "ModDate": None})
    with atomic_path(final) as tmp:
        figure.savefig(tmp, format=fmt, **savefig_kwargs)
    return final


def name_value_pairs(values: list[str], flag: str) -> list[tuple[str, str]]:
    """Command-line ``NAME=VALUE`` arguments of ``flag`` as (name, value) pairs, in order.

    A ValueError names the flag and the argument when either side of ``=`` is empty.
    """
    pairs = []
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{flag} takes NAME=VALUE, got {text!r}")
        pairs.append((name, value))
    return pairs
