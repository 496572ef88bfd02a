"""Minibatch targets of the stochastic gradient-matching fit (gradmatch.train.matching)."""

import pytest
import torch

from gradmatch.core.autodiff import loss_gradient
from gradmatch.train import minibatch_targets


def _regressor():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))
    return model, torch.randn(50, 4), torch.randn(50)


def _classifier():
    torch.manual_seed(2)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 7), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(7, 3)
    ).eval()
    return model, torch.rand(40, 6), torch.randint(0, 3, (40,))


def _epoch_rows(seed: int, n: int, epochs: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randperm(n, generator=generator) for _ in range(epochs)]


@pytest.mark.parametrize("vectorize", [False, True])
def test_drop_last_targets_are_minus_the_batch_loss_gradient(vectorize):
    model, X, y = _regressor()
    targets = minibatch_targets(model, "mse", X, y, 8, 7, drop_last=True, vectorize=vectorize)
    for epoch, order in enumerate(_epoch_rows(7, 50, 2)):
        got = list(targets(epoch))
        assert len(got) == 6  # 50 // 8, the last partial batch dropped
        for target, rows in zip(got, order[:48].view(6, 8), strict=True):
            assert target.dtype == torch.float64
            expected = loss_gradient(model, "mse", X[rows], y[rows])
            assert torch.allclose(target, expected, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("vectorize", [False, True])
def test_kept_last_batch_and_cross_entropy(vectorize):
    model, X, y = _classifier()
    targets = minibatch_targets(model, "cross_entropy", X, y, 16, 3, vectorize=vectorize)
    (order,) = _epoch_rows(3, 40, 1)
    got = list(targets(0))
    assert len(got) == 3  # 16 + 16 + 8 rows
    for target, start in zip(got, (0, 16, 32), strict=True):
        rows = order[start : start + 16]
        expected = loss_gradient(model, "cross_entropy", X[rows], y[rows])
        assert torch.allclose(target, expected, atol=1e-7, rtol=1e-6)


def test_without_vectorize_each_batch_is_exactly_loss_gradient():
    model, X, y = _classifier()
    (order,) = _epoch_rows(5, 40, 1)
    got = list(minibatch_targets(model, "cross_entropy", X, y, 16, 5)(0))
    assert torch.equal(got[-1], loss_gradient(model, "cross_entropy", X[order[32:]], y[order[32:]]))


def test_one_batch_holding_every_row_is_the_full_data_target_every_epoch():
    model, X, y = _classifier()
    targets = minibatch_targets(model, "cross_entropy", X, y, 64, 0)
    full = loss_gradient(model, "cross_entropy", X, y)
    for epoch in range(3):
        (target,) = list(targets(epoch))
        assert torch.equal(target, full)


def test_same_seed_same_targets_and_bad_arguments():
    model, X, y = _regressor()
    first = list(minibatch_targets(model, "mse", X, y, 8, 11, drop_last=True)(0))
    again = list(minibatch_targets(model, "mse", X, y, 8, 11, drop_last=True)(0))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    with pytest.raises(ValueError, match="loss must be one of"):
        minibatch_targets(model, "hinge", X, y, 8, 0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        minibatch_targets(model, "mse", X, y, 0, 0)


@pytest.mark.parametrize("drop_last", [False, True])
def test_projected_targets_are_the_batch_targets_seen_through_the_design(drop_last):
    model, X, y = _classifier()
    model = model.double()
    X = X.double()
    directions = torch.randn(sum(p.numel() for p in model.parameters()), 2, dtype=torch.float64)
    backward = minibatch_targets(model, "cross_entropy", X, y, 16, 3, drop_last=drop_last)
    projected = minibatch_targets(
        model, "cross_entropy", X, y, 16, 3, drop_last=drop_last, targets="projected"
    ).project(directions.numpy())
    for epoch in range(2):
        targets = list(backward(epoch))
        projections, last = projected(epoch)
        assert projections.shape == (2 if drop_last else 3, 2)  # 40 rows: 16 + 16 (+ 8)
        expected = torch.stack([directions.T @ target for target in targets])
        assert torch.allclose(projections, expected, rtol=1e-10, atol=1e-13)
        assert torch.equal(last, targets[-1])


def test_projected_targets_reject_bad_directions_and_an_unknown_way():
    model, X, y = _regressor()
    projected = minibatch_targets(model, "mse", X, y, 8, 0, targets="projected")
    with pytest.raises(ValueError, match=r"directions of shape \(3, 1\); expected \(31, k\)"):
        projected.project(torch.ones(3, 1).numpy())
    with pytest.raises(ValueError, match=r"targets must be one of \['backward', 'projected'\]"):
        minibatch_targets(model, "mse", X, y, 8, 0, targets="jvp")
