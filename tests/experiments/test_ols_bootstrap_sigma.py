"""Figure 7F: bootstrap recovery error against the noise level σ, over pools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gradmatch import config
from gradmatch.experiments import ols_bootstrap_sigma

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return ols_bootstrap_sigma.run(ols_bootstrap_sigma.Settings())


def test_table_matches_its_declaration(sweep):
    ols_bootstrap_sigma.TABLES["sigma_sweep"].check(sweep)
    assert len(sweep) == 11 * 5 and set(sweep["stop_step"]) == {500}
    assert list(sweep["noise_std"]) == sorted(sweep["noise_std"])


def test_panel_f_beats_the_zero_baseline_at_sigma_20_and_not_at_sigma_half(sweep):
    means = sweep.groupby("noise_std")["distance_frobenius"].mean()
    baseline = float(sweep["zero_baseline_frobenius"].iloc[0])
    assert means[20.0] < baseline
    assert means[0.5] > baseline
    per_pool = sweep.pivot(index="pool", columns="noise_std", values="distance_frobenius")
    assert len(per_pool) == 5
    assert (per_pool[20.0] < baseline).all() and (per_pool[0.5] > baseline).all()


def test_panel_f_theta_spread_grows_linearly_with_sigma(sweep):
    spread = sweep[sweep["pool"] == 0].set_index("noise_std")["theta_std"]
    assert spread[20.0] / spread[1.0] == pytest.approx(20.0, rel=0.05)
    assert spread.is_monotonic_increasing


def test_bad_settings_name_the_key():
    with pytest.raises(config.ConfigError, match=r"ols_bootstrap_sigma\.noise_stds"):
        config.build_settings(ols_bootstrap_sigma.Settings, {"noise_stds": []})
    with pytest.raises(config.ConfigError, match=r"ols_bootstrap_sigma\.stop_step"):
        config.build_settings(ols_bootstrap_sigma.Settings, {"stop_step": 0})
    with pytest.raises(config.ConfigError, match=r"global keys, set at the top level"):
        config.build_settings(ols_bootstrap_sigma.Settings, {"ols_problem": {"seed": 1}})


def test_the_global_ols_problem_block_fills_the_field():
    loaded = {"ols_problem": {"n_samples": 200}, "ols_bootstrap_sigma": {"n_pools": 1}}
    settings = config.section_settings(loaded, "ols_bootstrap_sigma")
    assert settings.ols_problem.n_samples == 200 and settings.ols_problem.seed == 56


def test_presets_overlay_the_defaults():
    def preset(name):
        path = REPO / "config" / name
        return config.section_settings(config.load_yaml(path), "ols_bootstrap_sigma")

    assert preset("paper.yaml") == ols_bootstrap_sigma.Settings(preset="paper")
    assert preset("config.yaml") == ols_bootstrap_sigma.Settings(preset="default")
    smoke = ols_bootstrap_sigma.Settings(
        preset="smoke", noise_stds=(0.5, 4.0, 20.0), n_endpoints=30, n_pools=2
    )
    assert preset("smoke.yaml") == smoke


def test_module_imports_and_reads_tables_without_torch():
    code = (
        "import sys; from gradmatch.experiments import ols_bootstrap_sigma as m; s = m.Settings(); "
        "print(sorted(m.TABLES), m.RESOURCES.gpu, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['sigma_sweep']", "0", "False"]
