"""``gradmatch schema``: the JSON schema of a config file, generated from the Settings classes."""

from __future__ import annotations

import argparse
import json

from gradmatch import config as config_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--indent", type=int, default=2, help="JSON indentation")


def command(args: argparse.Namespace) -> int:
    print(json.dumps(config_lib.json_schema(), indent=args.indent, ensure_ascii=False))
    return 0
