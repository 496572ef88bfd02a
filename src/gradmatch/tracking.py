"""Optional Weights & Biases tracking for training jobs: disabled, offline or online.

W&B is a mirror for people who like dashboards; the parquet tables stay the source of truth and
no figure reads W&B. The global config key ``wandb`` selects the mode::

    wandb:
      mode: null       # disabled | offline | online; null: $WANDB_MODE, else disabled
      project: null    # default $WANDB_PROJECT, else "gradmatch"
      entity: null     # default $WANDB_ENTITY, else W&B's default entity

A mode left unset follows ``$WANDB_MODE`` in the job's environment (W&B's own variable, which
clusters often set per site or per job script: ``dryrun`` counts as offline, ``run`` as online);
without it, tracking is disabled. A mode given in the config wins over ``$WANDB_MODE``.

Usage in an experiment (``settings.wandb`` is the :class:`gradmatch.settings.Wandb` block)::

    wandb = settings.wandb.model_dump()
    with Tracker(wandb, group="dropout", name="chunk-3", config=settings.record()) as run:
        for epoch in ...:
            run.log({"train_loss": loss}, step=epoch)
        run.summary({"lambda_hat": lam})

``disabled`` imports nothing and writes nothing. ``offline`` writes one run folder under
``data/generated/wandb/`` (or ``$GRADMATCH_WANDB_DIR`` or the ``directory`` argument);
``gradmatch wandb-sync`` (the workflow's local rule ``wandb_sync``, on a node with internet)
uploads the folders not uploaded yet, through ``wandb sync``.

**One run per job, even when retried.** A run's id is a hash of its group, name and recorded
settings (:func:`run_id`), and runs start with ``resume="allow"``: a job that SLURM requeues or
Snakemake retries continues its W&B run instead of creating a duplicate, while a changed setting
makes a new run. ``online`` needs a login (``wandb login`` or
``$WANDB_API_KEY``); the key is never passed through, logged or stored by gradmatch, and config
values whose name looks like a credential (key, token, secret, password) are replaced by
``"<redacted>"`` before W&B sees them.

**How the workflow passes the settings.** Tracking never changes a table, so the ``wandb`` block
is not part of any rule's params (a change there would rerun every training job). The workflow
exports the resolved block to its jobs as JSON in the environment variable ``GRADMATCH_WANDB``
(:data:`ENV_VAR`, e.g. ``{"mode": "offline", "project": null, "entity": null}``); the shell
command of each rule stays the same, so neither Snakemake's params nor its code trigger fires.
The CLI reads it with :func:`from_environment`: a ``wandb`` key given explicitly (``--configfile``
or ``--globals``) wins, then ``$GRADMATCH_WANDB``, then the default (disabled). A value that is
not a JSON object of ``mode``/``project``/``entity`` is an error naming the variable.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

MODES = ("disabled", "offline", "online")
ENV_VAR = "GRADMATCH_WANDB"  # the workflow's channel for the wandb block (see the module doc)
DEFAULT_PROJECT = "gradmatch"
DEFAULT_DIR = Path("data") / "generated" / "wandb"
REDACTED = "<redacted>"

# a config key is treated as a credential when one of its words is one of these
_SECRET_WORDS = {
    "key",
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "bearer",
    "cookie",
    "session",
}
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def is_secret_name(name: str) -> bool:
    """True when a config key looks like a credential (``api_key``, ``wandbToken``, ``SECRET``)."""
    words = _WORD_SPLIT.split(_CAMEL.sub("_", str(name)).lower())
    return any(word in _SECRET_WORDS for word in words)


def scrub(value: Any) -> Any:
    """Copy of ``value`` with every credential-like entry replaced by ``"<redacted>"``.

    Recurses into mappings, lists and tuples. A string equal to the current ``$WANDB_API_KEY``
    is redacted wherever it appears, whatever its key is called.
    """
    api_key = os.environ.get("WANDB_API_KEY") or None
    return _scrub(value, api_key)


def _scrub(value: Any, api_key: str | None) -> Any:
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if is_secret_name(key) else _scrub(item, api_key)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_scrub(item, api_key) for item in value]
    if isinstance(value, str) and api_key and api_key in value:
        return value.replace(api_key, REDACTED)
    return value


# $WANDB_MODE values (W&B's own variable) -> our mode; W&B's "shared" mode is not supported
ENV_MODES = {"disabled": "disabled", "offline": "offline", "dryrun": "offline"}
ENV_MODES.update({"online": "online", "run": "online"})


def environment_mode(environ: Mapping[str, str] | None = None) -> str | None:
    """The mode ``$WANDB_MODE`` asks for, or None when it is unset or empty; a value W&B would
    not accept here is a ValueError naming the variable."""
    value = (os.environ if environ is None else environ).get("WANDB_MODE", "").strip()
    if not value:
        return None
    if value not in ENV_MODES:
        raise ValueError(
            f"$WANDB_MODE is {value!r}; gradmatch follows it only as one of {sorted(ENV_MODES)}: "
            "change or unset it, or set wandb.mode in the config (which wins over $WANDB_MODE)"
        )
    return ENV_MODES[value]


def run_id(group: str, name: str, config: Mapping[str, Any]) -> str:
    """The W&B run id of a job: the first 24 hex digits of the SHA-256 of its group (analysis),
    name (chunk) and recorded settings as canonical JSON. Equal for a retry of the same job,
    different for another chunk or another setting."""
    text = json.dumps({"config": config, "group": group, "name": name}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def resolve(wandb_settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The effective ``{mode, project, entity}``: config first, then environment (``$WANDB_MODE``,
    ``$WANDB_PROJECT``, ``$WANDB_ENTITY``), then defaults."""
    settings = dict(wandb_settings or {})
    unknown = sorted(set(settings) - {"mode", "project", "entity"})
    if unknown:
        raise ValueError(
            f"wandb: unknown key(s) {unknown}; the wandb config takes mode, project and entity"
        )
    mode = settings.get("mode") or environment_mode() or "disabled"
    if mode not in MODES:
        raise ValueError(f"wandb.mode: {mode!r} is not allowed; use one of {list(MODES)}")
    project = settings.get("project") or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
    entity = settings.get("entity") or os.environ.get("WANDB_ENTITY") or None
    return {"mode": mode, "project": project, "entity": entity}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The ``wandb`` block exported by the workflow in ``$GRADMATCH_WANDB``, or None if unset.

    The value must be a JSON object with the keys of :class:`gradmatch.settings.Wandb`; anything
    else raises one ValueError naming the variable, the value and what is allowed.
    """
    from pydantic import ValidationError

    from gradmatch.settings import Wandb

    text = (os.environ if environ is None else environ).get(ENV_VAR)
    if text is None or not text.strip():
        return None
    fix = 'expected a JSON object such as {"mode": "offline"} with keys mode, project, entity'
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"${ENV_VAR} is not valid JSON ({error}): {text!r}; {fix}") from None
    if not isinstance(value, dict):
        raise ValueError(f"${ENV_VAR} must be a JSON object, got {text!r}; {fix}")
    try:
        return Wandb.model_validate(value).model_dump(mode="json")
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        key = ".".join(map(str, first["loc"]))
        raise ValueError(
            f"${ENV_VAR}: key {key!r}: {first['msg']} (got {first.get('input')!r}); {fix}"
        ) from None


class Tracker:
    """One W&B run as a context manager; every method is a no-op when the mode is disabled.

    Parameters
    ----------
    wandb_settings:
        The global config key ``wandb`` (``{mode, project, entity}``) or None (= disabled).
    group:
        The analysis, e.g. ``"elastic_net"``; W&B groups runs by it.
    name:
        The run within the group, e.g. a chunk or member id.
    config:
        Settings to record; credential-like keys are redacted first (see :func:`scrub`).
    directory:
        Where offline/online run folders go; default ``$GRADMATCH_WANDB_DIR``, else
        ``data/generated/wandb`` (relative to the working directory, the repository root under
        Snakemake).
    """

    def __init__(
        self,
        wandb_settings: Mapping[str, Any] | None,
        *,
        group: str,
        name: str,
        config: Mapping[str, Any],
        directory: str | os.PathLike | None = None,
    ) -> None:
        resolved = resolve(wandb_settings)
        self.mode: str = resolved["mode"]
        self.project: str = resolved["project"]
        self.entity: str | None = resolved["entity"]
        self.group = group
        self.name = name
        self.config = scrub(dict(config))
        self.run_id = run_id(group, name, self.config)
        self.directory = Path(directory or os.environ.get("GRADMATCH_WANDB_DIR") or DEFAULT_DIR)
        self._run = None

    @property
    def enabled(self) -> bool:
        return self.mode != "disabled"

    @property
    def run_dir(self) -> Path | None:
        """The folder of the active run (offline/online), None when disabled or not started."""
        if self._run is None:
            return None
        return Path(self._run.dir).absolute().parent

    def __enter__(self) -> Tracker:
        if not self.enabled:
            return self
        try:
            import wandb
        except ImportError as error:  # pragma: no cover - wandb is a dependency
            raise RuntimeError(
                f"wandb.mode is {self.mode!r} but the wandb package is missing; "
                "pip install wandb, or set wandb.mode: disabled"
            ) from error
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._run = wandb.init(
                mode=self.mode,
                project=self.project,
                entity=self.entity,
                group=self.group,
                name=self.name,
                id=self.run_id,
                resume="allow",
                config=self.config,
                dir=str(self.directory.absolute()),
                reinit="create_new",
                settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
            )
        except Exception as error:
            hint = (
                "log in with `wandb login` (or export WANDB_API_KEY), or set wandb.mode: offline"
                if self.mode == "online"
                else "set wandb.mode: disabled to train without W&B"
            )
            raise RuntimeError(
                f"wandb.init failed in mode {self.mode!r} for run {self.group}/{self.name}: "
                f"{error}; {hint}"
            ) from error
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._run is not None:
            self._run.finish(exit_code=0 if exc_type is None else 1)
            self._run = None

    def _require_started(self, method: str) -> None:
        if self.enabled and self._run is None:
            raise RuntimeError(
                f"Tracker.{method}: use the tracker as a context manager "
                "(`with Tracker(...) as run:`) before logging"
            )

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log one row of metrics (e.g. one epoch); ``step`` must not decrease within a run."""
        self._require_started("log")
        if self._run is not None:
            self._run.log(scrub(dict(metrics)), step=step)

    def summary(self, values: Mapping[str, Any]) -> None:
        """Set final values (estimates, stop step) in the run summary."""
        self._require_started("summary")
        if self._run is not None:
            self._run.summary.update(scrub(dict(values)))

    def member_logger(self, labels: Sequence[str]) -> Callable[[int, dict], None] | None:
        """An ``on_epoch(epoch, metrics)`` callback for the batched trainer, or None if disabled.

        ``metrics`` maps a name to one value per member (numpy arrays of shape (K,)) plus the
        boolean ``active``; each active member's values are logged as ``<label>/<name>`` at
        ``step=epoch``, so one W&B run holds every member of a chunk.
        """
        if not self.enabled:
            return None
        names = [str(label) for label in labels]

        def on_epoch(epoch: int, metrics: dict) -> None:
            active = metrics.get("active")
            row = {}
            for name, values in metrics.items():
                if name == "active":
                    continue
                for index, label in enumerate(names):
                    if active is None or bool(active[index]):
                        row[f"{label}/{name}"] = float(values[index])
            self.log(row, step=int(epoch))

        return on_epoch

    def member_summary(self, rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> None:
        """Put one result row per member into the summary as ``<label>/<column>`` (numbers only)."""
        values = {}
        for label, row in zip(labels, rows, strict=True):
            for key, value in row.items():
                if isinstance(value, numbers.Real):
                    values[f"{label}/{key}"] = value.item() if hasattr(value, "item") else value
        self.summary(values)


# ---- uploading offline runs: gradmatch wandb-sync (the workflow's local rule wandb_sync) ----


def unsynced_runs(directory: str | os.PathLike = DEFAULT_DIR) -> list[Path]:
    """The offline run folders under ``directory`` that ``wandb sync`` has not uploaded yet
    (it leaves ``run-<id>.wandb.synced`` beside the run's log), oldest first."""
    folders = sorted(Path(directory).glob("wandb/offline-run-*"))
    return [
        folder
        for folder in folders
        if any(folder.glob("run-*.wandb")) and not any(folder.glob("run-*.wandb.synced"))
    ]


def sync_offline(
    directory: str | os.PathLike = DEFAULT_DIR,
    *,
    runner=subprocess.run,
    project: str | None = None,
    entity: str | None = None,
) -> list[Path]:
    """Upload every offline run folder not uploaded yet with ``wandb sync`` (one call; it marks
    each folder synced), and return the folders. Needs the network and a login; a failure is
    one RuntimeError with ``wandb sync``'s exit status, and the folders stay for a retry."""
    folders = unsynced_runs(directory)
    if not folders:
        return []
    command = ["wandb", "sync", "--mark-synced", *(str(folder) for folder in folders)]
    if project:
        command[2:2] = ["--project", project]
    if entity:
        command[2:2] = ["--entity", entity]
    done = runner(command, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command[:3])} ...` failed with exit status {done.returncode} for "
            f"{len(folders)} run folder(s) under {directory}; check the login (`wandb login`, "
            "or WANDB_API_KEY) and the network on this node, then rerun (synced folders are "
            "marked and skipped)"
        )
    return folders


def add_arguments(parser) -> None:
    """The options of ``gradmatch wandb-sync``."""
    parser.add_argument(
        "--dir", default=str(DEFAULT_DIR), help="the folder the offline runs were written under"
    )
    parser.add_argument("--project", default=None, help="W&B project (default: the run's)")
    parser.add_argument("--entity", default=None, help="W&B entity (default: the run's)")


def command(args) -> int:
    """Run ``gradmatch wandb-sync``: upload the offline runs not uploaded yet."""
    try:
        folders = sync_offline(args.dir, project=args.project or None, entity=args.entity or None)
    except RuntimeError as error:
        print(f"gradmatch wandb-sync: error: {error}", file=sys.stderr)
        return 1
    if not folders:
        print(f"wandb-sync: no offline run under {args.dir} is waiting to be uploaded")
    for folder in folders:
        print(f"wandb-sync: uploaded {folder}")
    return 0


# ---- reading offline runs back (tests, and users without a W&B account) ----

_BLOCK = 32768
_FILE_HEADER = 7  # b":W&B", magic 0xBEE1 (little endian), version byte
_RECORD_HEADER = 7  # crc32c (4), length (2), type (1)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(path: Path):
    data = path.read_bytes()
    if len(data) < _FILE_HEADER or data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log (.wandb file)")
    position, pending = _FILE_HEADER, b""
    while position + _RECORD_HEADER <= len(data):
        left_in_block = _BLOCK - position % _BLOCK
        if left_in_block < _RECORD_HEADER:
            position += left_in_block
            continue
        length, kind = struct.unpack_from("<HB", data, position + 4)
        start = position + _RECORD_HEADER
        chunk = data[start : start + length]
        position = start + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""
        elif kind == 0 and length == 0:  # zero fill: nothing was written past here
            break
        else:
            raise ValueError(f"{path}: corrupt record of type {kind} at byte {start}")


def read_offline_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Decode an offline run folder: ``{"config": {...}, "history": [rows], "summary": {...}}``.

    Reads the run's ``run-<id>.wandb`` transaction log with W&B's own protobuf messages.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    folder = Path(run_dir)
    logs = sorted(folder.glob("run-*.wandb"))
    if not logs:
        raise FileNotFoundError(f"{folder}: no run-*.wandb file; is this an offline run folder?")
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}

    def decode(item) -> tuple[str, Any]:
        key = item.key or "/".join(item.nested_key)
        return key, json.loads(item.value_json)

    for raw in _records(logs[0]):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            config.update(decode(item) for item in record.run.config.update)
        elif kind == "config":
            config.update(decode(item) for item in record.config.update)
        elif kind == "history":
            history.append(dict(decode(item) for item in record.history.item))
        elif kind == "summary":
            summary.update(decode(item) for item in record.summary.update)
    config = {
        key: value.get("value", value) if isinstance(value, dict) else value
        for key, value in config.items()
        if not key.startswith("_")
    }
    return {"config": config, "history": history, "summary": summary}
