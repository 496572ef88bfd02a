"""``gradmatch verify-mnist --dir FOLDER --stamp PATH``: check a folder of MNIST files once.

The folder is the config key ``mnist.dir`` (a site's own copy: plain or gzipped IDX under
either naming, :func:`gradmatch.data.mnist.candidate_names`); every file must decompress to
the published bytes (:data:`gradmatch.data.mnist.RAW_SHA256`). What was verified (paths, sizes,
modification times, sums) goes to ``--stamp``, outside the user's folder; a stamp that still
matches the files is kept without reading 55 MB again (:func:`gradmatch.data.mnist.write_stamp`).
"""

from __future__ import annotations

import argparse

from gradmatch.data import mnist


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, help="the folder holding the four MNIST files")
    parser.add_argument("--stamp", required=True, help="the JSON record of the verification")


def command(args: argparse.Namespace) -> int:
    verified = mnist.write_stamp(args.dir, args.stamp)
    for stem, path in sorted(mnist.locate_all(args.dir).items()):
        state = "sha256 verified (decompressed)" if verified else f"unchanged since {args.stamp}"
        print(f"{path}: {stem}, {state}")
    return 0
