"""Figure 3 experiment: stationarity recovery, settings, chunks and the parquet table."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from gradmatch import config as config_lib
from gradmatch import io
from gradmatch.core.autodiff import flat_parameters, loss_gradient
from gradmatch.core.estimators import match_gradients
from gradmatch.core.regularizers import ElasticNet
from gradmatch.experiments import elastic_net
from gradmatch.train import Adam, ElasticNetPenalty, MLPSpec, train_batched

TINY_SECTION = {
    "lambda1_values": [1e-3, 1e-1],
    "lambda2_values": [1e-2],
    "seeds": [0, 1],
    "chunk_size": 3,
    "n_samples": 200,
    "hidden": [8],
    "early_stopping": {"max_epochs": 2},
    "adam_fit": {"max_epochs": 2},
    "progress": False,
}
GLOBALS = {"device": "cpu", "preset": "smoke"}


def tiny(**changes) -> elastic_net.Settings:
    """The tiny grid, with ``changes`` overlaid by the config rule (partial blocks allowed)."""
    return config_lib.build_settings(elastic_net.Settings, TINY_SECTION | changes, GLOBALS)


TINY = tiny()


def _penalised_gradient_norm(model, X, y, lambdas, beta) -> float:
    params = list(model.parameters())
    stacked = [p.unsqueeze(0) for p in params]
    objective = torch.nn.functional.mse_loss(model(X).squeeze(-1), y)
    objective = objective + ElasticNetPenalty(*lambdas, beta=beta)(stacked).sum()
    grads = torch.autograd.grad(objective, params)
    return float(torch.cat([g.flatten() for g in grads]).norm())


def _polish_to_stationarity(model, X, y, lambdas, beta, tol=1e-7) -> float:
    """L-BFGS on the same penalised objective until ‖∇J‖ < tol (float64)."""
    params = list(model.parameters())
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=0.0,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        stacked = [p.unsqueeze(0) for p in params]
        objective = torch.nn.functional.mse_loss(model(X).squeeze(-1), y)
        objective = objective + ElasticNetPenalty(*lambdas, beta=beta)(stacked).sum()
        objective.backward()
        return objective

    for _ in range(20):
        optimizer.step(closure)
        norm = _penalised_gradient_norm(model, X, y, lambdas, beta)
        if norm < tol:
            break
    return norm


@pytest.mark.slow
def test_stationary_network_recovers_lambda1_and_lambda2_with_lstsq():
    torch.manual_seed(0)
    X = torch.randn(120, 3, dtype=torch.float64)
    y = torch.sin(X @ torch.tensor([1.5, -2.0, 0.5], dtype=torch.float64))
    # λ1 small enough that many weights stay outside |θ| < β, where h_β' = sign(θ): otherwise
    # the two design columns θ/β and 2θ coincide and λ1, λ2 are not identifiable (paper H.2)
    lambdas, beta = (0.005, 0.01), 0.01
    result = train_batched(
        MLPSpec(3, (6,), 1, activation="tanh"),
        [4],
        X,
        y,
        optimizer=Adam(lr=1e-2),
        epochs=1500,
        batch_size=None,
        penalty=ElasticNetPenalty(*lambdas, beta=beta),
        dtype="float64",
        device="cpu",
        progress=False,
    )
    model = result.member(0)
    norm = _polish_to_stationarity(model, X, y, lambdas, beta)
    assert norm < 1e-7
    assert np.sum(np.abs(flat_parameters(model)) > beta) >= 10
    fit = match_gradients(
        ElasticNet(beta), flat_parameters(model), loss_gradient(model, "mse", X, y)
    )
    assert fit.params["lambda_l1"] == pytest.approx(lambdas[0], rel=0.01)
    assert fit.params["lambda_l2"] == pytest.approx(lambdas[1], rel=0.01)
    assert fit.residual_ratio < 1e-4


def test_defaults_are_the_paper_values_and_blocks_overlay():
    paper = elastic_net.Settings()
    assert paper.lambda1_values == elastic_net.PAPER_LAMBDAS and paper.seeds == tuple(range(10))
    assert (paper.early_stopping.max_epochs, paper.early_stopping.patience) == (200, 15)
    fit = paper.adam_fit
    assert (fit.lr, fit.max_epochs, fit.patience, fit.batch_size, fit.init) == (
        1e-2, 1000, 50, 32, 1.0,
    )  # fmt: skip
    assert elastic_net.n_chunks(paper) == 10  # 6 · 6 · 10 cells, 36 per chunk
    # a partial block keeps the block's other defaults
    assert TINY.adam_fit.max_epochs == 2 and TINY.adam_fit.patience == 50
    assert TINY.early_stopping.patience == 15
    assert "wandb" not in paper.record()


def test_module_imports_reads_tables_and_counts_chunks_without_torch():
    code = (
        "import sys; from gradmatch.experiments import elastic_net as m; s = m.Settings(); "
        "print(m.n_chunks(s), sorted(m.TABLES), m.RESOURCES.gpu, 'torch._C' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10", "['summary']", "1", "False"]


def test_chunks_cover_the_grid_once_and_bad_chunk_is_named():
    assert elastic_net.n_chunks(TINY) == 2  # 2 × 1 × 2 cells, 3 per chunk
    cells = elastic_net.grid(TINY)
    assert cells[0] == (1e-3, 1e-2, 0) and cells[-1] == (1e-1, 1e-2, 1)
    with pytest.raises(ValueError, match="chunk 2 out of range; this grid has 2 chunks"):
        elastic_net.run(TINY, chunk=2)


def test_dataset_follows_the_seed():
    first = elastic_net.sample_dataset(TINY, 3)
    again = elastic_net.sample_dataset(TINY, 3)
    other = elastic_net.sample_dataset(TINY, 4)
    assert first["X_train"].shape == (160, 10) and first["X_test"].shape == (40, 10)
    assert torch.equal(first["y_train"], again["y_train"])
    assert not torch.equal(first["y_train"], other["y_train"])


def test_table_is_declared_and_byte_identical_on_rerun(tmp_path):
    frame = elastic_net.run(TINY, chunk=0)
    declaration = elastic_net.TABLES["summary"]
    declaration.check(frame)
    first = io.write_parquet(frame, tmp_path / "a.parquet")
    second = io.write_parquet(elastic_net.run(TINY, chunk=0), tmp_path / "b.parquet")
    assert first.read_bytes() == second.read_bytes()
    table = pd.read_parquet(first)
    declaration.check(table, "chunk 0 read back")
    assert len(table) == 3 and table["seed"].tolist() == [0, 1, 0]
    assert set(table["preset"]) == {"smoke"} and set(table["n_params"]) == {10 * 8 + 8 + 9}
    assert (table["epochs_trained"] == 2).all() and np.isfinite(table["train_mse"]).all()
    assert (table["fit_epochs_adam"] == 2).all()
    nnls = table[["lambda_hat_l1_nnls", "lambda_hat_l2_nnls"]].to_numpy()
    assert (nnls >= 0).all()


def test_best_weights_and_methods_not_run_keep_the_declared_columns():
    frame = elastic_net.run(tiny(match_weights="best", fit_methods=["lstsq"]), chunk=1)
    elastic_net.TABLES["summary"].check(frame)
    assert set(frame["matched_weights"]) == {"best"}
    assert frame["lambda_hat_l1_adam"].isna().all() and frame["lambda_hat_l2_nnls"].isna().all()
    assert (frame["fit_epochs_adam"] == 0).all()
    assert frame["lambda_hat_l1_lstsq"].notna().all()


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"match_weights": "last"}, "elastic_net.match_weights"),
        ({"fit_methods": ["sgd"]}, "elastic_net.fit_methods"),
        ({"lambda1_values": [0.0]}, "elastic_net.lambda1_values"),
        ({"seeds": []}, "elastic_net.seeds"),
        ({"early_stopping": {"patience": 0}}, "elastic_net.early_stopping.patience"),
        ({"adam_fit": {"fit_lr": 0.1}}, "elastic_net.adam_fit.fit_lr"),
        ({"batch_size": 500}, "batch_size"),
        ({"max_epochs": 3}, "elastic_net.max_epochs"),
    ],
)
def test_bad_settings_name_the_key(changes, key):
    with pytest.raises(config_lib.ConfigError, match=key.replace(".", r"\.")):
        tiny(**changes)
