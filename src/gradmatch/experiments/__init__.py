"""The analyses: one module per analysis of the paper, found by name (no torch imported).

Every public module here (``gradmatch.experiments.<section>``) follows one protocol, read by the
CLI (``gradmatch <section-with-dashes>``), the config validation and the workflow:

- ``Settings``: a :class:`gradmatch.settings.Settings` subclass whose defaults are the paper's
  values; the config section ``<section>`` overlays it;
- ``TABLES``: ``{table name: gradmatch.tables.Table}``, the declaration of every table ``run``
  returns (one table: ``run`` returns a DataFrame; several: a dict by these names);
- ``RESOURCES``: a :class:`gradmatch.settings.Resources` (GPU or not, threads, minutes, memory);
- ``n_chunks(settings) -> int`` *(chunked analyses only)*: how many jobs the config makes;
  ``run(settings, chunk=i)`` then runs chunk ``i``;
- ``run(settings) -> DataFrame | dict[str, DataFrame]``.

Module level must not import torch (use :func:`gradmatch._lazy.lazy_import`), so that the
workflow can ask for chunk counts and tables on a login node in milliseconds.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path
from types import ModuleType

_FOLDER = Path(__file__).resolve().parent


@cache
def names() -> tuple[str, ...]:
    """The section names of every analysis (= module names), sorted."""
    return tuple(
        sorted(
            info.name
            for info in pkgutil.iter_modules([str(_FOLDER)])
            if not info.name.startswith("_") and not info.ispkg
        )
    )


def module(section: str) -> ModuleType:
    """The experiment module of ``section``; a ValueError names the known sections."""
    if section not in names():
        raise ValueError(f"no analysis {section!r}; analyses: {list(names())}")
    return importlib.import_module(f"{__name__}.{section}")


def is_chunked(section: str) -> bool:
    """Whether the analysis runs as several jobs (its module defines ``n_chunks``)."""
    return hasattr(module(section), "n_chunks")


def chunk_count(section: str, settings) -> int:
    """The number of jobs of ``section`` under ``settings`` (1 for an unchunked analysis)."""
    experiment = module(section)
    return int(experiment.n_chunks(settings)) if hasattr(experiment, "n_chunks") else 1
