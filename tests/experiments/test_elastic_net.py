"""Figure 3 experiment: stationarity recovery, minibatch targets, chunks and the parquet table."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from gradmatch import io
from gradmatch.core.estimators import match_gradients
from gradmatch.core.autodiff import flat_parameters, loss_gradient
from gradmatch.core.regularizers import ElasticNet
from gradmatch.experiments import elastic_net
from gradmatch.train import Adam, ElasticNetPenalty, MLPSpec, train_batched

TINY = elastic_net.Settings(
    lambda1_values=(1e-3, 1e-1),
    lambda2_values=(1e-2,),
    seeds=(0, 1),
    chunk_size=3,
    n_samples=200,
    hidden=(8,),
    max_epochs=2,
    fit_max_epochs=2,
    device="cpu",
    preset="smoke",
    progress=False,
)


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


def test_minibatch_targets_are_minus_the_batch_loss_gradient():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))
    X, y = torch.randn(50, 4), torch.randn(50)
    targets = list(elastic_net.minibatch_targets(model, X, y, batch_size=8, seed=7)(0))
    assert len(targets) == 6  # 50 // 8, last partial batch dropped
    rows = torch.randperm(50, generator=torch.Generator().manual_seed(7))[:48].view(6, 8)
    for target, batch in zip(targets, rows, strict=True):
        expected = loss_gradient(model, "mse", X[batch], y[batch])
        assert torch.allclose(target, expected, atol=1e-6, rtol=1e-5)


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


EXPECTED_DTYPES = {
    "lambda_true_l1": "float64",
    "lambda_true_l2": "float64",
    "seed": "int64",
    **{
        f"{kind}_{method}": "float64"
        for method in ("lstsq", "nnls", "adam")
        for kind in ("lambda_hat_l1", "lambda_hat_l2", "fit_residual_ratio", "fit_cosine", "fit_r2")
    },
    "fit_epochs_adam": "int64",
    "train_mse": "float64",
    "test_mse": "float64",
    "epochs_trained": "int64",
    "best_epoch": "int64",
    "matched_weights": "object",
    "train_optimizer": "object",
    "smooth_beta": "float64",
    "n_parameters": "int64",
    "chunk": "int64",
    "preset": "object",
}


def test_parquet_columns_dtypes_and_byte_identical_reruns(tmp_path):
    frame = elastic_net.run(TINY, chunk=0)
    assert sorted(frame.columns) == sorted(EXPECTED_DTYPES)
    first = io.write_parquet(frame, tmp_path / "a.parquet")
    second = io.write_parquet(elastic_net.run(TINY, chunk=0), tmp_path / "b.parquet")
    assert first.read_bytes() == second.read_bytes()
    table = pd.read_parquet(first)
    for column, expected in EXPECTED_DTYPES.items():
        if expected == "object":  # pandas >= 3 reads strings back as its "str" dtype
            assert pd.api.types.is_string_dtype(table[column]), column
        else:
            assert str(table[column].dtype) == expected, column
    assert len(table) == 3 and table["seed"].tolist() == [0, 1, 0]
    assert set(table["preset"]) == {"smoke"} and set(table["n_parameters"]) == {10 * 8 + 8 + 9}
    assert (table["epochs_trained"] == 2).all() and np.isfinite(table["train_mse"]).all()
    nnls = table[["lambda_hat_l1_nnls", "lambda_hat_l2_nnls"]].to_numpy()
    assert (nnls >= 0).all()


def test_best_weights_option_and_bad_settings():
    best = dataclasses.replace(TINY, match_weights="best", fit_methods=("lstsq",))
    frame = elastic_net.run(best, chunk=1)
    assert set(frame["matched_weights"]) == {"best"}
    assert "lambda_hat_l1_adam" not in frame.columns
    with pytest.raises(ValueError, match="elastic_net.match_weights: 'last'"):
        dataclasses.replace(TINY, match_weights="last")
    with pytest.raises(ValueError, match=r"elastic_net.fit_methods: \['sgd'\]"):
        dataclasses.replace(TINY, fit_methods=("sgd",))
