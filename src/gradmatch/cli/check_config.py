"""``gradmatch check-config FILE``: validate a config file by the one config rule; with
``--resolved``, print the complete config it means (every default filled in)."""

from __future__ import annotations

import argparse

import yaml

from gradmatch import config as config_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("configfile", help="a YAML preset such as config/config.yaml")
    parser.add_argument("--resolved", action="store_true", help="print the resolved config as YAML")


def command(args: argparse.Namespace) -> int:
    loaded = config_lib.load_yaml(args.configfile)
    if args.resolved:
        print(yaml.safe_dump(config_lib.resolve(loaded), sort_keys=False, allow_unicode=True))
    else:
        config_lib.validate(loaded)
        print(f"{args.configfile}: valid")
    return 0
