"""loss_gradient as the curvature libraries take it: any loss, any batches, a parameter subset.

Every case compares the batched result against one big batch through plain autograd."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from gradmatch.core.autodiff import (
    flat_parameters,
    gradient,
    hessian_gradient,
    hessian_vector_product,
    loss_gradient,
    loss_value,
    select_parameters,
)

ROWS, BATCH = 30, 7  # batches of 7, 7, 7, 7 and a short last one of 2


def _mlp(outputs=3, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, outputs)
    ).double()


def _regression(seed=1):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(ROWS, 4, generator=generator, dtype=torch.float64)
    return X, torch.randn(ROWS, 3, generator=generator, dtype=torch.float64)


def _classification(classes=3, seed=2):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(ROWS, 4, generator=generator, dtype=torch.float64)
    return X, torch.randint(0, classes, (ROWS,), generator=generator)


def _loader(X, y, batch_size=BATCH):
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=False)


def _autograd(model, value, names=None):
    """−∇ of one scalar through plain backward, over ``names`` (all if None)."""
    model.zero_grad()
    value.backward()
    chosen = [(n, p) for n, p in model.named_parameters() if names is None or n in names]
    return -torch.cat([p.grad.reshape(-1) for _, p in chosen]).double()


def _close(result, expected):
    assert result.dtype == torch.float64
    torch.testing.assert_close(result, expected, rtol=1e-12, atol=1e-14)


# ---- sequence outputs: the token mean, not n× it --------------------------------------------


class _TokenModel(torch.nn.Module):
    """Tokens (n, T) -> logits (n, T, V)."""

    def __init__(self, vocabulary=7, width=5):
        super().__init__()
        torch.manual_seed(3)
        self.embed = torch.nn.Embedding(vocabulary, width)
        self.head = torch.nn.Linear(width, vocabulary)

    def forward(self, tokens):
        return self.head(torch.tanh(self.embed(tokens)))


def _tokens(rows=10, length=5, vocabulary=7):
    generator = torch.Generator().manual_seed(4)
    X = torch.randint(0, vocabulary, (rows, length), generator=generator)
    return X, torch.randint(0, vocabulary, (rows, length), generator=generator)


def test_sequence_outputs_give_the_token_mean_gradient():
    model, (X, y) = _TokenModel().double(), _tokens()
    logits = model(X)
    expected = _autograd(model, torch.nn.CrossEntropyLoss()(logits.flatten(0, -2), y.flatten()))
    for batch_size in (None, 4):  # batches of 4, 4 and 2 rows
        _close(loss_gradient(model, "cross_entropy", X, y, batch_size=batch_size), expected)

    def token_mean(out, target):  # a function: each row has the same number of tokens
        return torch.nn.functional.cross_entropy(out.flatten(0, -2), target.flatten())

    _close(loss_gradient(model, token_mean, _loader(X, y, 4), reduction="mean"), expected)
    _close(-gradient(model, "cross_entropy", X, y, batch_size=4), expected)


def test_sequence_outputs_work_in_the_hessian_vector_product():
    model, (X, y) = _TokenModel().double(), _tokens()
    theta = torch.as_tensor(flat_parameters(model))
    direction = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(5)).double()

    def token_mean(point):
        views, start = {}, 0
        for name, p in model.named_parameters():
            views[name] = point[start : start + p.numel()].view_as(p)
            start += p.numel()
        logits = torch.func.functional_call(model, views, (X,))
        return torch.nn.functional.cross_entropy(logits.flatten(0, -2), y.flatten())

    _, expected = torch.func.jvp(torch.func.grad(token_mean), (theta,), (direction,))
    product = hessian_vector_product(model, "cross_entropy", X, y, direction, batch_size=4)
    torch.testing.assert_close(product, expected, rtol=1e-10, atol=1e-12)
    grad, hg = hessian_gradient(model, "cross_entropy", X, y)
    torch.testing.assert_close(grad, torch.func.grad(token_mean)(theta), rtol=1e-12, atol=1e-14)
    assert loss_value(model, "cross_entropy", X, y) == pytest.approx(float(token_mean(theta)))
    assert hg.shape == theta.shape


def test_sequence_labels_of_the_wrong_shape_are_named():
    model, (X, y) = _TokenModel().double(), _tokens()
    with pytest.raises(ValueError, match=r"class indices of shape \(10, 5\) for model outputs"):
        loss_gradient(model, "cross_entropy", X, y[:, :4])


# ---- loss modules with mean and sum reduction, over a DataLoader ----------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_dataloader_with_a_short_last_batch_gives_the_full_data_gradient(reduction):
    model, (X, y) = _mlp(), _regression()
    loss_fn = torch.nn.MSELoss(reduction=reduction)
    expected = _autograd(model, loss_fn(model(X), y))
    _close(loss_gradient(model, loss_fn, _loader(X, y)), expected)
    _close(loss_gradient(model, loss_fn, (X, y), batch_size=BATCH), expected)
    _close(loss_gradient(model, loss_fn, [(X[:3], y[:3]), (X[3:], y[3:])]), expected)


@pytest.mark.parametrize(
    "loss_fn",
    [
        torch.nn.CrossEntropyLoss(),
        torch.nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1),
        torch.nn.CrossEntropyLoss(weight=torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)),
        torch.nn.CrossEntropyLoss(ignore_index=1),
    ],
    ids=["mean", "sum-smoothed", "class-weighted", "ignore-index"],
)
def test_cross_entropy_modules_combine_exactly_across_batches(loss_fn):
    """The mean divides by Σ w[y] over the targets kept: batches weigh by exactly that."""
    model, (X, y) = _mlp(), _classification()
    expected = _autograd(model, loss_fn(model(X), y))
    _close(loss_gradient(model, loss_fn, _loader(X, y)), expected)


def test_kl_divergence_batchmean_weighs_batches_by_rows():
    model, (X, _) = _mlp(), _regression()
    target = torch.softmax(torch.randn(ROWS, 3, dtype=torch.float64), dim=-1)
    loss_fn = torch.nn.KLDivLoss(reduction="batchmean")

    def log_probabilities(out):
        return torch.log_softmax(out, dim=-1)

    wrapped = torch.nn.Sequential(model, torch.nn.LogSoftmax(dim=-1))
    expected = _autograd(model, loss_fn(log_probabilities(model(X)), target))
    _close(loss_gradient(wrapped, loss_fn, _loader(X, target)), expected)


def test_the_string_shortcuts_agree_with_their_modules_over_a_dataloader():
    model, (X, y) = _mlp(), _classification()
    by_pair = loss_gradient(model, "cross_entropy", X, y)
    _close(loss_gradient(model, "cross_entropy", _loader(X, y)), by_pair)
    _close(loss_gradient(model, torch.nn.CrossEntropyLoss(), _loader(X, y)), by_pair)
    regression, (Xr, yr) = _mlp(), _regression()
    _close(
        loss_gradient(regression, "mse", _loader(Xr, yr)), loss_gradient(regression, "mse", Xr, yr)
    )


def test_the_earlier_call_form_gives_the_same_numbers_bit_for_bit():
    model, (X, y) = _mlp(), _classification()
    for batch_size in (None, BATCH):
        old = loss_gradient(model, "cross_entropy", X, y, batch_size=batch_size)
        new = loss_gradient(model, "cross_entropy", (X, y), batch_size=batch_size)
        assert torch.equal(old, new)


# ---- plain functions: the reduction is said, not guessed ------------------------------------


def _huber_mean(output, target):
    return torch.nn.functional.huber_loss(output, target, delta=0.5)


def _squared_sum(output, target):
    return ((output - target) ** 2).sum()


def test_a_function_loss_takes_its_reduction_explicitly():
    model, (X, y) = _mlp(), _regression()
    _close(
        loss_gradient(model, _huber_mean, _loader(X, y), reduction="mean"),
        _autograd(model, _huber_mean(model(X), y)),
    )
    _close(
        loss_gradient(model, _squared_sum, _loader(X, y), reduction="sum"),
        _autograd(model, _squared_sum(model(X), y)),
    )
    with pytest.raises(ValueError, match=r"loss_fn _huber_mean does not say its reduction: pass"):
        loss_gradient(model, _huber_mean, _loader(X, y))
    with pytest.raises(ValueError, match=r"reduction='sum' contradicts MSELoss\(reduction='mean'"):
        loss_gradient(model, torch.nn.MSELoss(), _loader(X, y), reduction="sum")
    with pytest.raises(ValueError, match=r"MSELoss has reduction 'none'; .*scalar loss"):
        loss_gradient(model, torch.nn.MSELoss(reduction="none"), _loader(X, y))
    with pytest.raises(ValueError, match=r"loss_fn returned \(7, 3\), not a scalar tensor"):
        loss_gradient(model, lambda out, t: (out - t) ** 2, _loader(X, y), reduction="sum")


# ---- tuple and dict inputs ------------------------------------------------------------------


class _TwoInputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(6)
        self.left, self.right = torch.nn.Linear(4, 3), torch.nn.Linear(2, 3)

    def forward(self, left, right):
        return torch.tanh(self.left(left)) * self.right(right)


def _two_inputs():
    generator = torch.Generator().manual_seed(7)
    a = torch.randn(ROWS, 4, generator=generator, dtype=torch.float64)
    b = torch.randn(ROWS, 2, generator=generator, dtype=torch.float64)
    return a, b, torch.randn(ROWS, 3, generator=generator, dtype=torch.float64)


def test_tuple_inputs_call_model_with_several_arguments():
    model, (a, b, y) = _TwoInputs().double(), _two_inputs()
    loss_fn = torch.nn.MSELoss()
    expected = _autograd(model, loss_fn(model(a, b), y))
    batches = [((a[i : i + BATCH], b[i : i + BATCH]), y[i : i + BATCH]) for i in range(0, ROWS, 7)]
    _close(loss_gradient(model, loss_fn, batches), expected)
    _close(loss_gradient(model, loss_fn, ((a, b), y), batch_size=BATCH), expected)


def test_dict_inputs_call_model_with_keywords():
    model, (a, b, y) = _TwoInputs().double(), _two_inputs()
    loss_fn = torch.nn.MSELoss(reduction="sum")
    expected = _autograd(model, loss_fn(model(left=a, right=b), y))
    batches = [
        ({"left": a[i : i + BATCH], "right": b[i : i + BATCH]}, y[i : i + BATCH])
        for i in range(0, ROWS, BATCH)
    ]
    _close(loss_gradient(model, loss_fn, batches), expected)
    _close(loss_gradient(model, loss_fn, ({"left": a, "right": b}, y), batch_size=5), expected)
    with pytest.raises(ValueError, match=r"batch 0 is a dict with keys \['left', 'right'\]"):
        loss_gradient(model, loss_fn, [{"left": a, "right": b}])


# ---- a subset of the parameters -------------------------------------------------------------


def test_parameters_chosen_by_name_or_predicate_in_model_order():
    model, (X, y) = _mlp(), _classification()
    loss_fn = torch.nn.CrossEntropyLoss()
    names = ["2.weight", "0.bias"]  # given out of order: the result follows the model's order
    expected = _autograd(model, loss_fn(model(X), y), names=set(names))
    _close(loss_gradient(model, loss_fn, _loader(X, y), params=names), expected)
    _close(loss_gradient(model, "cross_entropy", (X, y), names), expected)
    full = loss_gradient(model, "cross_entropy", X, y)
    weights = loss_gradient(model, "cross_entropy", (X, y), lambda name, p: p.ndim == 2)
    _close(weights, torch.cat([full[0:24], full[30:48]]))
    theta = flat_parameters(model, names)
    np.testing.assert_array_equal(theta, flat_parameters(model)[np.r_[24:30, 30:48]])
    assert [name for name, _ in select_parameters(model, names)] == ["0.bias", "2.weight"]


def test_frozen_parameters_still_differentiate_without_touching_the_model():
    model, (X, y) = _mlp(), _classification()
    expected = loss_gradient(model, "cross_entropy", (X, y), ["0.weight"])
    model.requires_grad_(False)
    _close(loss_gradient(model, torch.nn.CrossEntropyLoss(), _loader(X, y), ["0.weight"]), expected)
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())


def test_a_bad_selection_or_data_is_named():
    model, (X, y) = _mlp(), _classification()
    with pytest.raises(ValueError, match=r"\['fc.weight'\] are not parameters of Sequential"):
        loss_gradient(model, "cross_entropy", (X, y), ["fc.weight"])
    with pytest.raises(ValueError, match="the predicate chose none of the 4 parameters"):
        flat_parameters(model, lambda name, p: False)
    with pytest.raises(ValueError, match=r"batch_size=7 cuts a pair \(X, y\).*DataLoader's"):
        loss_gradient(model, "cross_entropy", _loader(X, y), batch_size=7)
    with pytest.raises(ValueError, match="data yielded no batch"):
        loss_gradient(model, torch.nn.CrossEntropyLoss(), [])
    with pytest.raises(ValueError, match="holds no loss term"):
        everything_ignored = torch.nn.CrossEntropyLoss(ignore_index=0)
        loss_gradient(model, everything_ignored, [(X, torch.zeros(ROWS, dtype=torch.long))])
