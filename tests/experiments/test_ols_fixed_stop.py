"""Figure 4B: the symmetric Λ̂ from endpoints stopped at one step t recovers Λ_t exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradmatch import config, io
from gradmatch.core import theory
from gradmatch.data.synthetic import sample_ols
from gradmatch.experiments import _ols, ols_fixed_stop
from gradmatch.settings import EarlyStopping, OLSProblem

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return ols_fixed_stop.run(ols_fixed_stop.Settings())


def test_tables_match_their_declarations(tables):
    assert set(tables) == set(ols_fixed_stop.TABLES)
    for name, frame in tables.items():
        ols_fixed_stop.TABLES[name].check(frame, name)


def test_panel_b_recovers_lambda_exactly_once_m_reaches_p(tables):
    error = tables["error"].set_index("m")["relative_frobenius_error"]
    assert list(error.index) == list(range(1, 101))
    assert error.loc[10:].max() < 1e-6
    # m·p ≥ 55 equations (m ≥ 6) is not enough: symmetric Q with Qθ_k = Λθ_k leaves
    # (p − m)(p − m + 1)/2 free directions, so the fit is exact only from m = p = 10 on
    assert error.loc[6:9].min() > 1e-2


def test_panel_b_heatmap_is_lambda_at_m_10(tables):
    estimate = tables["estimate"]
    assert set(estimate["m"]) == {10} and set(estimate["stop_step"]) == {500}
    expected = theory.early_stopping_penalty(sample_ols(OLSProblem(), 1.0).X, 500, 0.01)
    np.testing.assert_allclose(estimate["value"].to_numpy(), expected.ravel(), atol=1e-12)


def test_endpoints_share_x_and_use_the_authors_seeds():
    seeds = _ols.pool_seeds(56, 1, 3)
    assert seeds == [10156, 10157, 10158]
    problems = _ols.endpoint_problems(OLSProblem(), 1.0, seeds)
    assert all(np.array_equal(p.X, problems[0].X) for p in problems)
    assert not np.allclose(problems[0].beta, problems[1].beta)


def test_a_fixed_stop_step_and_the_early_stopping_block_set_t():
    fixed = ols_fixed_stop.Settings(stop_step=50, n_endpoints=12)
    assert ols_fixed_stop.fixed_step(fixed) == 50
    short = ols_fixed_stop.Settings(early_stopping=EarlyStopping(max_epochs=40, patience=5))
    assert ols_fixed_stop.fixed_step(short) == 40


def test_bad_settings_name_the_key():
    message = r"'ols_fixed_stop\.heatmap_endpoints' = 200: exceeds n_endpoints = 100"
    with pytest.raises(config.ConfigError, match=message):
        config.build_settings(ols_fixed_stop.Settings, {"heatmap_endpoints": 200})
    with pytest.raises(config.ConfigError, match=r"ols_fixed_stop\.stop_step"):
        config.build_settings(ols_fixed_stop.Settings, {"stop_step": 0})
    with pytest.raises(config.ConfigError, match=r"ols_fixed_stop\.early_stopping\.max_steps"):
        config.build_settings(ols_fixed_stop.Settings, {"early_stopping": {"max_steps": 3}})


def test_presets_overlay_the_defaults():
    def preset(name):
        return config.section_settings(config.load_yaml(REPO / "config" / name), "ols_fixed_stop")

    assert preset("paper.yaml") == ols_fixed_stop.Settings(preset="paper")
    assert preset("config.yaml") == ols_fixed_stop.Settings(preset="default")
    assert preset("smoke.yaml") == ols_fixed_stop.Settings(preset="smoke", n_endpoints=12)


def test_same_settings_give_byte_identical_parquet(tmp_path):
    settings = ols_fixed_stop.Settings(n_endpoints=12, preset="smoke")
    paths = [
        io.write_parquet(ols_fixed_stop.run(settings)["error"], tmp_path / f"{index}.pq")
        for index in range(2)
    ]
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_module_imports_and_reads_tables_without_torch():
    code = (
        "import sys; from gradmatch.experiments import ols_fixed_stop as m; s = m.Settings(); "
        "print(sorted(m.TABLES), m.RESOURCES.gpu, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['error',", "'estimate']", "0", "False"]
