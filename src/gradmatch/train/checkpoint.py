"""Resumable training-chunk jobs: the whole state of a job, saved atomically, checked on load.

A job (one ``gradmatch <analysis> --chunk K --state PATH`` run) keeps its progress in named
sections: ``train`` (the trainer's loop state after an epoch, :func:`gradmatch.train.trainer.
train_batched`) and ``fits`` (the rows of the members already matched, :func:`resumable_rows`).
Every random generator is part of it: the trainer saves each member's data-order and dropout
generator, and every section saves the global torch generators (CPU and CUDA), so a
resumed job draws exactly the numbers the uninterrupted job would have drawn.

When it is saved: at the end of an epoch or of a member's fit once ``minutes`` have passed since
the last save, when training ends, and when the process receives SIGTERM or SIGUSR1 (what SLURM
sends at a time limit or a preemption). A signal during training is acted on at the end of the
running epoch (the only point where the state is whole); a signal during a member's fit stops
that fit at once, and the member is redone from scratch on resume (its fit is deterministic).
After a signal-triggered save :class:`Preempted` propagates and the CLI exits with
:data:`EXIT_PREEMPTED` (75, ``EX_TEMPFAIL``: rerun the same job to resume).

The file is one JSON header line, then the ``torch.save`` payload (read back with
``weights_only=True``: tensors and plain values only, never arbitrary objects). The header names
the job (analysis, chunk, sha256 of the canonical settings JSON, resolved device), the format
version and the payload's sha256. A truncated, unreadable or foreign file (other job, settings,
device or version) is ignored with a message naming it and why; the job then starts afresh and
overwrites it at its next save. The job's owner removes the file after success
(:meth:`Checkpoint.remove`).

Test hook: ``GRADMATCH_SIGNAL_AT=<SIGNAL>:<section>:<index>`` (e.g. ``SIGTERM:train:3``,
``SIGUSR1:fits:1``, ``SIGKILL:train:3``) makes the process send itself that signal when
``section`` reaches ``index`` (the start of epoch ``index``; the start of member ``index``'s
fit), so that tests interrupt a job at a known point.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradmatch.io import atomic_path

FORMAT = "gradmatch-checkpoint"
FORMAT_VERSION = 1
EXIT_PREEMPTED = 75  # sysexits EX_TEMPFAIL: the state is saved, rerun the job to resume
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
TEST_HOOK = "GRADMATCH_SIGNAL_AT"


class Preempted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """The job saved its state after a signal and must stop (a BaseException, so that no
    ``except Exception`` inside a fit swallows it)."""

    def __init__(self, signum: int, path: Path, where: str) -> None:
        self.signum, self.path, self.where = signum, path, where
        super().__init__(
            f"stopped by {signal.Signals(signum).name}; state saved to {path} ({where}); "
            "rerun the same job to resume"
        )


class Checkpoint:
    """The resumable state of one job at ``path``; use as a context manager around the job.

    Entering loads a valid state (or reports why a file is ignored) and installs the SIGTERM /
    SIGUSR1 handlers (main thread only); leaving restores the previous handlers.
    ``minutes`` is the least time between two periodic saves.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        analysis: str,
        chunk: int | None,
        settings_json: str,
        device: str,
        minutes: float,
    ) -> None:
        if not minutes > 0:
            raise ValueError(f"checkpoint_minutes: must be > 0, got {minutes}")
        self.path = Path(path)
        self.job = {
            "analysis": analysis,
            "chunk": chunk,
            "settings_sha256": hashlib.sha256(settings_json.encode()).hexdigest(),
            "device": device,
        }
        self.minutes = float(minutes)
        self.sections: dict[str, Any] = {}
        self.signal: int | None = None
        self._interruptible = False
        self._last_save = time.monotonic()
        self._previous: dict[int, Any] = {}

    # ---- context: load and signal handlers ----------------------------------------------------

    def __enter__(self) -> Checkpoint:
        self.sections = self._load()
        self._last_save = time.monotonic()
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _on_signal(self, signum, frame) -> None:
        self.signal = signum
        _say(f"received {signal.Signals(signum).name}: saving the state to {self.path}")
        if self._interruptible:
            raise Preempted(signum, self.path, "interrupted a member's fit")

    # ---- what the job calls -------------------------------------------------------------------

    def resumed(self, section: str) -> Any:
        """The saved state of ``section`` (None when the job starts afresh there)."""
        return self.sections.get(section)

    def reached(self, section: str, index: int) -> None:
        """Mark that ``section`` reached step ``index`` (fires the test hook, see module doc)."""
        hook = os.environ.get(TEST_HOOK)
        if not hook:
            return
        name, at_section, at_index = hook.split(":")
        if (at_section, int(at_index)) == (section, index):
            os.kill(os.getpid(), signal.Signals[name])

    def progress(
        self, section: str, make_state: Callable[[], Any], where: str, *, force: bool = False
    ) -> None:
        """Save ``make_state()`` as ``section`` when due (a signal, ``minutes`` passed, or
        ``force``); after a signal, raise :class:`Preempted` once saved."""
        due = time.monotonic() - self._last_save >= self.minutes * 60
        if self.signal is None and not due and not force:
            return
        self.save(section, make_state(), where)
        if self.signal is not None:
            raise Preempted(self.signal, self.path, where)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Inside, a signal raises :class:`Preempted` at once (for work that is redone whole)."""
        if self.signal is not None:
            raise Preempted(self.signal, self.path, "before a member's fit")
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False

    def save(self, section: str, state: Any, where: str) -> None:
        """Write every section, ``section`` replaced by ``state``, atomically (temp + fsync +
        rename)."""
        self.sections[section] = state
        buffer = io.BytesIO()
        torch.save(self.sections, buffer)
        payload = buffer.getvalue()
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            **self.job,
            "where": where,
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
            "payload_bytes": len(payload),
        }
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(json.dumps(header, sort_keys=True).encode() + b"\n")
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
        _fsync_folder(self.path.parent)
        self._last_save = time.monotonic()

    def remove(self) -> None:
        """Delete the state file (after the job's outputs are written)."""
        self.path.unlink(missing_ok=True)

    # ---- loading ------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            header, payload = self._read()
        except ValueError as reason:
            _say(f"ignoring the state file {self.path}: {reason}; starting from scratch")
            return {}
        _say(f"resuming from the state file {self.path} ({header['where']})")
        return payload

    def _read(self) -> tuple[dict, dict]:
        """The header and payload of a valid state of this job; ValueError says why not."""
        raw = self.path.read_bytes()
        line, newline, payload = raw.partition(b"\n")
        try:
            header = json.loads(line) if newline else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError("not a gradmatch state file (unreadable header)")
        if header.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"format version {header.get('version')}, this gradmatch reads {FORMAT_VERSION}"
            )
        for key, expected in self.job.items():
            if header.get(key) != expected:
                raise ValueError(
                    f"written for another job ({key} {header.get(key)!r}, this job has "
                    f"{expected!r})"
                )
        if len(payload) != header.get("payload_bytes"):
            raise ValueError(
                f"truncated ({len(payload)} of {header.get('payload_bytes')} payload bytes)"
            )
        if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
            raise ValueError("damaged (payload sha256 differs from its header)")
        try:
            sections = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except Exception as error:  # any unpickling failure means: do not trust it
            raise ValueError(f"unreadable payload ({type(error).__name__}: {error})") from None
        if not isinstance(sections, dict):
            raise ValueError("unreadable payload (not a dict of sections)")
        return header, sections

    def ignore(self, section: str, reason: str) -> None:
        """Drop a saved section that does not fit this job (reported; the work is redone)."""
        _say(f"ignoring section {section!r} of the state file {self.path}: {reason}")
        self.sections.pop(section, None)


# ---- generators -------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """The global torch generator states: CPU and every initialised CUDA device. (numpy's global
    generator is not saved: gradmatch draws from numpy only through seeded ``Generator``s.)"""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- resumable member loops -------------------------------------------------------------------


def resumable_rows(
    checkpoint: Checkpoint | None,
    section: str,
    count: int,
    make_row: Callable[[int], dict],
    rows_iter: Callable[[range], Any] = iter,
) -> list[dict]:
    """``[make_row(i) for i in range(count)]``, resumable: the rows done so far and the global
    generators at the start of the next member are saved in ``section`` (see module doc).

    ``rows_iter`` wraps the range of members still to do (e.g. a progress bar).
    """
    saved = None if checkpoint is None else checkpoint.resumed(section)
    rows = [] if saved is None else list(saved["rows"])
    if saved is not None:
        set_rng_state(saved["rng"])
    for index in rows_iter(range(len(rows), count)):
        if checkpoint is None:
            rows.append(make_row(index))
            continue
        start = rng_state()
        try:
            with checkpoint.interruptible():
                checkpoint.reached(section, index)
                row = make_row(index)
        except Preempted:
            checkpoint.save(section, {"rows": rows, "rng": start}, _done(section, rows, count))
            raise
        rows.append(_plain(row))
        checkpoint.progress(
            section, lambda: {"rows": list(rows), "rng": rng_state()}, _done(section, rows, count)
        )
    return rows


def _done(section: str, rows: list, count: int) -> str:
    return f"{section}: {len(rows)} of {count} members done"


def _plain(row: dict) -> dict:
    """Numpy scalars as Python scalars (what a weights-only load accepts; same values)."""
    return {
        key: value.item() if isinstance(value, np.generic) else value for key, value in row.items()
    }


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _say(message: str) -> None:
    print(f"gradmatch: {message}", file=sys.stderr, flush=True)
