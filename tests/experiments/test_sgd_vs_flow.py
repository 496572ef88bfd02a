"""Figure 2: the gradient-flow proxy and SGD tables, settings, torch-free import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gradmatch import io
from gradmatch.experiments import sgd_vs_flow


@pytest.fixture(scope="module")
def flow_tables():
    return sgd_vs_flow.run(sgd_vs_flow.Settings(preset="smoke"))


def test_fig2_flow_path_ends_near_theta_star(flow_tables):
    markers = flow_tables["markers"].set_index("marker")
    star = markers.loc["theta_star", ["theta_1", "theta_2"]].to_numpy(dtype=float)
    start = markers.loc["theta_0", ["theta_1", "theta_2"]].to_numpy(dtype=float)
    flow = flow_tables["path"].query("path == 'gradient_flow'").sort_values("step")
    end = flow[["theta_1", "theta_2"]].to_numpy()[-1]
    assert np.linalg.norm(start - star) == pytest.approx(0.40, abs=1e-12)
    assert np.linalg.norm(end - star) < 0.05 * 0.40
    assert markers.loc["theta_star", "grad_norm"] < 1e-8
    assert len(flow) == 3001
    assert np.all(np.diff(flow["loss"].to_numpy()) <= 1e-15)  # small-step GD never goes uphill


def test_fig2_sgd_iterates_follow_the_minibatch_steps(flow_tables):
    steps = flow_tables["sgd_steps"].sort_values("step")
    sgd = flow_tables["path"].query("path == 'sgd'").sort_values("step")
    start = steps[["theta_1", "theta_2"]].to_numpy()
    moved = start + steps[["batch_step_1", "batch_step_2"]].to_numpy()
    np.testing.assert_allclose(moved, sgd[["theta_1", "theta_2"]].to_numpy()[1:], atol=1e-12)
    full = steps[["full_step_1", "full_step_2"]].to_numpy()
    gap = np.linalg.norm(full - (moved - start), axis=1)
    assert len(steps) == 6 and gap.min() > 1e-3  # minibatch noise is visible at every step
    assert all(len(set(map(int, s.split()))) == 8 for s in steps["batch_indices"])


def test_fig2_loss_grid_covers_visited_points_with_padding(flow_tables):
    grid = flow_tables["loss_grid"]
    assert len(grid) == 320 * 320
    visited = flow_tables["path"].query("path == 'sgd'")
    for column in ("theta_1", "theta_2"):
        assert grid[column].min() <= visited[column].min() - 0.1 + 1e-12
        assert grid[column].max() >= visited[column].max() + 0.1 - 1e-12
    star = flow_tables["markers"].set_index("marker").loc["theta_star", "loss"]
    assert grid["loss"].min() == pytest.approx(star, abs=1e-3)


def test_tables_match_their_declaration(flow_tables):
    assert set(flow_tables) == set(sgd_vs_flow.TABLES)
    for name, table in sgd_vs_flow.TABLES.items():
        table.check(flow_tables[name], name)


def test_small_step_descent_is_gradient_descent_with_flow_lr():
    import torch

    settings = sgd_vs_flow.Settings(flow_steps=3)
    x, y = sgd_vs_flow.training_data(settings)
    theta0 = torch.tensor([0.5, -0.2], dtype=torch.float64)
    path = sgd_vs_flow.small_step_descent(settings, theta0, x, y)
    assert path.shape == (4, 2)
    step = theta0 - settings.flow_lr * sgd_vs_flow.gradient(theta0, x, y)
    assert torch.equal(path[1], step)


def test_same_settings_give_byte_identical_parquet(tmp_path):
    settings = sgd_vs_flow.Settings(flow_steps=200, reference_steps=300, grid_points=24)
    for attempt in ("a", "b"):
        for name, frame in sgd_vs_flow.run(settings).items():
            io.write_parquet(frame, tmp_path / attempt / f"{name}.parquet")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(f"{name}.parquet" for name in sgd_vs_flow.TABLES)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_sgd_vs_flow_leaves_the_global_torch_seed_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    sgd_vs_flow.run(sgd_vs_flow.Settings(flow_steps=5, reference_steps=5, grid_points=4))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 97}, "batch_size"),
        ({"reference_start": (0.8,)}, "reference_start"),
        ({"x_min": 3.0}, "x_min"),
        ({"flow_steps": 0}, "flow_steps"),
    ],
)
def test_invalid_settings_raise_with_the_key(changes, message):
    with pytest.raises(ValueError, match=message):
        sgd_vs_flow.Settings(**changes)


def test_every_preset_uses_the_paper_values():
    from gradmatch import config

    for preset in ("config", "smoke", "paper"):
        settings = config.section_settings(config.load_yaml(f"config/{preset}.yaml"), "sgd_vs_flow")
        assert settings.model_dump(exclude={"preset"}) == sgd_vs_flow.Settings().model_dump(
            exclude={"preset"}
        )


def test_module_imports_and_reads_tables_without_torch():
    code = (
        "import sys; from gradmatch.experiments import sgd_vs_flow as m; s = m.Settings(); "
        "print(sorted(m.TABLES), m.RESOURCES.gpu, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["0", "False"]
    assert "['loss_grid', 'markers', 'path', 'sgd_steps']" in result.stdout
