"""Progress reporting: a tqdm bar on a terminal, a plain line every few seconds in a job log.

Every long loop of the package reports through :func:`progress_bar`. Where the stream (stderr by
default) is a terminal or a Jupyter kernel it draws the usual tqdm bar. Anywhere else (a job log:
the workflow sends stderr to ``data/logs/...``) it writes one plain line at most every
``interval`` seconds and one at the end, with no carriage return::

    elastic_net: train 40/200 epochs (20%) 12.3 s, active=4

``enabled=False`` (the settings' ``progress: false``) writes nothing. Progress output goes to the
stream only and never into a table.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, Generic, TypeVar

__all__ = ["LOG_INTERVAL_S", "ProgressBar", "progress_bar"]

LOG_INTERVAL_S = 5.0  # at most one log line per this many seconds (plus the final line)

_T = TypeVar("_T")
_clock = time.monotonic  # module-level so that tests can drive the throttle without sleeping


def progress_bar(
    iterable: Iterable[_T] | None = None,
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    enabled: bool = True,
    leave: bool = False,
    stream: IO[str] | None = None,
    interval: float = LOG_INTERVAL_S,
) -> ProgressBar[_T]:
    """A progress reporter over ``iterable`` (or driven by ``update()`` when it is None).

    ``desc`` names the loop (``"<analysis>: <stage>"``), ``unit`` its steps (``"epochs"``);
    ``total`` defaults to ``len(iterable)``. ``leave`` keeps a terminal bar after the loop.
    ``stream`` defaults to the current ``sys.stderr``; ``interval`` is the least number of
    seconds between two log lines.
    """
    return ProgressBar(iterable, desc, total, unit, enabled, leave, stream, interval)


class ProgressBar(Generic[_T]):
    """Iterate over it, or call :meth:`update` per step and :meth:`close` at the end.

    The mode is chosen once, from the stream: ``"bar"`` (tqdm), ``"lines"`` (a log) or ``"off"``.
    ``close`` is idempotent; iteration closes the reporter when the loop ends or is left.
    """

    def __init__(
        self,
        iterable: Iterable[_T] | None,
        desc: str,
        total: int | None,
        unit: str,
        enabled: bool,
        leave: bool,
        stream: IO[str] | None,
        interval: float,
    ):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        if interval < 0:
            raise ValueError(f"progress_bar: interval must be >= 0 seconds, got {interval}")
        self.iterable, self.desc, self.total, self.unit = iterable, desc, total, unit
        self.stream = sys.stderr if stream is None else stream
        self.interval = float(interval)
        self.n = 0
        self.postfix = ""
        self.mode = "off" if not enabled else "bar" if _interactive(self.stream) else "lines"
        self._tqdm: Any = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=total, desc=desc, unit=unit, leave=leave, file=self.stream)
        self._start = self._last = _clock()
        self._closed = self.mode == "off"

    def __iter__(self) -> Iterator[_T]:
        if self.iterable is None:
            raise TypeError(f"progress_bar({self.desc!r}): no iterable given; call update()")
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> ProgressBar[_T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Count ``n`` more steps; ``postfix`` (``active=3``) is shown after the count."""
        if self._closed:
            return
        self.n += n
        if postfix:
            self.postfix = ", ".join(f"{key}={value}" for key, value in postfix.items())
        if self.mode == "bar":
            if postfix:
                self._tqdm.set_postfix(postfix, refresh=False)
            self._tqdm.update(n)
            return
        now = _clock()
        if now - self._last >= self.interval:
            self._last = now
            self._write(now)

    def close(self) -> None:
        """End the loop: close the bar, or write the final log line (once)."""
        if self._closed:
            return
        self._closed = True
        if self.mode == "bar":
            self._tqdm.close()
        else:
            self._write(_clock())

    def line(self, now: float | None = None) -> str:
        """The log line for the current state, e.g. ``train 40/200 epochs (20%) 12.3 s``."""
        elapsed = (_clock() if now is None else now) - self._start
        if self.total:
            count = f"{self.n}/{self.total} {self.unit} ({100 * self.n // self.total}%)"
        else:
            count = f"{self.n} {self.unit}"
        text = f"{self.desc} {count} {elapsed:.1f} s"
        return f"{text}, {self.postfix}" if self.postfix else text

    def _write(self, now: float) -> None:
        self.stream.write(self.line(now) + "\n")
        self.stream.flush()


def _interactive(stream: IO[str]) -> bool:
    """A terminal, or a Jupyter kernel's stream (tqdm.auto draws a widget there)."""
    if type(stream).__module__.startswith("ipykernel"):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False
