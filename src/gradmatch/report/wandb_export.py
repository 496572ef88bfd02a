"""Export an online W&B project's runs (id, config, summary) into one parquet table.

For users who trained with ``wandb.mode: online`` and want their dashboard runs next to the
workflow's tables. The parquet tables written by the workflow stay the source of truth; nothing
in gradmatch reads this export to draw a figure. Needs a W&B login (``wandb login`` or
``$WANDB_API_KEY``); the key is neither read nor written here, and credential-like config
entries are redacted (:func:`gradmatch.tracking.scrub`).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from gradmatch import io
from gradmatch.tracking import resolve, scrub

COLUMNS = [
    "run_id",
    "name",
    "group",
    "state",
    "created_at",
    "project",
    "entity",
    "config_json",
    "summary_json",
]


def _plain(value: Any) -> Any:
    """JSON-safe copy: mappings and sequences recursively, NaN/inf as strings, rest as str."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _summary_dict(summary: Any) -> dict[str, Any]:
    raw = getattr(summary, "_json_dict", None)
    if raw is None:
        raw = dict(summary or {})
    return {key: value for key, value in raw.items() if not str(key).startswith("_")}


def runs_table(runs: Iterable[Any], project: str, entity: str | None) -> pd.DataFrame:
    """One row per run: id, name, group, state, creation time, config and summary as JSON."""
    rows = []
    for run in runs:
        config = {key: value for key, value in dict(run.config).items() if not key.startswith("_")}
        rows.append(
            {
                "run_id": str(run.id),
                "name": str(getattr(run, "name", "") or ""),
                "group": str(getattr(run, "group", "") or ""),
                "state": str(getattr(run, "state", "") or ""),
                "created_at": str(getattr(run, "created_at", "") or ""),
                "project": project,
                "entity": entity or "",
                "config_json": json.dumps(_plain(scrub(config)), sort_keys=True),
                "summary_json": json.dumps(
                    _plain(scrub(_summary_dict(run.summary))), sort_keys=True
                ),
            }
        )
    if not rows:
        raise ValueError(
            f"wandb-export: project {entity + '/' if entity else ''}{project} has no runs; "
            "check --project/--entity (or WANDB_PROJECT/WANDB_ENTITY)"
        )
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("run_id", kind="stable")


def export(api: Any, project: str, entity: str | None) -> pd.DataFrame:
    """Read every run of ``entity/project`` through a ``wandb.Api``-like object."""
    path = f"{entity}/{project}" if entity else project
    return runs_table(api.runs(path), project, entity)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project", help="W&B project (empty or absent: $WANDB_PROJECT, else gradmatch)"
    )
    parser.add_argument(
        "--entity", help="W&B entity (empty or absent: $WANDB_ENTITY, else your default)"
    )
    parser.add_argument("--out", required=True, help="output parquet path")


def command(args: argparse.Namespace) -> int:
    settings = resolve({"mode": "online", "project": args.project, "entity": args.entity})
    try:
        import wandb

        api = wandb.Api(timeout=60)
    except Exception as error:  # no login, no network: say how to fix it
        raise ValueError(
            f"wandb-export: cannot reach the W&B API ({error}); log in with `wandb login` "
            "(or export WANDB_API_KEY) on a machine with network access"
        ) from error
    table = export(api, settings["project"], settings["entity"])
    io.write_parquet(table, args.out)
    print(f"wandb-export: {len(table)} runs of {settings['project']} -> {args.out}")
    return 0
