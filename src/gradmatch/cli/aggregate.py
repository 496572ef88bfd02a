"""``gradmatch aggregate ANALYSIS --input TABLE=CHUNK ... --out TABLE=PATH``: concatenate the
chunk tables of a chunked analysis into one table each, checked against the analysis's table
declaration and sorted by its key."""

from __future__ import annotations

import argparse
from collections import defaultdict

import pandas as pd

from gradmatch import experiments, io, provenance


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
    parser.add_argument("analysis", help="the chunked analysis (a gradmatch.experiments module)")
    parser.add_argument(
        "--input", action="append", default=[], help="TABLE=PATH of one chunk's table"
    )
    parser.add_argument("--out", action="append", default=[], help="TABLE=PATH of the result")


def command(args: argparse.Namespace) -> int:
    declared = experiments.module(args.analysis).TABLES
    inputs: dict[str, list[str]] = defaultdict(list)
    for name, path in io.name_value_pairs(args.input, "--input"):
        inputs[name].append(path)
    outs = dict(io.name_value_pairs(args.out, "--out"))
    if set(outs) != set(declared) or set(inputs) != set(declared):
        raise ValueError(
            f"aggregate {args.analysis}: tables {sorted(declared)}; --out named {sorted(outs)}, "
            f"--input named {sorted(inputs)}"
        )
    for name, path in outs.items():
        table = declared[name]
        frames = [io.read_parquet(chunk) for chunk in inputs[name]]
        for chunk, frame in zip(inputs[name], frames, strict=True):
            table.check(frame, chunk)
        # the chunks' provenance, merged: one commit or the list, every chunk's job and device
        origin = provenance.merge([io.read_provenance(chunk) for chunk in inputs[name]])
        io.write_parquet(concatenate(frames, list(table.key)), path, provenance=origin)
    return 0
