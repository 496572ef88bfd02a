"""Time a few real steps of every phase of a job, by calling the experiment's own functions.

For each timed analysis, :func:`measure` returns the seconds of one unit of every phase of its
:class:`gradmatch.cost.Plan` on the device present, at the job's exact sizes (members, widths,
batch sizes, rows), from short runs of the code the job runs:

- training: the experiment's training function (``train_chunk`` / ``train_width``) with all
  members of the chunk, a cap of :data:`PROBE_EPOCHS` epochs, and the training split cut (or
  repeated) to s minibatches (s = 1 and s = S, S steps lasting about :data:`TARGET_S`, more
  than an epoch has on the digits) and the evaluation sets cut to few rows or repeated to
  many (:data:`MANY_ROWS`). The first epoch is a warm-up; the :func:`typical` later epoch time T
  solves T = s·t_step + e·t_row + t_epoch (e evaluated rows per epoch) over the runs;
- fits: the experiment's matching function (``member_rows`` / ``_match_members``) on one
  member at trained shape, the Adam fit capped at :data:`FIT_EPOCHS` epochs, :data:`REPEATS`
  times. The projected minibatch targets it asks for (``train.minibatch_targets``) are timed
  from inside (:class:`_TimedTargets`): the one-off projection pass, each epoch's targets (the
  monitored batch's backward) and the Adam steps between two epochs' targets, each the least
  over the runs, then rescaled to the seconds per fit epoch of whole calls at FIT_EPOCHS and
  more epochs (:func:`_stepped`); the member's fixed work is the rest of its call;
- probes: ``probe_model`` / ``drift_trace`` at 1 and 1 + m steps after a warm-up call, each the
  :func:`typical` of :data:`REPEATS` runs: the difference is m steps, the rest the member's
  fixed work.

A timed difference counts only when it exceeds :data:`NOISE_FACTOR` times the noise (the
:func:`spread` of the repeats of its two ends): probes grow m until it does
(:func:`resolved_steps`, an error at :data:`MAX_REPEAT`); a training probe whose difference
stays within the noise takes the noise as its bound (:func:`bounded_runs`, an upper bound).
m and S grow until a timed difference lasts about :data:`TARGET_S` seconds (small steps are
timed in bulk).

With ``dataset: mnist`` the images are random tensors of MNIST's shapes (:func:`mnist_stand_in`):
nothing is read or downloaded, and a step costs the same.
"""

from __future__ import annotations

import contextlib
import functools
import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from gradmatch import cost, experiments
from gradmatch.data import images, normalization
from gradmatch.settings import DATASET_PIXELS, DATASET_ROWS

PROBE_EPOCHS = 4  # epochs per training probe run: one warm-up, three timed
TARGET_S = 0.3  # seconds a timed difference should last at least
MAX_REPEAT = 4096  # at most this many steps (epochs) in one timed difference
REPEATS = 3  # each timed call is repeated this many times (typical: their median)
NOISE_FACTOR = 3.0  # a timed difference counts when it exceeds this many times the noise
FIT_EPOCHS = 3  # Adam-fit epochs of a timed member (its epochs' targets and steps timed apart)
FEW_ROWS = 16  # evaluation rows of the runs that leave evaluation out (almost)
MANY_ROWS = 8192  # evaluation rows of the run that times evaluation (a small split repeated)


@contextlib.contextmanager
def mnist_stand_in() -> Iterator[None]:
    """Within the block, MNIST is random tensors of its shapes: float32 pixels in [0, 1] (n, 784),
    int64 labels in 0..9 (60,000 train, 10,000 test rows); digits loads as usual."""
    real = images.load_images

    def load(name, split, root=None):
        if name != "mnist":
            return real(name, split, root)
        rows = DATASET_ROWS["mnist"][split]
        generator = torch.Generator().manual_seed(0 if split == "train" else 1)
        pixels = torch.rand(rows, DATASET_PIXELS["mnist"], generator=generator)
        return pixels, torch.randint(0, 10, (rows,), generator=generator)

    images.load_images = normalization.load_images = load
    try:
        yield
    finally:
        images.load_images = normalization.load_images = real


# What a job's process does besides its steps, run in a fresh interpreter by start_seconds:
# the CLI's imports, the first load of the dataset (its reader's imports: scikit-learn for the
# digits; MNIST through the stand-in) and one parquet table written with its provenance (git).
_START_SCRIPT = """
import sys, tempfile
import pandas
import gradmatch.cli, gradmatch.experiments, gradmatch.train
from gradmatch import io
from gradmatch.cost.timing import mnist_stand_in
from gradmatch.data import images
if sys.argv[1]:
    with mnist_stand_in():
        images.load_images(sys.argv[1], "train")
with tempfile.TemporaryDirectory() as folder:
    io.write_parquet(pandas.DataFrame({"x": [0]}), folder + "/start.parquet")
"""
START_RUNS = 3  # the typical of this many fresh processes


@functools.cache
def start_seconds(dataset: str | None = None) -> float:
    """Seconds a job spends outside its steps, measured once per ``dataset`` (None: a job that
    reads none) as the :func:`typical` of START_RUNS fresh interpreters running
    :data:`_START_SCRIPT`:
    its imports (torch, pandas, pyarrow, the experiments), the first load of ``dataset`` and
    a table written with its provenance record."""
    runs = []
    for _ in range(START_RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", _START_SCRIPT, dataset or ""], check=True)
        runs.append(time.perf_counter() - started)
    return typical(runs)


class _Clock:
    """Wall time that waits for the device (CUDA work is asynchronous)."""

    def __init__(self, device: str) -> None:
        self.cuda = str(device).startswith("cuda")

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def time(self, work: Callable[[], object]) -> tuple[float, object]:
        started = self()
        result = work()
        return self() - started, result


def _repeat(seconds_one: float) -> int:
    """How many steps make a timed difference last about TARGET_S."""
    if seconds_one <= 0:
        return MAX_REPEAT
    return int(min(MAX_REPEAT, max(1, math.ceil(TARGET_S / seconds_one))))


def _solve(runs: list[tuple[float, ...]], seconds: list[float]) -> np.ndarray:
    """Least squares of seconds = runs · x, clipped at 0 (noise can give a small negative)."""
    solution, *_ = np.linalg.lstsq(np.asarray(runs, float), np.asarray(seconds, float), rcond=None)
    return np.clip(solution, 0.0, None)


def typical(seconds: list[float]) -> float:
    """The timing a long job runs at: the median of repeated timings. Not the least: a job of
    minutes runs at the machine's usual speed, not its best moment (on this project's shared
    2-core VM the least of the repeats projected jobs 15–35 % short); the median still
    ignores one repeat slowed by other work."""
    return float(np.median(seconds))


def _epoch_time(clock: _Clock, train: Callable, noise: list[float] | None = None):
    """The :func:`typical` seconds of the epochs after the first of ``train(on_epoch)``, and
    its result; their :func:`noise` is appended to ``noise``."""
    stamps: list[float] = []
    result = train(lambda epoch, metrics: stamps.append(clock()))
    if len(stamps) < 2:
        raise RuntimeError(f"cost: a training probe ran {len(stamps)} epochs; need at least 2")
    epochs = np.diff(stamps).tolist()
    if noise is not None:
        noise.append(spread(epochs))
    return typical(epochs), result


def spread(seconds: list[float]) -> float:
    """The noise of the least of repeated timings: the second least minus the least (one slow
    repeat, the machine busy for a moment, does not count; 0 for a single timing)."""
    ordered = sorted(seconds)
    return ordered[1] - ordered[0] if len(ordered) > 1 else 0.0


def bounded_runs(runs: list[tuple[float, ...]], noise: float) -> list[tuple[float, ...]]:
    """The probe runs (…, seconds) with every later run lasting at least NOISE_FACTOR · noise
    more than the first: a difference within the noise is not measured, and its bound (an
    upper bound of the extra steps or rows) is priced instead of a noisy number."""
    floor = runs[0][-1] + NOISE_FACTOR * noise
    return [runs[0], *((*run[:-1], max(run[-1], floor)) for run in runs[1:])]


def resolved_steps(base: list[float], more: list[float], m: int) -> float | None:
    """Seconds per extra unit from the repeats of ``work(1)`` (``base``) and ``work(1 + m)``
    (``more``): the difference of their :func:`typical` values over m, when it lasts TARGET_S
    and exceeds NOISE_FACTOR times the :func:`spread` of either set of repeats; else None."""
    difference = typical(more) - typical(base)
    noise = max(spread(base), spread(more))
    if difference < max(TARGET_S, NOISE_FACTOR * noise):
        return None
    return difference / m


def _stepped(clock: _Clock, work: Callable[[int], object], fixed_units: int = 1):
    """(seconds per extra unit, seconds of ``work(fixed_units)`` minus its units) from a warm-up
    call, REPEATS runs of ``work(fixed_units)`` and of ``work(fixed_units + m)``, m grown until
    :func:`resolved_steps` accepts the difference; an error when MAX_REPEAT units do not."""

    def runs(units: int) -> list[float]:
        return [clock.time(lambda: work(units))[0] for _ in range(REPEATS)]

    clock.time(lambda: work(fixed_units))
    base = runs(fixed_units)
    m = _repeat(min(base))
    while True:
        more = runs(fixed_units + m)
        per_unit = resolved_steps(base, more, m)
        if per_unit is not None:
            return per_unit, max(typical(base) - fixed_units * per_unit, 0.0)
        if m >= MAX_REPEAT:
            raise RuntimeError(
                f"cost: {MAX_REPEAT} extra steps did not rise above the noise of this machine "
                f"(runs of {base} and {more} s); time on an idle machine"
            )
        rough = max((typical(more) - typical(base)) / m, 0.0)
        m = min(MAX_REPEAT, 16 * m, max(2 * m, _repeat(rough)))


class _TimedTargets:
    """The projected minibatch targets of one fit (``train.minibatch_targets``), timed from
    inside: the projection pass (``project``), every epoch's targets and the steps of the fit
    between two epochs' targets, appended to ``record``."""

    def __init__(self, targets, clock: _Clock, record: dict[str, list[float]]) -> None:
        if not hasattr(targets, "project"):
            raise RuntimeError(
                "cost: the Adam fit asked for backward targets; the cost plans price projected "
                'ones (minibatch_targets(..., targets="projected"))'
            )
        self.targets, self.clock, self.record = targets, clock, record

    def project(self, design):
        seconds, stream = self.clock.time(lambda: self.targets.project(design))
        self.record["projection"].append(seconds)
        returned: list[float] = []

        def epoch_targets(epoch: int):
            if returned:
                self.record["steps"].append(self.clock() - returned[-1])
            seconds, result = self.clock.time(lambda: stream(epoch))
            self.record["targets"].append(seconds)
            returned.append(self.clock())
            return result

        return epoch_targets


@contextlib.contextmanager
def timed_fits(clock: _Clock) -> Iterator[dict[str, list[float]]]:
    """Within the block, every ``train.minibatch_targets`` result is a :class:`_TimedTargets`
    recording into the yielded dict (``projection``, ``targets``, ``steps`` seconds)."""
    from gradmatch import train

    record: dict[str, list[float]] = {"projection": [], "targets": [], "steps": []}
    real = train.minibatch_targets

    def timed(*args, **kwargs):
        return _TimedTargets(real(*args, **kwargs), clock, record)

    train.minibatch_targets = timed
    try:
        yield record
    finally:
        train.minibatch_targets = real


def fit_seconds(
    calls: list[float], records: list[dict], plan: cost.Plan, per_epoch: float | None = None
) -> dict[str, float]:
    """Seconds per unit of ``member_fixed`` and the fit phases of ``plan`` (at one fit epoch,
    one member) from REPEATS timed member calls (``calls``) and their :func:`timed_fits`
    records, each the least over the runs: ``fit_projection`` the projection pass per row,
    ``fit_monitor`` an epoch's targets (plus the steps, with one target per epoch),
    ``fit_step`` the steps between two epochs' targets per step; ``member_fixed`` the rest of
    a call (its epochs' steps counted at the least of them). ``per_epoch`` (the seconds one
    more fit epoch adds to a whole call, :func:`_fit_phases`) rescales ``fit_monitor`` and
    ``fit_step`` to it: the first epochs timed from inside run slower than a long fit's."""
    rows = plan.phase("fit_projection").units / plan.members
    steps = plan.phase("fit_step").units
    for record in records:
        if len(record["projection"]) != 1 or len(record["steps"]) < 1:
            raise RuntimeError(
                f"cost: a timed member ran {len(record['projection'])} projected fits with "
                f"{len(record['targets'])} epochs; expected one fit of {FIT_EPOCHS} epochs"
            )
    projection = min(record["projection"][0] for record in records)
    targets = min(min(record["targets"]) for record in records)
    between = min(min(record["steps"]) for record in records)
    rest = [
        call - sum(record["projection"]) - sum(record["targets"]) - len(record["targets"]) * between
        for call, record in zip(calls, records, strict=True)
    ]
    scale = 1.0 if per_epoch is None or targets + between <= 0 else per_epoch / (targets + between)
    return {
        "member_fixed": max(min(rest), 0.0),
        "fit_projection": projection / rows if rows else 0.0,
        "fit_monitor": scale * (targets + (0.0 if steps else between)),
        "fit_step": scale * between / steps if steps else 0.0,
    }


def _fit_phases(clock: _Clock, member: Callable[[object], object], settings, plan) -> dict:
    """The fit phases of one member: ``member(settings)`` runs its matching (real code) with the
    Adam fit capped at FIT_EPOCHS epochs, REPEATS times (:func:`fit_seconds`), and the seconds
    per fit epoch from whole calls at FIT_EPOCHS and more epochs (:func:`_stepped`); a fit
    without minibatch targets is timed per epoch by :func:`_stepped` alone."""
    if plan.phase("fit_monitor").units == 0:
        fit_epoch, fixed = _stepped(clock, lambda epochs: member(_capped_fit(settings, epochs)))
        return {
            "member_fixed": fixed,
            "fit_projection": 0.0,
            "fit_monitor": 0.0,
            "fit_step": fit_epoch / max(plan.phase("fit_step").units, 1),
        }
    capped = _capped_fit(settings, FIT_EPOCHS)
    calls, records = [], []
    for _ in range(REPEATS):
        with timed_fits(clock) as record:
            calls.append(clock.time(lambda: member(capped))[0])
        records.append(record)
    per_epoch, _ = _stepped(
        clock, lambda epochs: member(_capped_fit(settings, epochs)), fixed_units=FIT_EPOCHS
    )
    return fit_seconds(calls, records, plan, per_epoch)


def _one_epoch(analysis: str, settings, chunk: int, **actual: int) -> cost.Plan:
    return cost.job_plan(analysis, settings, chunk, actual)


def _capped_fit(settings, epochs: int):
    """``settings`` with the Adam fit running exactly ``epochs`` epochs (no early stop)."""
    fit = settings.adam_fit.model_copy(update={"max_epochs": epochs, "patience": 10**9})
    return settings.model_copy(update={"adam_fit": fit})


def _capped_training(settings, key: str = "early_stopping"):
    stopping = settings.early_stopping.model_copy(
        update={"max_epochs": PROBE_EPOCHS, "patience": 10**9}
    )
    return settings.model_copy(update={key: stopping})


def _rows(x: torch.Tensor, y: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``rows`` rows of (x, y), the split repeated when it has fewer: a training step
    or an evaluated row costs the same whatever rows it holds, and a small split (the digits'
    21 minibatches, 270 validation rows) runs too fast to time."""
    index = torch.arange(rows) % len(y)
    return x[index], y[index]


def _train_phases(runs, train_step_rows: bool):
    """Solve the probe runs (s steps, e evaluated rows, epoch seconds) for the three phases."""
    seconds = [run[-1] for run in runs]
    if train_step_rows:
        x = _solve([(s, e, 1.0) for s, e, _ in runs], seconds)
        return {"train_step": x[0], "eval_row": x[1], "train_epoch": x[2]}
    x = _solve([(s, 1.0) for s, _ in runs], seconds)
    return {"train_step": x[0], "train_epoch": x[1]}


# ------------------------------------------------------------------ the analyses


def _dropout(settings, chunk: int, clock: _Clock) -> dict[str, float]:
    from gradmatch.experiments import dropout

    depth, width = dropout.chunk_shape(settings, chunk)
    started = clock()
    data = dropout.load_data(settings)
    load_s = clock() - started
    grid = dropout.members(settings)
    probe = _capped_training(settings)
    batch = settings.batch_size
    X, y = data["train"]
    Xv, yv = data["val"]

    noise: list[float] = []

    def epoch_time(s: int, val_rows: int):
        cut = {
            **data,
            "train": _rows(X, y, s * batch),
            "val": _rows(Xv, yv, val_rows),
        }
        return _epoch_time(
            clock,
            lambda on_epoch: dropout.train_chunk(probe, depth, width, cut, grid, on_epoch),
            noise,
        )

    few, many = min(FEW_ROWS, len(yv)), MANY_ROWS
    epoch_time(1, few)  # a warm-up: the first run of a process is slower in every epoch
    noise.clear()
    one, result = epoch_time(1, few)
    s = max(2, _repeat(one) + 1)  # beyond an epoch's steps: the split repeated
    runs = [(1, few, one), (s, few, epoch_time(s, few)[0]), (1, many, epoch_time(1, many)[0])]
    phases = _train_phases(bounded_runs(runs, max(noise)), True)
    member = grid.iloc[:1].reset_index(drop=True)
    phases.update(
        _fit_phases(
            clock,
            lambda capped: dropout.member_rows(capped, result, data, member),
            settings,
            _one_epoch("dropout", settings, chunk, fit_epochs=1),
        ),
        start=load_s,
    )
    return phases


def _elastic_net(settings, chunk: int, clock: _Clock) -> dict[str, float]:
    from gradmatch.experiments import elastic_net

    settings = settings.model_copy(update={"progress": False})
    cells = elastic_net.grid(settings)[
        chunk * settings.chunk_size : (chunk + 1) * settings.chunk_size
    ]
    started = clock()
    data = elastic_net._stack_data(settings, [seed for _, _, seed in cells])
    load_s = clock() - started
    probe = _capped_training(settings)
    batch = settings.batch_size

    noise: list[float] = []

    def epoch_time(s: int):
        index = torch.arange(s * batch) % data["X_train"].shape[1]  # members stacked in dim 0
        cut = {**data, "X_train": data["X_train"][:, index], "y_train": data["y_train"][:, index]}
        return _epoch_time(
            clock,
            lambda on_epoch: elastic_net.train_chunk(probe, cells, cut, on_epoch=on_epoch),
            noise,
        )

    epoch_time(1)  # a warm-up: the first run of a process is slower in every epoch
    noise.clear()
    one, result = epoch_time(1)
    s = max(2, _repeat(one) + 1)  # beyond an epoch's steps: the split repeated
    phases = _train_phases(bounded_runs([(1, one), (s, epoch_time(s)[0])], max(noise)), False)

    def member(capped):
        return elastic_net._match_members(capped, cells[:1], data, result, chunk)

    if "adam" in settings.fit_methods:
        plan = _one_epoch("elastic_net", settings, chunk, fit_epochs=1)
        phases.update(_fit_phases(clock, member, settings, plan))
    else:
        fixed = min(clock.time(lambda: member(settings))[0] for _ in range(REPEATS))
        phases.update(member_fixed=fixed, fit_projection=0.0, fit_monitor=0.0, fit_step=0.0)
    phases.update(start=load_s)
    return phases


def _igr(settings, chunk: int, clock: _Clock) -> dict[str, float]:
    from gradmatch.experiments import igr

    width = settings.widths[chunk]
    started = clock()
    data = igr.split_data(settings)
    load_s = clock() - started
    probe = settings.model_copy(update={"epochs": PROBE_EPOCHS})
    batch = settings.batch_size
    x, y = data["train"]
    xv, yv = data["val"]
    xt, yt = data["test"]

    def epoch_time(s: int, rows: int):
        cut = {
            **data,
            "train": _rows(x, y, s * batch),
            "val": _rows(xv, yv, rows),
            "test": _rows(xt, yt, rows),
        }
        seconds, result = _epoch_time(
            clock, lambda on_epoch: igr.train_width(probe, width, cut, on_epoch), noise
        )
        evaluated = len(cut["train"][1]) + len(cut["val"][1]) + len(cut["test"][1])
        return (s, evaluated, seconds), result

    few, many = min(FEW_ROWS, len(yv), len(yt)), MANY_ROWS
    noise: list[float] = []
    epoch_time(1, few)  # a warm-up: the first run of a process is slower in every epoch
    noise.clear()
    first, result = epoch_time(1, few)
    s = max(2, _repeat(first[-1]) + 1)  # beyond an epoch's steps: the split repeated
    runs = [first, epoch_time(s, few)[0], epoch_time(1, many)[0]]
    phases = _train_phases(bounded_runs(runs, max(noise)), True)
    model = result.member(0, "best")
    lr = settings.learning_rates[0]

    def probe_run(probe_steps: int):
        capped = settings.model_copy(update={"probe_steps": probe_steps})
        return igr.probe_model(capped, model, data["probe"], lr)

    probe_step, fixed = _stepped(clock, probe_run)
    phases.update(member_fixed=fixed, probe_step=probe_step, start=load_s)
    return phases


def _igr_long_horizon(settings, chunk: int, clock: _Clock) -> dict[str, float]:
    from gradmatch.experiments import igr_long_horizon as lh
    from gradmatch.train import resolve_device

    device = resolve_device(settings.device)
    phases: dict[str, float] = {"start": 0.0}
    seen = set()
    cases = lh.cases(settings, device)
    while True:
        started = clock()
        labels, problem, lr, _ = next(cases, (None, None, None, None))
        built = clock() - started
        if labels is None:
            break
        kind = labels["model"]
        if kind in seen:
            continue
        seen.add(kind)
        step, fixed = _stepped(
            clock,
            lambda steps, problem=problem, lr=lr: lh.drift_trace(
                problem, lr, steps, settings.rk4_substeps
            ),
        )
        phases[f"{kind}_step"] = step
        phases[f"{kind}_case"] = fixed + built
    for kind in ("linear", "mlp"):  # a kind without a case has no units
        phases.setdefault(f"{kind}_step", 0.0)
        phases.setdefault(f"{kind}_case", 0.0)
    return phases


MEASURES = {
    "dropout": _dropout,
    "elastic_net": _elastic_net,
    "igr": _igr,
    "igr_long_horizon": _igr_long_horizon,
}


def measure(analysis: str, settings, chunk: int) -> dict[str, float]:
    """Seconds per unit of every phase of the job (and ``start``: its data loading), measured
    on ``settings.device``; MNIST is stood in for by random tensors of its shapes."""
    if analysis not in MEASURES:
        raise ValueError(f"cost: no timing for {analysis!r}; timed: {sorted(MEASURES)}")
    if not experiments.is_chunked(analysis) and chunk != 0:
        raise ValueError(f"{analysis}: is not chunked; its only job is chunk 0, got {chunk}")
    from gradmatch.train import resolve_device

    clock = _Clock(str(resolve_device(settings.device)))
    with mnist_stand_in():
        seconds = MEASURES[analysis](settings, chunk, clock)
    plan = cost.job_plan(analysis, settings, chunk)
    missing = sorted({phase.name for phase in plan.phases} - set(seconds))
    if missing:
        raise RuntimeError(f"cost: the timing of {analysis} left out phases {missing}")
    return {name: float(value) for name, value in seconds.items()}
