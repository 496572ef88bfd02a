"""``gradmatch download-mnist``: fetch the four MNIST files into ``--dest``, SHA-256 checked.

Mirrors, checksums and the timeout come from the config section ``mnist``
(:class:`gradmatch.data.mnist.DownloadSettings`); the destination is the workflow's MNIST
folder, passed as ``--dest``.
"""

from __future__ import annotations

import argparse
import json

from gradmatch import config as config_lib
from gradmatch.data import mnist


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--settings", help="the config section 'mnist' as a JSON object")
    source.add_argument("--configfile", help="read the section 'mnist' from this YAML preset")
    parser.add_argument("--dest", required=True, help="folder for the .gz files")


def settings_from_args(args: argparse.Namespace) -> mnist.DownloadSettings:
    """The ``mnist`` section over its defaults (the published mirrors and sums)."""
    if args.configfile:
        config = config_lib.load_yaml(args.configfile)
    elif args.settings:
        try:
            config = {"mnist": json.loads(args.settings)}
        except json.JSONDecodeError as error:
            raise config_lib.ConfigError(f"--settings is not valid JSON ({error})") from error
    else:
        config = {}
    return config_lib.section_settings(config, "mnist")


def command(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    written = mnist.download_mnist(
        args.dest, settings.mirrors, settings.checksums, timeout=settings.timeout_s
    )
    for path in written:
        print(f"{path}: sha256 verified")
    return 0
