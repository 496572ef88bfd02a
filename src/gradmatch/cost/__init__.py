"""The cost model of the training rules: step counts × seconds per step (no torch here).

Each timed analysis (a module of :mod:`gradmatch.experiments` with ``cost_plan``) says what one
of its jobs does, as a :class:`Plan`: how many members it trains at once, their size, and its
:class:`Phase` s — each a kind of step (a stacked training step, one evaluated row, one step
of the Adam fit, one IGR probe step, ...), how many times the job runs it at the config's
*maximum* epochs, and the floating-point operations of one step. The experiment owns these
facts, next to the code that runs them.

Two ways to price a plan:

- ``gradmatch cost`` (:mod:`gradmatch.cli.cost`, timing in :mod:`gradmatch.cost.timing`) times
  a few real steps of every phase at the job's exact sizes on the device present, by calling
  the experiment's own functions with a small epoch cap, and multiplies by the units;
- the workflow, which cannot time anything while it parses the DAG, prices each phase from the
  committed calibration ``calibration.json`` (:func:`phase_seconds`): per device and phase,
  seconds = ``overhead_s`` + ``s_per_flop`` × flops of one step. ``gradmatch cost --calibrate``
  fits these two numbers per phase to its measurements and writes the device's entry.

Early stopping is not predicted: a plan counts the maximum epochs (``early_stopping.max_epochs``,
``adam_fit.max_epochs``) and every member probed, so its projection is an upper bound. For
comparing with a finished run, ``cost_plan(settings, chunk, actual)`` takes the epochs that
actually ran (keys named by each analysis).

A rule's runtime (:func:`runtime_minutes`) is ``max(RESOURCES.runtime, ⌈margin · projection /
60⌉) · attempt`` with the margin of the calibration entry, so a retry gets twice the time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from gradmatch.tables import Table, columns

CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration.json"
PRECISIONS = ("float32", "float64")


@dataclass(frozen=True)
class Phase:
    """One kind of step of a job: ``units`` runs (at the maximum epochs) of ``flops`` each.

    ``name`` is unique within the analysis (the calibration key is ``<analysis>.<name>``);
    ``precision`` picks the device throughput of the estimate (float64 is slow on most GPUs);
    ``step`` is False for a unit that is not a step of its own (an evaluated row), which has no
    launch cost on a GPU; ``like`` names a phase of the same analysis doing the same arithmetic
    at other sizes, whose seconds per flop the calibration gives this one where its own
    measured sizes are too close to fit a slope (:func:`fit_phases`).
    """

    name: str
    units: int
    flops: float
    precision: str = "float32"
    step: bool = True
    like: str = ""

    def __post_init__(self) -> None:
        if self.units < 0:
            raise ValueError(f"phase {self.name!r}: units must be >= 0, got {self.units}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"phase {self.name!r}: precision {self.precision!r} not in {PRECISIONS}"
            )


@dataclass(frozen=True)
class Plan:
    """What one job does: ``members`` trained together, ``params`` per member, its phases."""

    members: int
    params: int
    phases: tuple[Phase, ...]

    def phase(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(f"no phase {name!r}; the plan has {[p.name for p in self.phases]}")


def mlp_macs(sizes: tuple[int, ...]) -> int:
    """Multiply–adds of one row through an MLP with layer widths ``sizes`` (in, hidden…, out)."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def training_flops(macs: int, rows: int, members: int = 1) -> float:
    """A forward and backward pass: 6 flops per multiply–add and row (2 forward, 4 backward)."""
    return 6.0 * macs * rows * members


def forward_flops(macs: int, rows: int, members: int = 1) -> float:
    """A forward pass: 2 flops per multiply–add and row."""
    return 2.0 * macs * rows * members


def training_phases(epochs: int, steps: int, macs: int, batch_size: int, members: int) -> tuple:
    """``train_step`` (``steps`` minibatches of ``batch_size`` rows per epoch, all members
    stacked) and ``train_epoch`` (the fixed cost of an epoch), at ``epochs`` epochs."""
    return (
        Phase("train_step", epochs * steps, training_flops(macs, batch_size, members)),
        Phase("train_epoch", epochs, 0.0),
    )


def adam_fit_phases(
    members: int, n_train: int, macs: int, params: int, fit, fit_epochs: int, columns: int,
    full_batches: bool,
) -> tuple:  # fmt: skip
    """The authors' Adam fit as :func:`gradmatch.train.matching.minibatch_targets` runs it
    with projected targets, ``fit`` the ``AdamFit`` block, ``fit_epochs`` over all members:

    - ``fit_projection``: per member and training row, one float64 jvp per design column
      (``columns``: 1 for ridge, 2 for elastic net); with one batch holding every row, the
      one full-data target instead (a float32 backward pass per row);
    - ``fit_monitor``: per fit epoch, the backward pass of the monitored (last) minibatch, of
      n mod b rows when the partial last batch is kept, and the k-vector step (≈ 10 flops per
      parameter);
    - ``fit_step``: the fixed cost of every other minibatch target's step.
    ``full_batches``: the partial last batch is dropped (its step count is ⌊n/b⌋, else ⌈n/b⌉).
    Without a minibatch size (``fit.batch_size`` None) each epoch is one full-target step.
    """
    batched = fit.batch_size is not None
    minibatch = batched and fit.batch_size < n_train
    steps = (n_train // fit.batch_size if full_batches else -(-n_train // fit.batch_size)) if (
        minibatch
    ) else 1  # fmt: skip
    projection = columns * 2 * forward_flops(macs, 1) if minibatch else training_flops(macs, 1)
    last_rows = 0  # the monitored batch: the last one, partial unless dropped
    if minibatch:
        last_rows = fit.batch_size if full_batches else n_train % fit.batch_size or fit.batch_size
    monitor = 10.0 * params + training_flops(macs, last_rows)
    return (
        Phase(
            "fit_projection",
            members * n_train if batched else 0,
            projection,
            precision="float64" if minibatch else "float32",
            step=False,
            like="train_step",
        ),
        Phase("fit_monitor", fit_epochs if batched else 0, monitor, like="train_step"),
        Phase("fit_step", fit_epochs * (steps - 1) if batched else fit_epochs, 0.0),
    )


def actual_count(actual: dict[str, int] | None, key: str, default: int, analysis: str) -> int:
    """``actual[key]`` when given (the epochs a finished run used), else ``default``."""
    if actual is None or key not in actual:
        return int(default)
    value = int(actual[key])
    if value < 0:
        raise ValueError(f"{analysis}: cost_plan actual[{key!r}] must be >= 0, got {value}")
    return value


def timed_analyses() -> tuple[str, ...]:
    """The analyses with a cost plan (the training rules), sorted."""
    from gradmatch import experiments

    return tuple(
        name for name in experiments.names() if hasattr(experiments.module(name), "cost_plan")
    )


def job_plan(analysis: str, settings, chunk: int, actual: dict[str, int] | None = None) -> Plan:
    """The analysis's own ``cost_plan`` for one job (chunk 0 of an unchunked analysis)."""
    from gradmatch import experiments

    experiment = experiments.module(analysis)
    if not hasattr(experiment, "cost_plan"):
        raise ValueError(f"{analysis}: has no cost_plan; timed analyses: {list(timed_analyses())}")
    if experiments.is_chunked(analysis):
        return experiment.cost_plan(settings, chunk, actual)
    if chunk != 0:
        raise ValueError(f"{analysis}: is not chunked; its only job is chunk 0, got {chunk}")
    return experiment.cost_plan(settings, actual)


# ------------------------------------------------------------------ the calibration


@cache
def calibration(path: str | None = None) -> dict[str, Any]:
    """The calibration file (default: the committed ``calibration.json``), by device."""
    file = Path(path) if path else CALIBRATION_FILE
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"cost calibration {file} is missing; write it with `gradmatch cost --calibrate`"
        ) from None
    except json.JSONDecodeError as error:
        raise ValueError(
            f"cost calibration {file} is not valid JSON ({error}); rewrite it "
            "with `gradmatch cost --calibrate`"
        ) from None
    return data


def calibration_device(settings_device: str, gpu: int) -> str:
    """The calibration entry a job is priced with: ``cpu`` or ``cuda`` from the config's
    ``device``; ``auto`` means ``cuda`` for a GPU rule (SLURM places it on a GPU node, where
    ``auto`` picks CUDA) and ``cpu`` otherwise."""
    if settings_device in ("cpu", "cuda"):
        return settings_device
    return "cuda" if gpu >= 1 else "cpu"


def _entry(device: str, path: str | None) -> dict[str, Any]:
    data = calibration(path)
    if device not in data:
        raise ValueError(
            f"cost calibration has no device {device!r} (has {sorted(data)}); measure it there "
            f"with `gradmatch cost --calibrate --device {device}`"
        )
    return data[device]


def phase_seconds(analysis: str, phase: Phase, device: str, path: str | None = None) -> float:
    """Seconds of one unit of ``phase`` on ``device`` by the calibration: a + b · flops."""
    entry = _entry(device, path)
    key = f"{analysis}.{phase.name}"
    if key not in entry["phases"]:
        raise ValueError(
            f"cost calibration for {device!r} has no phase {key!r}; recalibrate with "
            f"`gradmatch cost --calibrate --device {device}` after adding a phase"
        )
    fit = entry["phases"][key]
    return float(fit["overhead_s"]) + float(fit["s_per_flop"]) * phase.flops


def projected_seconds(analysis: str, plan: Plan, device: str, path: str | None = None) -> float:
    """The calibration's projection of one job: job start + Σ units × seconds per unit."""
    start = float(_entry(device, path)["job_start_s"])
    return start + sum(
        phase.units * phase_seconds(analysis, phase, device, path) for phase in plan.phases
    )


def runtime_minutes(
    analysis: str, settings, chunk: int, attempt: int = 1, path: str | None = None
) -> int:
    """The runtime a rule declares for one job: max(RESOURCES.runtime, ⌈margin · projection /
    60⌉) · attempt, with the projection and the margin of the job's calibration device."""
    from gradmatch import experiments

    resources = experiments.module(analysis).RESOURCES
    device = calibration_device(settings.device, resources.gpu)
    margin = float(_entry(device, path)["margin"])
    projection = projected_seconds(analysis, job_plan(analysis, settings, chunk), device, path)
    minutes = max(resources.runtime, math.ceil(margin * projection / 60.0))
    return int(minutes * max(int(attempt), 1))


# ------------------------------------------------------------------ fitting a calibration

# The CUDA entry when no GPU has been measured: an estimate for the slurm profile's GPU model
# (NVIDIA L40S, peak 91.6 TFLOP/s float32 and 1.43 TFLOP/s float64 without tensor cores), at
# EFFICIENCY of peak for every phase, each step's fixed cost (launches, Python) CUDA_OVERHEAD
# times the CPU's, and CUDA_START_S more to start a job (CUDA context). Its margin is wider
# than a measured entry's because nothing of it was measured on the GPU.
L40S_PEAK_FLOPS = {"float32": 91.6e12, "float64": 1.43e12}
EFFICIENCY = 0.25
CUDA_OVERHEAD = 2.0
CUDA_START_S = 20.0
CUDA_STEP_S = 2e-4  # the least time of one step on a GPU: its kernel launches and a sync
MEASURED_MARGIN = 1.5
ESTIMATED_MARGIN = 3.0


RESIDUAL_LIMIT = 0.35  # a measured job misfit by more than this fraction counts as a miss
SIGNIFICANT = 0.1  # ... when the misfit moves its job's projection by more than this fraction
SPAN = 10.0  # a phase's own s_per_flop is fitted only when its jobs' flops span this factor


def spans(flops: list[float]) -> bool:
    """Whether the measured flops of a phase span :data:`SPAN` (or include 0 and more), so
    that its own slope can be fitted: a slope from sizes within a few-fold of each other is
    noise, and the paper's sizes are thousands of times larger than the ones measured."""
    positive = [value for value in flops if value > 0]
    if not positive:
        return False
    return len(positive) < len(flops) or max(positive) >= SPAN * min(positive)


def fit_phase(
    flops: list[float], seconds: list[float], name: str = "phase", share=None, s_per_flop=None
) -> dict[str, float]:
    """seconds ≈ overhead_s + s_per_flop · flops over the jobs measured, both ≥ 0, robust to
    a busy machine (Theil–Sen): s_per_flop the median slope between pairs of distinct sizes,
    overhead_s the median of seconds − s_per_flop · flops. Where the flops do not
    :func:`spans` SPAN and ``s_per_flop`` is given (a related phase's, :func:`fit_phases`),
    that is the slope and only the overhead is fitted. Otherwise, with one distinct size all
    time goes to the flops (the larger extrapolation), or to the overhead where the phase has
    no flops.
    A fit that misses more than a quarter of the jobs (any, below four) by more than
    RESIDUAL_LIMIT of their time is rejected with an error naming phase ``name``; with
    ``share`` (per job: the phase's units over the job's projected seconds) a miss counts only
    where it moves the job's projection by more than SIGNIFICANT (a phase of microseconds
    is noisy but costs nothing)."""
    import numpy as np

    f, t = np.asarray(flops, float), np.maximum(np.asarray(seconds, float), 0.0)
    if f.max() <= 0:
        fit = {"overhead_s": float(np.median(t)), "s_per_flop": 0.0}
    elif s_per_flop is not None and not spans(flops):
        slope = float(s_per_flop)
        fit = {"overhead_s": max(float(np.median(t - slope * f)), 0.0), "s_per_flop": slope}
    elif len(np.unique(f)) < 2:
        fit = {"overhead_s": 0.0, "s_per_flop": float(np.median(t / f))}
    else:
        slopes = [
            (t[j] - t[i]) / (f[j] - f[i])
            for i in range(len(f))
            for j in range(len(f))
            if f[j] > f[i]
        ]
        slope = max(float(np.median(slopes)), 0.0)
        fit = {"overhead_s": max(float(np.median(t - slope * f)), 0.0), "s_per_flop": slope}
    predicted = fit["overhead_s"] + fit["s_per_flop"] * f
    scale = np.maximum(np.maximum(t, predicted), 1e-300)
    error = np.abs(t - predicted)
    moved = np.ones_like(t, bool) if share is None else error * np.asarray(share) > SIGNIFICANT
    misses = int(np.sum((error / scale > RESIDUAL_LIMIT) & moved))
    if misses > len(t) / 4:
        raise ValueError(
            f"cost calibration: the fit of {name} misses {misses} of {len(t)} measured jobs by "
            f"more than {RESIDUAL_LIMIT:.0%} (seconds {t.tolist()} at flops {f.tolist()}); "
            "the timings are too noisy: rerun `gradmatch cost --calibrate` on an idle machine"
        )
    return fit


def fit_phases(measured: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The calibration's phase fits from ``measured``: per phase key ``<analysis>.<phase>``
    its jobs' ``flops``, ``seconds`` (per unit), ``share`` (:func:`fit_phase`), ``precision``,
    ``step`` and ``like`` (:class:`Phase`).

    A phase no job ran (``units`` all 0: the Adam fit's minibatch steps when every measured
    fit was full-batch) takes the fit of the phase of the same name in another analysis (one
    code path, :func:`adam_fit_phases`), or 0 labelled ``"not measured"`` where none ran it.
    A phase is fitted on its own (``slope``: ``"fitted"``) unless its flops do not
    :func:`spans` SPAN and it names a phase ``like`` of its analysis whose flops do: then it
    takes that phase's s_per_flop and fits only its overhead (``"like <phase>"``). A slope
    fitted between nearby sizes is noise, and the paper multiplies it by far larger flops
    (the Adam fit's monitored minibatch, full-batch on the default preset, is a backward pass
    of 10⁵ times the flops on MNIST)."""
    fits = {}
    for key in sorted(measured, key=lambda key: bool(measured[key].get("like"))):
        if not any(measured[key].get("units", [1])):
            continue  # measured in no job: below
        job, like = measured[key], measured[key].get("like") or ""
        reference = f"{key.split('.', 1)[0]}.{like}"
        borrow = like and not spans(job["flops"]) and reference in fits and spans(
            measured[reference]["flops"]
        )  # fmt: skip
        rate = fits[reference]["s_per_flop"] if borrow else None
        fits[key] = {
            **fit_phase(job["flops"], job["seconds"], key, job["share"], rate),
            "slope": f"like {like}" if borrow else "fitted",
            "precision": job["precision"],
            "step": bool(job["step"]),
        }
    for key in sorted(set(measured) - set(fits)):
        name = key.split(".", 1)[1]
        twins = [other for other in sorted(fits) if other.split(".", 1)[1] == name]
        fits[key] = (
            {**fits[twins[0]], "slope": f"like {twins[0]} (not run here)"}
            if twins
            else {
                "overhead_s": 0.0,
                "s_per_flop": 0.0,
                "slope": "not measured: no job ran it",
                "precision": measured[key]["precision"],
                "step": bool(measured[key]["step"]),
            }
        )
    return dict(sorted(fits.items()))


def cuda_estimate(cpu: dict[str, Any]) -> dict[str, Any]:
    """The labelled CUDA estimate derived from a measured CPU entry (constants above)."""
    phases = {
        key: {
            "overhead_s": max(
                CUDA_OVERHEAD * fit["overhead_s"], CUDA_STEP_S if fit["step"] else 0.0
            ),
            "s_per_flop": 1.0 / (EFFICIENCY * L40S_PEAK_FLOPS[fit["precision"]]),
            "precision": fit["precision"],
            "step": fit["step"],
        }
        for key, fit in cpu["phases"].items()
    }
    return {
        "measured": False,
        "source": (
            f"ESTIMATE, not measured: NVIDIA L40S at {EFFICIENCY:.0%} of its peak "
            f"({L40S_PEAK_FLOPS['float32'] / 1e12:g} TFLOP/s float32, "
            f"{L40S_PEAK_FLOPS['float64'] / 1e12:g} float64), per-step overhead "
            f"{CUDA_OVERHEAD:g} x the CPU's and at least {CUDA_STEP_S * 1e6:g} us, "
            f"+{CUDA_START_S:g} s start; from: {cpu['source']}"
        ),
        "margin": ESTIMATED_MARGIN,
        "job_start_s": cpu["job_start_s"] + CUDA_START_S,
        "phases": phases,
    }


TABLES = {
    "jobs": Table(
        columns(
            ("config", "str", "the config file"),
            ("preset", "str", "scale preset"),
            ("rule", "str", "the workflow rule"),
            ("chunk", "int64", "the job's chunk (0 for an unchunked rule)"),
            ("members", "int64", "networks (or cases) the job runs together"),
            ("params_per_member", "int64", "parameters of one member"),
            ("device", "str", "where the steps were timed: cpu or the CUDA device name"),
            ("mnist_stand_in", "bool", "MNIST timed on random tensors of its shapes"),
            ("start_s", "float64", "job start: interpreter, imports, data", "s"),
            ("projected_minutes", "float64", "measured steps × step counts at max epochs", "min"),
            ("calibration_device", "str", "the calibration entry the rule's runtime uses"),
            ("calibrated_minutes", "float64", "the calibration's projection", "min"),
            ("declared_runtime", "int64", "the rule's runtime at attempt 1", "min"),
            ("within_runtime", "bool", "projected_minutes <= declared_runtime"),
        ),
        key=("config", "rule", "chunk"),
        doc="one row per job of every training rule: projected against declared minutes",
    ),
    "phases": Table(
        columns(
            ("config", "str", "the config file"),
            ("rule", "str", "the workflow rule"),
            ("chunk", "int64", "the job's chunk"),
            ("phase", "str", "the kind of step (the analysis's cost_plan)"),
            ("units", "int64", "steps of this kind at max epochs"),
            ("flops", "float64", "floating-point operations of one step"),
            ("precision", "str", "float32 | float64"),
            ("step", "bool", "a unit is a step of its own (False: an evaluated row)"),
            ("like", "str", "the phase whose seconds per flop it takes when too few sizes"),
            ("seconds_per_unit", "float64", "measured seconds of one step", "s"),
            ("seconds", "float64", "units × seconds_per_unit", "s"),
        ),
        key=("config", "rule", "chunk", "phase"),
        doc="one row per phase of every job: the measured step times behind the projection",
    ),
}


def rule_name(analysis: str) -> str:
    """The workflow rule of an analysis's jobs (``<analysis>_chunk`` when chunked)."""
    from gradmatch import experiments

    return f"{analysis}_chunk" if experiments.is_chunked(analysis) else analysis


def rule_runtime(analysis: str, settings):
    """The ``runtime`` resource of an analysis's rule: a callable of (wildcards, attempt) giving
    :func:`runtime_minutes` of the job (chunk from the wildcards, 0 when unchunked); for an
    analysis without a cost plan (the CPU analyses) its static ``RESOURCES.runtime``."""
    from gradmatch import experiments

    if not hasattr(experiments.module(analysis), "cost_plan"):
        return experiments.module(analysis).RESOURCES.runtime

    def runtime(wildcards, attempt):
        chunk = int(getattr(wildcards, "chunk", 0))
        return runtime_minutes(analysis, settings, chunk, attempt)

    return runtime
