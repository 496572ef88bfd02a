"""Validate a config preset against workflow/schemas/config.schema.yaml and print the verdict."""

from __future__ import annotations

import argparse

from gradmatch import config as config_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("configfile", help="a YAML preset such as config/config.yaml")


def command(args: argparse.Namespace) -> int:
    config_lib.validate(config_lib.load_yaml(args.configfile))
    print(f"{args.configfile}: valid")
    return 0
