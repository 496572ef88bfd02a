"""A sweep of bad configs: each is rejected before any job runs, by `gradmatch check-config FILE`
and by `snakemake -n --configfile FILE`, with one `error:` line naming the key; legitimate
choices (paths with spaces, unsorted milestones, more features than samples) stay accepted.

Each case is a small overlay file (the config rule: missing keys take the Settings defaults).
`check-config` runs in process for every case; the dry runs (about 3 s each) take one case per
class of bad config, plus one run of all the accepted choices together.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gradmatch import cli

REPO = Path(__file__).resolve().parents[2]


def digits(dropout: dict | None = None, igr: dict | None = None) -> str:
    """An overlay on dataset: digits, which must fit dropout's batch and igr's splits to the 1,500
    training and 297 test images (the paper's defaults are for MNIST); ``dropout`` and ``igr``
    change or add keys of those sections."""
    sections = {
        "dropout": {"batch_size": 64, **(dropout or {})},
        "igr": {"n_train": 1200, "n_val": 300, "n_test": 297, **(igr or {})},
    }
    return "dataset: digits\n" + yaml.safe_dump(sections, default_flow_style=None)


# (case id, overlay text, the key the one error line must name)
BAD = [
    # non-finite numbers
    (
        "nan-in-grid",
        "elastic_net:\n  lambda1_values: [.nan, 1.0]\n",
        "elastic_net.lambda1_values.0",
    ),
    ("inf-global", "ols_problem:\n  beta_scale: .inf\n", "ols_problem.beta_scale"),
    ("nan-rate", "dropout:\n  lr: .nan\n", "dropout.lr"),
    ("inf-noise", "ols_bootstrap_sigma:\n  noise_stds: [1.0, -.inf]\n", "noise_stds.1"),
    # cross-field rules
    (
        "heatmap-endpoints",
        "ols_fixed_stop:\n  n_endpoints: 12\n  heatmap_endpoints: 20\n",
        "ols_fixed_stop.heatmap_endpoints",
    ),
    (
        "heatmap-m",
        "ols_bootstrap:\n  n_endpoints: 20\n  heatmap_m: [1, 50]\n",
        "ols_bootstrap.heatmap_m",
    ),
    ("empty-val-split", digits(dropout={"val_fraction": 0.0001}), "dropout.val_fraction"),
    ("empty-test-split", "elastic_net:\n  train_fraction: 0.9999\n", "elastic_net.train_fraction"),
    ("igr-split", digits(igr={"n_val": 301}), "igr.n_train"),
    ("igr-test", digits(igr={"n_test": 298}), "igr.n_test"),
    (
        "mlp-samples",
        digits() + "igr_long_horizon: {mlp_samples: 1501}\n",
        "igr_long_horizon.mlp_samples",
    ),
    ("dropout-batch", digits(dropout={"batch_size": 1351}), "dropout.batch_size"),
    ("igr-batch", "igr: {n_train: 100, batch_size: 128}\n", "igr.batch_size"),
    ("elastic-net-batch", "elastic_net: {batch_size: 5000}\n", "elastic_net.batch_size"),
    ("sgd-batch", "sgd_vs_flow: {batch_size: 200}\n", "sgd_vs_flow.batch_size"),
    (
        "theta-range",
        "ridge_stationarity: {theta_min: 2.0, theta_max: 1.0}\n",
        "ridge_stationarity.theta_max",
    ),
    # uniqueness of seeds and grid values
    ("seeds", "elastic_net:\n  seeds: [0, 0]\n", "elastic_net.seeds"),
    ("lambdas", "elastic_net:\n  lambda2_values: [0.1, 0.1]\n", "elastic_net.lambda2_values"),
    ("rates", "dropout:\n  rates: [0.1, 0.2, 0.1]\n", "dropout.rates"),
    ("dropout-seeds", "dropout:\n  seeds: [1, 1]\n", "dropout.seeds"),
    ("widths", "igr:\n  widths: [8, 8]\n", "igr.widths"),
    ("learning-rates", "igr:\n  learning_rates: [0.1, 0.1]\n", "igr.learning_rates"),
    (
        "checkpoints",
        "ols_ridge_trace:\n  checkpoints: [1, 10, 10]\n",
        "ols_ridge_trace.checkpoints",
    ),
    (
        "noise-sigma",
        "ols_bootstrap_sigma:\n  noise_stds: [1.0, 1.0]\n",
        "ols_bootstrap_sigma.noise_stds",
    ),
    ("endpoint-sigma", "ols_endpoint:\n  noise_stds: [1.0, 1.0]\n", "ols_endpoint.noise_stds"),
    ("long-horizon-lrs", "igr_long_horizon:\n  synthetic_lrs: [0.01, 0.01]\n", "synthetic_lrs"),
    # sizes that cannot fit in memory (an estimate from the config)
    ("ols-float", "ols_problem:\n  n_samples: 1.0e+12\n", "ols_problem.n_samples"),
    ("ols-int", "ols_problem:\n  n_samples: 1000000000000\n", "ols_problem.n_samples"),
    ("elastic-net-rows", "elastic_net:\n  n_samples: 1.0e+9\n", "elastic_net.n_samples"),
    ("igr-width", "igr:\n  widths: [1000000]\n", "igr.widths"),
    ("surface", "sgd_vs_flow:\n  grid_points: 100000000\n", "sgd_vs_flow.grid_points"),
    # a key or section given twice (named with its line)
    ("duplicate-section", "igr:\n  epochs: 3\nigr:\n  epochs: 4\n", ":3: key 'igr' given twice"),
    ("duplicate-key", "igr:\n  epochs: 3\n  epochs: 4\n", ":3: key 'epochs' given twice"),
]
# YAML that does not parse: check-config names file:line:column; Snakemake reads --configfile
# itself before the Snakefile runs and prints its own one-line WorkflowError, naming no line.
SYNTAX = [
    ("syntax", "igr:\n  epochs: [3\n", ":3:1: YAML error"),
    ("tab", "igr:\n\tepochs: 3\n", ":2:1: YAML error: found character '\\t'"),
]
SNAKEMAKE_SYNTAX_LINE = "Config file is not valid JSON or YAML"
# one case per class for the dry runs
DRY_RUN_CASES = [
    "nan-in-grid",
    "heatmap-endpoints",
    "igr-split",
    "seeds",
    "ols-float",
    "duplicate-section",
    "duplicate-key",
]
# legitimate choices, accepted together: an unsorted milestone list, more features than samples
ACCEPTED = digits(dropout={"milestones": [200, 60, 100]}) + (
    "preset: smoke\n"
    "ols_problem: {n_samples: 20, n_features: 40}\n"
    "elastic_net: {n_samples: 50, n_features: 80, batch_size: 16}\n"
    "igr_long_horizon: {synthetic_samples: 8, synthetic_features: 20}\n"
)


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def _check_config(path: Path, capsys) -> tuple[int, list[str]]:
    code = cli.main(["check-config", str(path)])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()]


@pytest.mark.parametrize(("name", "text", "key"), BAD + SYNTAX, ids=[c[0] for c in BAD + SYNTAX])
def test_check_config_rejects_with_one_line_naming_the_key(tmp_path, capsys, name, text, key):
    path = _write(tmp_path, name, text)
    code, lines = _check_config(path, capsys)
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith("gradmatch check-config: error: ")
    assert key in lines[0], lines[0]


def test_check_config_accepts_the_legitimate_choices(tmp_path, capsys):
    path = _write(tmp_path / "my configs", "with spaces", ACCEPTED)
    assert cli.main(["check-config", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: valid"


def _workflow_copy(folder: Path) -> Path:
    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, folder / name)
    return folder


def _dry_run(workdir: Path, configfile: Path, *targets: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", *targets, "--configfile", str(configfile)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return _workflow_copy(tmp_path_factory.mktemp("bad_configs"))


@pytest.mark.slow
@pytest.mark.parametrize("name", DRY_RUN_CASES)
def test_snakemake_stops_before_any_job_naming_the_key(workdir, name):
    _, text, key = next(case for case in BAD if case[0] == name)
    configfile = _write(workdir / "overlays", name, text)
    result = _dry_run(workdir, configfile)
    log = result.stdout + result.stderr
    assert result.returncode != 0, log[-2000:]
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and key in errors[0], log[-2000:]
    assert "Building DAG of jobs" not in log and "Job stats" not in log


@pytest.mark.slow
@pytest.mark.parametrize(("name", "text", "key"), SYNTAX, ids=[c[0] for c in SYNTAX])
def test_snakemake_stops_on_yaml_it_cannot_read(workdir, name, text, key):
    configfile = _write(workdir / "overlays", name, text)
    result = _dry_run(workdir, configfile)
    log = result.stdout + result.stderr
    assert result.returncode != 0 and SNAKEMAKE_SYNTAX_LINE in log, log[-2000:]
    assert "Traceback" not in log and "Building DAG of jobs" not in log


@pytest.mark.slow
def test_snakemake_accepts_the_legitimate_choices_from_a_folder_with_spaces(tmp_path):
    workdir = _workflow_copy(tmp_path / "a work dir")
    configfile = _write(workdir / "my configs", "with spaces", ACCEPTED)
    result = _dry_run(workdir, configfile, "figures")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "This was a dry-run" in log and "error:" not in log
