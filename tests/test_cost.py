"""The cost model: step counts from the settings, the calibration, rule runtimes, the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradmatch import config, cost, experiments, io
from gradmatch.cli import main

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("config/smoke.yaml", "config/config.yaml", "config/paper.yaml")
GRADMATCH = str(Path(sys.executable).parent / "gradmatch")
TRAINING_RULES = {"dropout_chunk", "elastic_net_chunk", "igr_chunk", "igr_long_horizon"}


def settings_of(analysis: str, preset: str = "config/smoke.yaml", **section):
    loaded = config.load_yaml(ROOT / preset)
    loaded[analysis] = {**(loaded.get(analysis) or {}), **section}
    return config.section_settings(loaded, analysis)


def every_job(preset: str):
    for analysis in cost.timed_analyses():
        settings = settings_of(analysis, preset)
        for chunk in range(experiments.chunk_count(analysis, settings)):
            yield analysis, chunk, settings


def test_the_timed_analyses_are_the_training_rules():
    assert {cost.rule_name(name) for name in cost.timed_analyses()} == TRAINING_RULES


@pytest.mark.parametrize(
    ("analysis", "section", "key"),
    [
        ("dropout", {"early_stopping": {"max_epochs": 60}}, "early_stopping"),
        ("elastic_net", {"early_stopping": {"max_epochs": 3}}, "early_stopping"),
        ("igr", {"epochs": 2}, "epochs"),
    ],
)
def test_doubling_the_epochs_doubles_the_training_steps(analysis, section, key):
    doubled = {
        name: (
            {**value, "max_epochs": 2 * value["max_epochs"]}
            if isinstance(value, dict)
            else 2 * value
        )
        for name, value in section.items()
    }
    once = cost.job_plan(analysis, settings_of(analysis, **section), 0)
    twice = cost.job_plan(analysis, settings_of(analysis, **doubled), 0)
    for phase in ("train_step", "train_epoch", "eval_row"):
        if any(p.name == phase for p in once.phases):
            assert twice.phase(phase).units == 2 * once.phase(phase).units, (phase, key)
    assert twice.phase("member_fixed").units == once.phase("member_fixed").units


def test_dropout_steps_follow_the_settings():
    settings = settings_of("dropout")  # 3 rates x 1 seed, batch 64, 60 epochs, digits
    plan = cost.job_plan("dropout", settings, 0)
    n_val = round(0.1 * 1500)  # digits: 1,500 training images, val_fraction 0.1
    n_train = 1500 - n_val
    assert plan.members == 3
    assert plan.phase("train_step").units == 60 * -(-n_train // 64)
    assert plan.phase("eval_row").units == 60 * n_val
    # adam_fit.batch_size 2048 >= n_train: the full-data target once (per row), then one
    # monitored step per fit epoch and no k-vector steps
    assert plan.phase("fit_projection").units == 3 * n_train
    assert plan.phase("fit_monitor").units == 3 * 200
    assert plan.phase("fit_step").units == 0
    doubled = settings_of("dropout", adam_fit={"max_epochs": 400})
    assert cost.job_plan("dropout", doubled, 0).phase("fit_monitor").units == 3 * 400


def test_the_paper_dropout_fit_is_one_projection_pass_then_cheap_epochs():
    settings = settings_of("dropout", "config/paper.yaml")
    plan = cost.job_plan("dropout", settings, 0)
    n_train = 60_000 - 6_000
    members, epochs = plan.members, settings.adam_fit.max_epochs
    batches = -(-n_train // settings.adam_fit.batch_size)  # 27 targets of 2,048 rows
    projection = plan.phase("fit_projection")
    assert projection.units == members * n_train and projection.precision == "float64"
    assert plan.phase("fit_monitor").units == members * epochs  # one backward an epoch
    assert plan.phase("fit_step").units == members * epochs * (batches - 1)
    assert plan.phase("fit_step").flops == 0.0  # a k-vector step: a fixed cost
    # the one-off projection (a jvp per row) costs less than one training epoch of a member
    train_epoch = plan.phase("train_step").flops * batches / members
    assert projection.flops * n_train < train_epoch


def test_a_finished_run_is_projected_at_its_own_epochs():
    settings = settings_of("elastic_net")
    plan = cost.job_plan("elastic_net", settings, 0, {"train_epochs": 2, "fit_epochs": 5})
    steps_per_epoch = settings.n_train // settings.batch_size
    assert plan.phase("train_step").units == 2 * steps_per_epoch
    assert plan.phase("fit_monitor").units == 5
    batches = settings.n_train // settings.adam_fit.batch_size
    assert plan.phase("fit_step").units == 5 * (batches - 1)
    assert plan.phase("fit_projection").units == plan.members * settings.n_train
    without = settings_of("elastic_net", fit_methods=["lstsq"])
    assert cost.job_plan("elastic_net", without, 0).phase("fit_projection").units == 0
    with pytest.raises(ValueError, match="train_epochs"):
        cost.job_plan("elastic_net", settings, 0, {"train_epochs": -1})


def test_fit_phase_recovers_a_line_and_a_single_size():
    fit = cost.fit_phase([1e6, 2e6, 4e6], [0.001 + 1e-9 * f for f in (1e6, 2e6, 4e6)])
    assert fit["overhead_s"] == pytest.approx(0.001, rel=1e-6)
    assert fit["s_per_flop"] == pytest.approx(1e-9, rel=1e-6)
    assert cost.fit_phase([1e6, 1e6], [0.5, 1.0]) == {"overhead_s": 0.0, "s_per_flop": 7.5e-7}
    sizes = [1e6, 2e6, 4e6, 8e6, 16e6]
    busy = [0.001 + 1e-9 * f for f in sizes]
    busy[2] *= 5  # one job timed while the machine was busy
    assert cost.fit_phase(sizes, busy)["s_per_flop"] == pytest.approx(1e-9, rel=1e-6)
    assert cost.fit_phase([0.0], [0.25]) == {"overhead_s": 0.25, "s_per_flop": 0.0}


def test_fit_phase_rejects_a_fit_that_misses_the_jobs():
    with pytest.raises(ValueError, match="dropout.fit_monitor misses 2 of 2"):
        cost.fit_phase([0.0, 0.0], [0.1, 1.0], "dropout.fit_monitor")
    sizes = [1e6, 2e6, 4e6, 8e6]
    scattered = [1e-3, 9e-3, 2e-3, 3e-2]  # no line through most of them
    with pytest.raises(ValueError, match="too noisy"):
        cost.fit_phase(sizes, scattered, "igr.train_step")
    # the same scatter in a phase of a thousandth of its jobs' time moves no projection
    cost.fit_phase(sizes, scattered, "igr.train_step", share=[1e-3] * 4)
    with pytest.raises(ValueError, match="misses"):
        cost.fit_phase(sizes, scattered, "igr.train_step", share=[100.0] * 4)


def test_a_phase_measured_at_nearby_sizes_takes_the_slope_of_the_phase_it_is_like():
    """fit_monitor measured at 3e4..1.3e5 flops (full batch on the default preset) must not
    extrapolate its own noisy slope to the paper's 1.8e10-flop backward passes."""
    assert cost.spans([1e6, 1e7]) and cost.spans([0.0, 5.0]) and not cost.spans([3e4, 1.3e5])
    assert not cost.spans([0.0, 0.0])

    def job(flops, seconds, like=""):
        return {
            "flops": flops, "seconds": seconds, "share": [1e-6] * len(flops),
            "precision": "float32", "step": True, "like": like,
        }  # fmt: skip

    train = [1e6, 1e7, 1e8]
    noisy = [3e4, 1.3e5]
    measured = {
        "dropout.train_step": job(train, [1e-3 + 3e-11 * f for f in train]),
        "dropout.fit_monitor": job(noisy, [2e-4, 6e-4], like="train_step"),  # slope 4e-9
        "dropout.eval_row": job(noisy, [2e-4, 6e-4]),  # no like: its own slope
    }
    fits = cost.fit_phases(measured)
    assert fits["dropout.train_step"]["s_per_flop"] == pytest.approx(3e-11)
    assert fits["dropout.train_step"]["slope"] == "fitted"
    monitor = fits["dropout.fit_monitor"]
    assert monitor["slope"] == "like train_step"
    assert monitor["s_per_flop"] == fits["dropout.train_step"]["s_per_flop"]
    assert monitor["overhead_s"] == pytest.approx(np.median([2e-4 - 9e-7, 6e-4 - 3.9e-6]))
    assert fits["dropout.eval_row"]["s_per_flop"] == pytest.approx(4e-9)
    spanned = cost.fit_phases({**measured, "dropout.fit_monitor": job(train, [1.0] * 3, "x")})
    assert spanned["dropout.fit_monitor"]["slope"] == "fitted"


def test_the_monitored_batch_is_the_last_one_partial_unless_dropped():
    fit = config.section_settings({}, "dropout").adam_fit.model_copy(update={"batch_size": 4})
    kept = cost.adam_fit_phases(1, 10, 100, 50, fit, 3, 1, False)
    dropped = cost.adam_fit_phases(1, 10, 100, 50, fit, 3, 1, True)
    monitor = {phase.name: phase for phase in kept}["fit_monitor"]
    assert monitor.flops == 10 * 50 + cost.training_flops(100, 2)  # 10 mod 4 rows
    assert {p.name: p for p in dropped}["fit_monitor"].flops == 500 + cost.training_flops(100, 4)
    assert {p.name: p for p in kept}["fit_step"].units == 3 * 2  # 3 batches, one monitored
    assert {p.name: p for p in dropped}["fit_step"].units == 3 * 1


def test_a_phase_no_job_ran_takes_its_twin_of_another_analysis_or_is_labelled():
    def job(units, seconds):
        return {
            "flops": [0.0] * len(units), "units": units, "seconds": seconds,
            "share": [1e-6] * len(units), "precision": "float32", "step": True, "like": "",
        }  # fmt: skip

    fits = cost.fit_phases(
        {
            "dropout.fit_step": job([0, 0], [0.0, 0.0]),  # every dropout fit was full-batch
            "elastic_net.fit_step": job([10, 20], [1e-4, 1e-4]),
            "igr.member_fixed": job([0], [0.0]),
        }
    )
    assert fits["dropout.fit_step"]["overhead_s"] == pytest.approx(1e-4)
    assert fits["dropout.fit_step"]["slope"] == "like elastic_net.fit_step (not run here)"
    assert fits["igr.member_fixed"]["slope"].startswith("not measured")


def test_the_cuda_estimate_is_labelled_and_wider():
    cpu = cost.calibration()["cpu"]
    cuda = cost.cuda_estimate(cpu)
    assert cuda["measured"] is False and cuda["source"].startswith("ESTIMATE")
    assert cuda["margin"] > cpu["margin"]
    fp64 = next(fit for fit in cuda["phases"].values() if fit["precision"] == "float64")
    fp32 = next(fit for fit in cuda["phases"].values() if fit["precision"] == "float32")
    assert fp64["s_per_flop"] > fp32["s_per_flop"]


def test_every_calibrated_phase_is_a_phase_of_a_plan():
    planned = {
        f"{analysis}.{phase.name}"
        for preset in PRESETS
        for analysis, chunk, settings in every_job(preset)
        for phase in cost.job_plan(analysis, settings, chunk).phases
    }
    for device, entry in cost.calibration().items():
        assert set(entry["phases"]) == planned, device


@pytest.mark.parametrize("preset", PRESETS)
def test_no_job_projects_past_its_declared_runtime(preset):
    for analysis, chunk, settings in every_job(preset):
        resources = experiments.module(analysis).RESOURCES
        device = cost.calibration_device(settings.device, resources.gpu)
        plan = cost.job_plan(analysis, settings, chunk)
        projected = cost.projected_seconds(analysis, plan, device) / 60.0
        declared = cost.runtime_minutes(analysis, settings, chunk, attempt=1)
        assert declared >= projected, (preset, analysis, chunk, declared, projected)
        assert declared >= resources.runtime


def test_runtime_grows_with_the_attempt_and_rules_take_a_callable():
    settings = settings_of("dropout", "config/paper.yaml")
    first = cost.runtime_minutes("dropout", settings, 8, attempt=1)
    assert cost.runtime_minutes("dropout", settings, 8, attempt=2) == 2 * first
    runtime = cost.rule_runtime("dropout", settings)

    class Wildcards:
        chunk = "8"

    assert runtime(Wildcards(), 1) == first and runtime(Wildcards(), 3) == 3 * first
    untimed = cost.rule_runtime("ols_endpoint", settings_of("ols_endpoint"))
    assert untimed == experiments.module("ols_endpoint").RESOURCES.runtime


def test_auto_prices_gpu_rules_as_cuda_and_the_rest_as_cpu():
    assert cost.calibration_device("auto", 1) == "cuda"
    assert cost.calibration_device("auto", 0) == "cpu"
    assert cost.calibration_device("cpu", 1) == "cpu"


def test_a_missing_calibration_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="gradmatch cost --calibrate"):
        cost.calibration(str(tmp_path / "none.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cpu": {"margin": 1.5, "job_start_s": 1.0, "phases": {}}}))
    settings = settings_of("igr").model_copy(update={"device": "cpu"})
    with pytest.raises(ValueError, match="no phase 'igr.train_step'"):
        cost.runtime_minutes("igr", settings, 0, path=str(bad))
    with pytest.raises(ValueError, match="no device 'cuda'"):
        cost.runtime_minutes(
            "igr", settings.model_copy(update={"device": "cuda"}), 0, path=str(bad)
        )


def test_mnist_stand_in_has_mnist_shapes_and_reads_nothing():
    from gradmatch.cost import timing
    from gradmatch.data import images, normalization

    with timing.mnist_stand_in():
        x, y = images.load_images("mnist", "train", None)
        xt, _ = normalization.load_normalized("mnist", "test", None)
    assert tuple(x.shape) == (60_000, 784) and tuple(y.shape) == (60_000,)
    assert tuple(xt.shape) == (10_000, 784) and 0 <= int(y.min()) and int(y.max()) <= 9
    with pytest.raises(ValueError, match="mnist_dir"):
        images.load_images("mnist", "train", None)  # restored after the block


def test_cost_from_calibration_prints_every_paper_job(tmp_path, capsys):
    out = tmp_path / "jobs.parquet"
    assert (
        main(["cost", "--configfile", "config/paper.yaml", "--from-calibration", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    frame = io.read_parquet(out)
    cost.TABLES["jobs"].check(frame)
    expected = sum(1 for _ in every_job("config/paper.yaml"))
    assert len(frame) == expected == 10 + 9 + 6 + 1
    assert re.search(r"total paper: [\d.]+ device-hours", printed)
    assert frame["within_runtime"].all()


def test_only_rejects_an_unknown_rule(capsys):
    assert main(["cost", "--from-calibration", "--only", "nope_chunk"]) == 1
    assert "no training rule 'nope_chunk'" in capsys.readouterr().err


@pytest.mark.slow
def test_cost_times_every_smoke_job(tmp_path):
    out, phases = tmp_path / "jobs.parquet", tmp_path / "phases.parquet"
    result = subprocess.run(
        [GRADMATCH, "cost", "--configfile", "config/smoke.yaml",
         "--out", str(out), "--phases-out", str(phases)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    frame = io.read_parquet(out)
    cost.TABLES["jobs"].check(frame)
    jobs = list(every_job("config/smoke.yaml"))
    assert len(frame) == len(jobs) == 1 + 2 + 2 + 1
    for rule in TRAINING_RULES:
        assert re.search(rf"^ *smoke +{rule} ", result.stdout, re.M), rule
    assert re.search(r"total smoke: [\d.]+ device-hours", result.stdout)
    assert "MNIST" not in result.stdout  # smoke is digits
    assert (frame["projected_minutes"] > 0).all()
    timed = io.read_parquet(phases)
    assert (timed["seconds_per_unit"] >= 0).all() and timed["seconds"].sum() > 0


@pytest.mark.slow
def test_slurm_dry_run_shows_the_priced_runtimes():
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "slurm", "-n", "paper"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    runtimes: dict[tuple[str, int], int] = {}
    rule = None
    for line in text.splitlines():
        header = re.match(r"^rule (\w+):$", line)
        rule = header.group(1) if header else rule
        if rule in TRAINING_RULES and line.startswith("    wildcards: chunk="):
            chunk = int(line.split("=", 1)[1])
        elif rule in TRAINING_RULES and line.startswith("    resources: "):
            found = re.search(r"runtime=(\d+)", line)
            runtimes[(rule, chunk if rule.endswith("_chunk") else 0)] = int(found.group(1))
    paper = list(every_job("config/paper.yaml"))
    assert len(runtimes) == len(paper)
    for analysis, chunk, settings in paper:
        expected = cost.runtime_minutes(analysis, settings, chunk)
        assert runtimes[(cost.rule_name(analysis), chunk)] == expected


def test_pricing_a_rule_imports_no_torch():
    code = (
        "import sys\n"
        "from gradmatch import config, cost\n"
        "loaded = config.load_yaml('config/paper.yaml')\n"
        "for name in cost.timed_analyses():\n"
        "    cost.runtime_minutes(name, config.section_settings(loaded, name), 0)\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


# ------------------------------------------------------------------ the timing logic, faked


class FakeClock:
    """A clock whose ``time(work)`` returns scripted seconds (and runs nothing timed)."""

    def __init__(self, seconds_of):
        self.seconds_of, self.now = seconds_of, 0.0

    def __call__(self):
        return self.now

    def time(self, work):
        result = work()
        seconds = self.seconds_of()
        self.now += seconds
        return seconds, result


def test_a_difference_within_the_noise_is_not_a_measurement():
    from gradmatch.cost import timing

    assert timing.spread([1.0, 1.5, 9.0]) == 0.5 and timing.spread([2.0]) == 0.0
    assert timing.resolved_steps([1.0, 1.01, 3.0], [2.0, 2.02, 2.5], 10) == pytest.approx(0.101)
    assert timing.resolved_steps([1.0, 1.5, 1.6], [2.0, 2.1, 2.2], 10) is None  # 1.0 < 3 x 0.5
    assert timing.resolved_steps([1.0, 1.0], [1.1, 1.1], 10) is None  # shorter than TARGET_S
    runs = [(1, 16, 1.0), (9, 16, 1.01), (1, 2048, 2.0)]
    bounded = timing.bounded_runs(runs, noise=0.1)
    assert bounded == [(1, 16, 1.0), (9, 16, 1.0 + timing.NOISE_FACTOR * 0.1), (1, 2048, 2.0)]


def test_stepped_grows_until_resolved_and_fails_on_a_machine_too_noisy(monkeypatch):
    from gradmatch.cost import timing

    calls = []

    def work(units):
        calls.append(units)

    # one unit costs 0.01 s on top of 1 s, repeats within 1 ms: m grows until m x 0.01 >= 0.3
    clock = FakeClock(lambda: 1.0 + 0.01 * (calls[-1] - 1) + 0.001 * (len(calls) % 2))
    per_unit, fixed = timing._stepped(clock, work)
    assert per_unit == pytest.approx(0.01, rel=0.05) and fixed == pytest.approx(0.99, abs=0.02)
    assert max(calls) - 1 >= timing.TARGET_S / 0.01
    monkeypatch.setattr(timing, "MAX_REPEAT", 8)
    noisy = iter([1.0, 1.0, 2.0, 3.0] * 100)  # repeats 1 s apart: nothing resolves
    with pytest.raises(RuntimeError, match="noise of this machine"):
        timing._stepped(FakeClock(lambda: next(noisy)), work)


def test_fit_seconds_splits_a_member_call_into_the_fit_phases():
    from gradmatch.cost import timing

    plan = cost.Plan(
        members=2,
        params=10,
        phases=(
            cost.Phase("member_fixed", 2, 1.0),
            cost.Phase("fit_projection", 2 * 1000, 1.0, precision="float64", step=False),
            cost.Phase("fit_monitor", 1, 1.0),
            cost.Phase("fit_step", 9, 0.0),  # 10 targets an epoch, the last monitored
        ),
    )
    # each call: 0.5 s fixed + 2 s projection + 3 epochs of (0.1 s targets, 0.09 s steps)
    record = {"projection": [2.0], "targets": [0.1, 0.1, 0.1], "steps": [0.09, 0.09]}
    slow = {"projection": [2.5], "targets": [0.2, 0.1, 0.3], "steps": [0.09, 0.4]}
    seconds = timing.fit_seconds([2.0 + 0.5 + 3 * 0.19, 5.0], [record, slow], plan)
    assert seconds["fit_projection"] == pytest.approx(2.0 / 1000)
    assert seconds["fit_monitor"] == pytest.approx(0.1)
    assert seconds["fit_step"] == pytest.approx(0.01)
    assert seconds["member_fixed"] == pytest.approx(0.5)
    # a long fit's epochs run at 0.095 s, not the 0.19 s of the first epochs timed from inside
    scaled = timing.fit_seconds([2.0 + 0.5 + 3 * 0.19, 5.0], [record, slow], plan, 0.095)
    assert scaled["fit_monitor"] == pytest.approx(0.05)
    assert scaled["fit_step"] == pytest.approx(0.005)
    assert scaled["fit_projection"] == seconds["fit_projection"]
    with pytest.raises(RuntimeError, match="expected one fit"):
        timing.fit_seconds([1.0], [{"projection": [], "targets": [], "steps": []}], plan)


def test_timed_fits_times_the_projected_targets_from_inside():
    import torch

    from gradmatch import train
    from gradmatch.cost import timing

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    X, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    ticks = iter(range(1, 10**6))
    clock = FakeClock(lambda: float(next(ticks)))
    with timing.timed_fits(clock) as record:
        batches = train.minibatch_targets(
            model, "cross_entropy", X, y, 8, 0, drop_last=False, targets="projected"
        )
        design = torch.randn(sum(p.numel() for p in model.parameters()), 1).double().numpy()
        epochs = batches.project(design)
        projections, last = epochs(0)
        epochs(1)
    assert train.minibatch_targets is not batches.__class__  # restored after the block
    assert tuple(projections.shape) == (3, 1) and last.numel() == design.shape[0]
    assert len(record["projection"]) == 1 and len(record["targets"]) == 2
    assert len(record["steps"]) == 1
    with timing.timed_fits(clock), pytest.raises(RuntimeError, match="backward targets"):
        train.minibatch_targets(model, "cross_entropy", X, y, 8, 0, drop_last=False)


def test_a_wheel_ships_the_calibration():
    import fnmatch
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["gradmatch"]
    shipped = cost.CALIBRATION_FILE.relative_to(ROOT / "src" / "gradmatch").as_posix()
    assert any(fnmatch.fnmatch(shipped, pattern) for pattern in patterns), patterns
