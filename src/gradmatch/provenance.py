"""Provenance: which code, settings, environment and job produced a table (no torch at import).

Every parquet table that :func:`gradmatch.io.write_parquet` writes carries one record, a JSON
object under the key :data:`KEY` of its pandas attributes (parquet key-value metadata
``PANDAS_ATTRS``), so ``pd.read_parquet(path).attrs["gradmatch"]`` shows it and
:func:`gradmatch.io.read_provenance` reads it without reading the data::

    {"analysis": "dropout", "chunk": 3, "commit": "fd505e7a…", "dirty": false,
     "config_hash": "9c1e…", "preset": "paper", "gradmatch": "0.1.0", "python": "3.11.9",
     "torch": "2.13.0+cu126", "cuda": "12.6", "device": "NVIDIA H200", "host": "gpu017",
     "slurm_job_id": "4242", "slurm_array_job_id": null, "slurm_array_task_id": null}

- ``commit``/``dirty``: ``git rev-parse HEAD`` and ``git status --porcelain`` (of the code:
  :data:`CODE_PATHS`) of the checkout the package is imported from (``"unknown"`` outside a
  git checkout, or when git fails);
- ``config_hash``: the SHA-256 of the settings the table was made from, as canonical JSON
  (:func:`gradmatch.config.settings_record`: sorted keys, without W&B and local paths), so equal
  hashes mean equal settings; null for a table made from no settings;
- ``device``: ``cpu`` or the CUDA device's name (``torch.cuda.get_device_name``);
- ``host`` and the SLURM ids (``$SLURM_JOB_ID``, ``$SLURM_ARRAY_JOB_ID``,
  ``$SLURM_ARRAY_TASK_ID``; null outside SLURM).

No timestamp is recorded: the same code and settings in the same environment (host, job) give
byte-identical files. A table built from others (an aggregate of chunk tables) carries
:func:`merge` of their records: each field once when all parts agree, else the sorted list of
the values, and ``parts``, every part's own record (each chunk's device, host and job id).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

KEY = "gradmatch"  # the key of the record in DataFrame.attrs (parquet metadata PANDAS_ATTRS)
UNKNOWN = "unknown"
SLURM_VARIABLES = {
    "slurm_job_id": "SLURM_JOB_ID",
    "slurm_array_job_id": "SLURM_ARRAY_JOB_ID",
    "slurm_array_task_id": "SLURM_ARRAY_TASK_ID",
}
PACKAGE_DIR = Path(__file__).resolve().parent
# what makes a table, relative to the checkout: the package, the workflow, the presets, the pins
CODE_PATHS = ("src", "workflow", "config", "pyproject.toml")
GIT_TIMEOUT_S = 10


def _git(*args: str, cwd: Path) -> str | None:
    """stdout of ``git ARGS`` in ``cwd``, or None when git is missing or fails."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.cache
def git_state(package_dir: Path = PACKAGE_DIR) -> dict[str, Any]:
    """``{"commit", "dirty"}`` of the git checkout holding the package (``src/<package>``).

    The checkout counts only when its top level holds this package under ``src/`` (an install
    into a virtual environment inside some other checkout is not that checkout's code); else
    both are ``"unknown"``. ``dirty`` is whether ``git status --porcelain`` lists anything (an
    edit, or a file git does not ignore) among :data:`CODE_PATHS`, what makes the tables: job
    logs, outputs and notes elsewhere in the checkout do not count. Read once per process:
    every table a process writes names the same state.
    """
    unknown = {"commit": UNKNOWN, "dirty": UNKNOWN}
    top = _git("rev-parse", "--show-toplevel", cwd=package_dir)
    if top is None or Path(top.strip()).resolve() / "src" / package_dir.name != package_dir:
        return unknown
    root = Path(top.strip()).resolve()
    commit = _git("rev-parse", "HEAD", cwd=root)
    status = _git("status", "--porcelain", "--", *CODE_PATHS, cwd=root)
    if commit is None or status is None:
        return unknown
    return {"commit": commit.strip(), "dirty": bool(status.strip())}


def _installed_torch() -> dict[str, str | None]:
    """torch's ``__version__`` and ``cuda`` from its ``version.py``, without importing torch
    (1-2 s) in a process that never needed it (aggregation, claims)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return {"torch": None, "cuda": None}
    source = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    values: dict[str, Any] = {}
    try:
        for node in ast.parse(source.read_text()).body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and node.value is not None:
                        values[target.id] = ast.literal_eval(node.value)
    except (OSError, SyntaxError, ValueError):
        return {"torch": UNKNOWN, "cuda": UNKNOWN}
    return {"torch": values.get("__version__", UNKNOWN), "cuda": values.get("cuda")}


def torch_versions() -> dict[str, str | None]:
    """``{"torch", "cuda"}``: the torch version and the CUDA version it was built for (None for
    a CPU-only build, both None without torch)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "version"):
        return {"torch": str(torch.__version__), "cuda": torch.version.cuda}
    return _installed_torch()


def device_name(device: Any = "cpu") -> str:
    """``cpu``, or the name of the CUDA device (``NVIDIA H200``) for a cuda device; ``auto`` is
    resolved as the trainer resolves it (:func:`gradmatch.train.devices.resolve_device`)."""
    if str(device) == "cpu":
        return "cpu"
    from gradmatch.train.devices import resolve_device

    resolved = resolve_device(device)
    if resolved.type != "cuda":
        return resolved.type
    import torch

    return torch.cuda.get_device_name(resolved)


def slurm_ids(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """The SLURM job id and array ids of this process (None outside SLURM)."""
    environ = os.environ if environ is None else environ
    return {field: environ.get(variable) or None for field, variable in SLURM_VARIABLES.items()}


def config_hash(settings: Any) -> str:
    """SHA-256 of the settings as canonical JSON (:func:`gradmatch.config.settings_record` for a
    Settings model; a mapping is dumped with sorted keys)."""
    if isinstance(settings, Mapping):
        text = json.dumps(settings, sort_keys=True, default=str)
    else:
        from gradmatch.config import settings_record

        text = settings_record(settings)
    return hashlib.sha256(text.encode()).hexdigest()


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data with every mapping's keys sorted (stable bytes)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def record(
    settings: Any = None,
    *,
    analysis: str | None = None,
    chunk: int | None = None,
    device: Any = None,
) -> dict[str, Any]:
    """The provenance of a table this process makes from ``settings`` (None: from no settings).

    ``device`` is where the work ran; None takes the ``device`` field of ``settings`` when it
    has one (resolved as the trainer resolves it), else ``cpu``.
    """
    from gradmatch import __version__

    if device is None:
        device = getattr(settings, "device", "cpu")
    fields = {
        "analysis": analysis,
        "chunk": chunk,
        "config_hash": None if settings is None else config_hash(settings),
        "preset": getattr(settings, "preset", None),
        "gradmatch": __version__,
        "python": platform.python_version(),
        **git_state(),
        **torch_versions(),
        "device": device_name(device),
        "host": socket.gethostname(),
        **slurm_ids(),
    }
    return canonical(fields)


def merge(records: Sequence[Mapping[str, Any] | None], **own: Any) -> dict[str, Any]:
    """One record for a table made from the tables of ``records`` (chunks, claim inputs).

    Each field appears once: its value when every part agrees, else the sorted list of the
    distinct values (``"commit": ["abc…", "def…"]`` says the parts come from two commits).
    ``parts`` lists every part's record in order (None for a part that carries none: written
    before provenance was recorded). ``own`` fields (e.g. ``analysis``) override.
    """
    parts = [None if part is None else canonical(dict(part)) for part in records]
    known = [part for part in parts if part is not None]
    names = sorted({name for part in known for name in part if name != "parts"})
    merged: dict[str, Any] = {}
    for name in names:
        values = {json.dumps(part.get(name), sort_keys=True) for part in known}
        decoded = [json.loads(value) for value in sorted(values)]
        merged[name] = decoded[0] if len(decoded) == 1 else decoded
    if len(known) < len(parts):
        merged["unrecorded_parts"] = len(parts) - len(known)
    merged.update(own)
    merged["parts"] = parts
    return canonical(merged)


def leaves(record_: Mapping[str, Any] | None) -> list[Mapping[str, Any] | None]:
    """The records of the tables a record was made of, down to the jobs that made them: a
    record without ``parts`` is its own leaf; None stands for a part that carries no record."""
    if record_ is None or "parts" not in record_:
        return [record_]
    return [leaf for part in record_["parts"] for leaf in leaves(part)]


def commit_label(record_: Mapping[str, Any] | None) -> str:
    """The commit(s) behind a record, for people: ``<commit>``, ``<commit>-dirty`` where the
    checkout had uncommitted edits, ``unrecorded`` for a part without provenance; the distinct
    labels of all its leaves, sorted, joined by commas."""
    labels = set()
    for leaf in leaves(record_):
        if leaf is None:
            labels.add("unrecorded")
        else:
            commit = str(leaf.get("commit", UNKNOWN))
            labels.add(commit + ("-dirty" if leaf.get("dirty") is True else ""))
    return ",".join(sorted(labels))


def leaf_values(record_: Mapping[str, Any] | None, name: str) -> list[str]:
    """The distinct values of field ``name`` over the leaves of a record, sorted, as text
    (``none`` where a leaf has no value, ``unrecorded`` for a leaf without provenance)."""
    found = set()
    for leaf in leaves(record_):
        value = "unrecorded" if leaf is None else leaf.get(name)
        found.add("none" if value is None else str(value))
    return sorted(found)
