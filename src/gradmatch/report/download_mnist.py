"""Download the four MNIST files from the configured mirrors and verify their SHA-256 sums."""

from __future__ import annotations

import argparse
import json

from gradmatch import config as config_lib
from gradmatch.data import mnist

SECTION_KEYS = ("mirrors", "checksums", "timeout_s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--settings", help="the config section 'mnist' as a JSON object")
    source.add_argument("--configfile", help="read the section 'mnist' from this YAML preset")
    parser.add_argument("--dest", default="data/raw/mnist", help="folder for the .gz files")


def section_from_args(args: argparse.Namespace) -> dict:
    """The ``mnist`` section (mirrors, checksums, timeout_s); built-in defaults when not given."""
    if args.configfile:
        loaded = config_lib.load_yaml(args.configfile)
        if "mnist" not in loaded:
            raise config_lib.ConfigError(f"{args.configfile}: no section 'mnist'")
        section = loaded["mnist"]
    elif args.settings:
        try:
            section = json.loads(args.settings)
        except json.JSONDecodeError as error:
            raise config_lib.ConfigError(f"--settings is not valid JSON ({error})") from error
    else:
        section = {}
    unknown = sorted(set(section) - set(SECTION_KEYS))
    if unknown:
        raise config_lib.ConfigError(
            f"config section 'mnist': unknown key(s) {unknown}; allowed: {list(SECTION_KEYS)}"
        )
    return section


def command(args: argparse.Namespace) -> int:
    section = section_from_args(args)
    written = mnist.download_mnist(
        args.dest,
        section.get("mirrors", mnist.DEFAULT_MIRRORS),
        section.get("checksums", mnist.SHA256),
        timeout=float(section.get("timeout_s", 60.0)),
    )
    for path in written:
        print(f"{path}: sha256 verified")
    return 0
