"""``gradmatch cost``: time every job of the training rules, project its minutes, compare.

For every job of every analysis with a ``cost_plan`` (the training rules: ``dropout_chunk``,
``elastic_net_chunk``, ``igr_chunk``, ``igr_long_horizon``; the CPU analyses run in seconds to
a minute and are not timed) it times a few real steps of each phase on the device present
(:mod:`gradmatch.cost.timing`), multiplies by the step counts of the config at the maximum
epochs (early stopping is not predicted: an upper bound), and prints one row per job with the
rule's declared runtime, then the device-hours per rule and in total.

Each ``--configfile`` is costed on its own (a preset; not merged). ``--calibrate`` fits the
per-phase step times of the calibration (``gradmatch/cost/calibration.json``, which the
workflow prices rule runtimes with) to these measurements for the device kind measured on; a
CPU calibration also rewrites the labelled CUDA estimate unless a measured CUDA entry exists.
``--from-calibration`` times nothing and prints the calibration's projection instead.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
from pathlib import Path

import pandas as pd

from gradmatch import config as config_lib
from gradmatch import cost, experiments, io
from gradmatch.progress import progress_bar

DEFAULT_CONFIG = "config/config.yaml"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--configfile",
        action="append",
        help=f"a preset to cost (repeat for several, each on its own; default {DEFAULT_CONFIG})",
    )
    parser.add_argument("--out", help="write the per-job table to this parquet file")
    parser.add_argument("--phases-out", help="write the per-phase step times to this parquet file")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        help="time on this device instead of the config's `device`",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="RULE[:CHUNK]",
        help="cost only these jobs (e.g. dropout_chunk:3, igr_long_horizon)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--calibrate",
        action="store_true",
        help="fit the calibration of the device measured on to these timings and write it",
    )
    mode.add_argument(
        "--from-calibration",
        action="store_true",
        help="time nothing: project every job from the calibration",
    )
    parser.add_argument(
        "--calibration",
        help=f"the calibration file to read and write (default {cost.CALIBRATION_FILE})",
    )


def _selected(only: list[str]) -> dict[str, set[int] | None]:
    """Rule → chunks to cost (None: all); every rule when ``only`` is empty."""
    rules = {cost.rule_name(analysis): analysis for analysis in cost.timed_analyses()}
    chosen: dict[str, set[int] | None] = {}
    for item in only:
        rule, _, chunk = item.partition(":")
        if rule not in rules:
            raise ValueError(f"--only {item}: no training rule {rule!r}; rules: {sorted(rules)}")
        if not chunk:
            chosen[rules[rule]] = None
        elif chosen.get(rules[rule], set()) is not None:
            chosen.setdefault(rules[rule], set()).add(int(chunk))
    return chosen or dict.fromkeys(rules.values())


def jobs(config: dict, only: list[str], device: str | None):
    """(analysis, chunk, settings) of every selected job of ``config``."""
    for analysis, chunks in _selected(only).items():
        settings = config_lib.section_settings(config, analysis)
        if device is not None:
            settings = settings.model_copy(update={"device": device})
        count = experiments.chunk_count(analysis, settings)
        for chunk in range(count):
            if chunks is None or chunk in chunks:
                yield analysis, chunk, settings
        unknown = sorted((chunks or set()) - set(range(count)))
        if unknown:
            raise ValueError(f"--only {cost.rule_name(analysis)}:{unknown}: it has {count} chunks")


def _device_name(settings) -> str:
    import torch

    from gradmatch.train import resolve_device

    device = resolve_device(settings.device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _measure_job(analysis, chunk, settings, timed: bool, file: str, path):
    """The job's row (unpriced) and phase rows, timed on the device present, or priced by the
    calibration ``path`` when not ``timed``."""
    plan = cost.job_plan(analysis, settings, chunk)
    if not timed:
        device = cost.calibration_device(
            settings.device, experiments.module(analysis).RESOURCES.gpu
        )
        seconds = {
            phase.name: cost.phase_seconds(analysis, phase, device, path) for phase in plan.phases
        }
        seconds["start"] = cost.calibration(path)[device]["job_start_s"]
        device = f"{device} (calibration)"
    else:
        from gradmatch.cost import timing

        seconds = timing.measure(analysis, settings, chunk)
        seconds["start"] += timing.start_seconds(getattr(settings, "dataset", None))
        device = _device_name(settings)
    phase_rows = [
        {
            "config": file,
            "rule": cost.rule_name(analysis),
            "chunk": chunk,
            "phase": phase.name,
            "units": phase.units,
            "flops": phase.flops,
            "precision": phase.precision,
            "step": phase.step,
            "like": phase.like,
            "seconds_per_unit": seconds[phase.name],
            "seconds": phase.units * seconds[phase.name],
        }
        for phase in plan.phases
    ]
    row = {
        "config": file,
        "preset": settings.preset,
        "rule": cost.rule_name(analysis),
        "chunk": chunk,
        "members": plan.members,
        "params_per_member": plan.params,
        "device": device,
        "mnist_stand_in": getattr(settings, "dataset", "") == "mnist",
        "start_s": seconds["start"],
        "projected_minutes": (seconds["start"] + sum(r["seconds"] for r in phase_rows)) / 60.0,
    }
    return row, phase_rows


def _price(row: dict, analysis: str, settings, path) -> dict:
    """``row`` with the calibration's projection and the rule's declared runtime."""
    plan = cost.job_plan(analysis, settings, row["chunk"])
    device = cost.calibration_device(settings.device, experiments.module(analysis).RESOURCES.gpu)
    declared = cost.runtime_minutes(analysis, settings, row["chunk"], 1, path)
    return {
        **row,
        "calibration_device": device,
        "calibrated_minutes": cost.projected_seconds(analysis, plan, device, path) / 60.0,
        "declared_runtime": declared,
        "within_runtime": row["projected_minutes"] <= declared,
    }


def measure_jobs(files: list[str], only: list[str], device: str | None, timed: bool, path):
    """[(row, analysis, settings)] and the phase rows of every selected job of ``files``."""
    selected = [
        (file, *job) for file in files for job in jobs(config_lib.load_yaml(file), only, device)
    ]
    rows, phase_rows = [], []
    for file, analysis, chunk, settings in progress_bar(
        selected, desc="cost: time jobs", unit="jobs"
    ):
        row, phases = _measure_job(analysis, chunk, settings, timed, file, path)
        rows.append((row, analysis, settings))
        phase_rows.extend(phases)
    return rows, cost.TABLES["phases"].frame(phase_rows)


def price(rows, path) -> pd.DataFrame:
    """The jobs table: each measured row priced by the calibration ``path``."""
    return cost.TABLES["jobs"].frame(
        [_price(row, analysis, settings, path) for row, analysis, settings in rows]
    )


def render(frame: pd.DataFrame) -> str:
    """The per-job table, then device-hours per rule and in total."""
    shown = frame.assign(
        projected_minutes=frame["projected_minutes"].round(2),
        calibrated_minutes=frame["calibrated_minutes"].round(2),
    )[
        [
            "preset", "rule", "chunk", "members", "params_per_member", "projected_minutes",
            "declared_runtime", "calibrated_minutes", "calibration_device", "within_runtime",
        ]
    ]  # fmt: skip
    lines = [shown.to_string(index=False), ""]
    devices = sorted(set(frame["device"]))
    for (preset, rule), group in frame.groupby(["preset", "rule"], sort=False):
        hours = group["projected_minutes"].sum() / 60.0
        lines.append(f"{preset} {rule}: {len(group)} jobs, {hours:.3f} device-hours")
    for preset, group in frame.groupby("preset", sort=False):
        hours = group["projected_minutes"].sum() / 60.0
        lines.append(f"total {preset}: {hours:.3f} device-hours on {', '.join(devices)}")
    if frame["mnist_stand_in"].any():
        lines.append("MNIST: timed on random tensors of MNIST's shapes (nothing read or fetched)")
    lines.append("projections at the maximum epochs (early stopping not predicted: upper bounds)")
    over = frame[~frame["within_runtime"]]
    if len(over):
        lines.append(
            f"{len(over)} jobs project past their declared runtime on this device (declared "
            "runtimes are priced for each rule's calibration_device)"
        )
    return "\n".join(lines)


def calibrate(phases: pd.DataFrame, rows, files: list[str], path, only=()) -> dict:
    """The calibration ``path`` with the measured device's entry refitted to ``phases``; with
    ``only`` (``--only``) the phases of the rules not measured keep their current fits."""
    devices = {row["device"] for row, _, _ in rows}
    if len(devices) != 1 or any("(calibration)" in d for d in devices):
        raise ValueError(f"--calibrate: needs timings on one device, got {sorted(devices)}")
    name = devices.pop()
    kind = "cpu" if name == "cpu" else "cuda"
    analysis_of = {cost.rule_name(a): a for a in cost.timed_analyses()}
    job = ["config", "rule", "chunk"]
    job_seconds = phases.groupby(job)["seconds"].transform("sum")
    phases = phases.assign(share=phases["units"] / job_seconds.where(job_seconds > 0, 1.0))
    fits = cost.fit_phases(
        {
            f"{analysis_of[rule]}.{phase}": {
                "flops": group["flops"].tolist(),
                "units": group["units"].tolist(),
                "seconds": group["seconds_per_unit"].tolist(),
                "share": group["share"].tolist(),
                "precision": group["precision"].iloc[0],
                "step": group["step"].iloc[0],
                "like": group["like"].iloc[0],
            }
            for (rule, phase), group in phases.groupby(["rule", "phase"], sort=True)
        }
    )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    try:
        current = dict(cost.calibration(path))
    except FileNotFoundError:
        current = {}
    measured = {cost.rule_name(analysis) for _, analysis, _ in rows}
    if only:  # the phases of the rules not timed now keep their fits
        kept = {
            key: fit
            for key, fit in current.get(kind, {}).get("phases", {}).items()
            if cost.rule_name(key.split(".", 1)[0]) not in measured
        }
        fits = {**kept, **fits}
    entry = {
        "measured": True,
        "source": f"measured by gradmatch cost --calibrate on {name} ({platform.node()}, "
        f"{stamp}) with {', '.join(files)}" + (f" (only {', '.join(only)})" if only else ""),
        "margin": cost.MEASURED_MARGIN,
        "job_start_s": max(row["start_s"] for row, _, _ in rows),
        "phases": fits,
    }
    current[kind] = entry
    if kind == "cpu" and current.get("cuda", {}).get("measured") is not True:
        current["cuda"] = cost.cuda_estimate(entry)
    return current


def command(args) -> int:
    files = args.configfile or [DEFAULT_CONFIG]
    for file in files:
        if not Path(file).is_file():
            raise FileNotFoundError(f"--configfile {file}: no such file")
    path = args.calibration
    rows, phases = measure_jobs(files, args.only, args.device, not args.from_calibration, path)
    if args.phases_out:  # first: the timings of a calibration that is rejected are kept
        io.write_parquet(phases, args.phases_out)
    if args.calibrate:
        target = Path(path) if path else cost.CALIBRATION_FILE
        data = calibrate(phases, rows, files, path, args.only)
        with io.atomic_path(target) as tmp:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        cost.calibration.cache_clear()
        print(f"wrote the calibration to {target}", file=sys.stderr)
    jobs_frame = price(rows, path)
    print(render(jobs_frame))
    if args.out:
        io.write_parquet(jobs_frame, args.out)
    return 0
