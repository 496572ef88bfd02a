"""Validate the cost model: every training job of a preset run for real against its projection.

For each job of the training rules (``gradmatch cost``'s jobs), this times its phases with
:func:`gradmatch.cost.timing.measure` (as ``gradmatch cost`` does), then runs the job through
the CLI (``gradmatch <analysis> --configfile FILE --chunk i``, a fresh process, as the workflow
does) and measures its wall time, then times its phases again: the projection compared is the
mean of the two (this shared 2-core machine's speed drifts by tens of percent over minutes;
both are kept in the JSON). Early stopping may stop a job before the maximum epochs, so
the projection compared is the one at the epochs the job actually ran (read from its tables:
the largest ``epochs_trained``, the Adam-fit epochs summed over members, the members probed),
priced with the same measured step times; the projection at the maximum epochs is printed
beside it. Goal: measured / projected within 1 ± 0.35 for every job. Prints the ratios and
``uptime`` (the machine's load), and writes them as JSON. Usage:

    python benchmarks/bench_cost_model.py [--configfile config/config.yaml]
        [--only RULE[:CHUNK] ...] [--out benchmarks/results/cost_model_cpu_default.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gradmatch import config, cost, experiments, io
from gradmatch.cli import cost as cost_cli
from gradmatch.cost import timing

TOLERANCE = 0.35
ROOT = Path(__file__).resolve().parents[1]


def actual_counts(analysis: str, tables: dict) -> dict[str, int]:
    """The epochs (and probes) the finished job ran, from its tables."""
    if analysis in ("dropout", "elastic_net"):
        frame = next(iter(tables.values()))
        return {
            "train_epochs": int(frame["epochs_trained"].max()),
            "fit_epochs": int(frame["fit_epochs_adam"].sum()),
        }
    if analysis == "igr":
        return {"probed": int((~tables["runs"]["excluded"]).sum())}
    return {}


def run_job(analysis: str, chunk: int, configfile: str, folder: Path) -> tuple[float, dict]:
    """Wall seconds of the job through the CLI in a fresh process, and its tables."""
    outs = {
        name: folder / f"{analysis}_{chunk}_{name}.parquet"
        for name in experiments.module(analysis).TABLES
    }
    command = [
        str(Path(sys.executable).parent / "gradmatch"),
        analysis.replace("_", "-"),
        "--configfile",
        configfile,
    ]
    if experiments.is_chunked(analysis):
        command += ["--chunk", str(chunk)]
    for name, path in outs.items():
        command += ["--out", f"{name}={path}"]
    started = time.perf_counter()
    subprocess.run(
        command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    seconds = time.perf_counter() - started
    return seconds, {name: io.read_parquet(path) for name, path in outs.items()}


def measured_seconds(analysis: str, settings, chunk: int) -> dict[str, float]:
    """The job's phase timings as ``gradmatch cost`` takes them, with its start measured anew
    (fresh interpreters): the machine's speed drifts over minutes, so each job is timed just
    before and just after its run and compared with the mean of the two."""
    seconds = timing.measure(analysis, settings, chunk)
    timing.start_seconds.cache_clear()
    seconds["start"] += timing.start_seconds(getattr(settings, "dataset", None))
    return seconds


def projection(analysis: str, settings, chunk: int, seconds: dict, actual=None) -> float:
    plan = cost.job_plan(analysis, settings, chunk, actual)
    return seconds["start"] + sum(phase.units * seconds[phase.name] for phase in plan.phases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/config.yaml")
    parser.add_argument("--only", action="append", default=[], metavar="RULE[:CHUNK]")
    parser.add_argument("--out", default="benchmarks/results/cost_model_cpu_default.json")
    args = parser.parse_args()
    loaded = config.load_yaml(args.configfile)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for analysis, chunk, settings in cost_cli.jobs(loaded, args.only, None):
            before = measured_seconds(analysis, settings, chunk)
            measured, tables = run_job(analysis, chunk, args.configfile, Path(tmp))
            after = measured_seconds(analysis, settings, chunk)
            actual = actual_counts(analysis, tables)
            bracket = [projection(analysis, settings, chunk, s, actual) for s in (before, after)]
            projected = sum(bracket) / 2
            seconds = {name: (before[name] + after[name]) / 2 for name in before}
            ratio = measured / projected
            rows.append(
                {
                    "rule": cost.rule_name(analysis),
                    "chunk": chunk,
                    "actual": actual,
                    "measured_s": round(measured, 2),
                    "projected_s": round(projected, 2),
                    "projected_before_after_s": [round(value, 2) for value in bracket],
                    "projected_max_epochs_s": round(
                        projection(analysis, settings, chunk, seconds), 2
                    ),
                    "ratio": round(ratio, 3),
                    "within": abs(ratio - 1.0) <= TOLERANCE,
                    "load_average_1min": os.getloadavg()[0],
                }
            )
            print(
                f"{rows[-1]['rule']:18s} chunk {chunk}: measured {measured:8.1f} s, projected "
                f"{projected:8.1f} s (at max epochs {rows[-1]['projected_max_epochs_s']:8.1f} s), "
                f"ratio {ratio:.2f} {'ok' if rows[-1]['within'] else 'OUT'}  {actual}",
                flush=True,
            )
            save(args, rows, complete=False)  # a run cut short keeps the jobs done
    within = sum(row["within"] for row in rows)
    result = save(args, rows, complete=True)
    print(f"{within}/{len(rows)} jobs within ±{TOLERANCE:.0%}; uptime: {result['uptime']}")


def save(args, rows: list[dict], complete: bool) -> dict:
    """Write the results so far (with the machine's load) as JSON, atomically."""
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    result = {
        "configfile": args.configfile,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": "cpu",
        "uptime": uptime,
        "tolerance": TOLERANCE,
        "complete": complete,
        "jobs": rows,
    }
    with io.atomic_path(args.out) as path:
        path.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
