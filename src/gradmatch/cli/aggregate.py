"""Concatenate the chunk tables of one analysis into one summary table, checking they agree."""

from __future__ import annotations

import argparse

import pandas as pd

from gradmatch import io


def concatenate(frames: list[pd.DataFrame], sort_by: list[str] | None = None) -> pd.DataFrame:
    """Stack chunk tables that share one column layout; optionally sort rows by ``sort_by``."""
    if not frames:
        raise ValueError("aggregate: no chunk tables were given")
    columns = list(frames[0].columns)
    for index, frame in enumerate(frames[1:], start=1):
        if list(frame.columns) != columns:
            raise ValueError(
                f"aggregate: chunk {index} has columns {list(frame.columns)}, chunk 0 has {columns}"
            )
    combined = pd.concat(frames, ignore_index=True)
    if sort_by:
        combined = combined.sort_values(sort_by, kind="stable").reset_index(drop=True)
    return combined


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="chunk parquet files")
    parser.add_argument("--out", required=True, help="summary parquet path")
    parser.add_argument("--sort-by", nargs="*", default=None, help="columns to sort rows by")


def command(args: argparse.Namespace) -> int:
    frames = [io.read_parquet(path) for path in args.inputs]
    io.write_parquet(concatenate(frames, args.sort_by), args.out)
    return 0
