"""autodiff: flat parameters, loss gradients (Appendix D) and double-backprop HVPs."""

import numpy as np
import pytest
import torch

from gradmatch.core.autodiff import (
    flat_parameters,
    gradient,
    hessian_gradient,
    hessian_vector_product,
    loss_gradient,
    loss_value,
)


def _mlp(outputs=1, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, outputs)
    ).double()


def _data(n=40, outputs=None, seed=1):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    if outputs is None:
        return X, torch.randn(n, generator=generator, dtype=torch.float64)
    return X, torch.randint(0, outputs, (n,), generator=generator)


def _autograd_gradient(model, loss_fn, X, y):
    model.zero_grad()
    loss_fn(model(X), y).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def test_flat_parameters_follow_model_parameters_order_in_float64():
    model = _mlp().float()
    theta = flat_parameters(model)
    assert theta.dtype == np.float64
    expected = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double().numpy()
    np.testing.assert_array_equal(theta, expected)
    assert theta.size == 3 * 5 + 5 + 5 + 1


def test_loss_gradient_of_mse_equals_minus_autograd_in_batches():
    model, (X, y) = _mlp(), _data()
    expected = -_autograd_gradient(model, lambda out, t: torch.mean((out[:, 0] - t) ** 2), X, y)
    for batch_size in (None, 7):
        result = loss_gradient(model, "mse", X, y, batch_size=batch_size)
        assert result.dtype == torch.float64
        torch.testing.assert_close(result, expected, rtol=1e-12, atol=1e-14)


def test_loss_gradient_of_cross_entropy_equals_minus_autograd_in_batches():
    model, (X, y) = _mlp(outputs=4), _data(outputs=4)
    expected = -_autograd_gradient(model, torch.nn.functional.cross_entropy, X, y)
    for batch_size in (None, 9):
        result = loss_gradient(model, "cross_entropy", X, y, batch_size=batch_size)
        torch.testing.assert_close(result, expected, rtol=1e-12, atol=1e-14)


def test_unknown_loss_and_mismatched_rows_are_rejected():
    model, (X, y) = _mlp(), _data()
    with pytest.raises(ValueError, match=r"loss must be one of \['mse', 'cross_entropy'\]"):
        loss_gradient(model, "hinge", X, y)
    with pytest.raises(
        ValueError, match=r"X of shape \(40, 3\) has 40 rows but y of shape \(39,\) has 39"
    ):
        loss_gradient(model, "mse", X, y[:-1])
    with pytest.raises(ValueError, match="theta has 3 entries but the model has 26"):
        gradient(model, "mse", X, y, np.zeros(3))


def test_hessian_vector_product_equals_central_finite_difference():
    model, (X, y) = _mlp(), _data()
    theta = flat_parameters(model)
    direction = np.random.default_rng(0).normal(size=theta.size)
    step = 1e-5
    plus = gradient(model, "mse", X, y, theta + step * direction)
    minus = gradient(model, "mse", X, y, theta - step * direction)
    finite_difference = (plus - minus) / (2 * step)
    product = hessian_vector_product(model, "mse", X, y, direction)
    torch.testing.assert_close(product, finite_difference, rtol=1e-7, atol=1e-9)


def test_hessian_gradient_is_the_product_with_the_gradient_batched_or_not():
    model, (X, y) = _mlp(outputs=3), _data(outputs=3)
    grad, product = hessian_gradient(model, "cross_entropy", X, y)
    torch.testing.assert_close(grad, -loss_gradient(model, "cross_entropy", X, y))
    expected = hessian_vector_product(model, "cross_entropy", X, y, grad)
    torch.testing.assert_close(product, expected, rtol=1e-12, atol=1e-14)
    batched = hessian_gradient(model, "cross_entropy", X, y, batch_size=11)[1]
    torch.testing.assert_close(batched, expected, rtol=1e-12, atol=1e-14)


def test_float32_data_follow_a_float64_model():
    model, (X, y) = _mlp(), _data()
    result = loss_gradient(model, "mse", X.float(), y.float())
    torch.testing.assert_close(result, loss_gradient(model, "mse", X, y), rtol=1e-6, atol=1e-8)


def test_loss_value_is_the_mean_loss_at_theta_without_touching_the_model():
    model, (X, y) = _mlp(outputs=4), _data(outputs=4)
    before = flat_parameters(model)
    with torch.no_grad():
        expected = float(torch.nn.functional.cross_entropy(model(X), y))
    assert loss_value(model, "cross_entropy", X, y) == expected
    assert loss_value(model, "cross_entropy", X, y, batch_size=9) == pytest.approx(expected)
    shifted = loss_value(model, "cross_entropy", X, y, before + 0.1)
    assert shifted != expected
    np.testing.assert_array_equal(flat_parameters(model), before)
    regression, (Xr, yr) = _mlp(), _data()
    with torch.no_grad():
        mse = float(torch.mean((regression(Xr)[:, 0] - yr) ** 2))
    assert loss_value(regression, "mse", Xr, yr) == pytest.approx(mse, rel=1e-15)


# ---- input checks: one message naming the shapes/dtypes given and the ones expected ----

CE = "cross_entropy"


def _ce_problem():
    model, (X, y) = _mlp(outputs=4), _data(outputs=4)
    return model, X, y


def _every_entry_point(model, loss, X, y):
    """loss_gradient and the helpers the flows use (gradient, HVP, (g, Hg), L) on (X, y)."""
    theta = flat_parameters(model)
    return [
        lambda: loss_gradient(model, loss, X, y),
        lambda: loss_gradient(model, loss, X, y, batch_size=7),
        lambda: gradient(model, loss, X, y),
        lambda: hessian_vector_product(model, loss, X, y, theta),
        lambda: hessian_gradient(model, loss, X, y),
        lambda: loss_value(model, loss, X, y),
    ]


def _assert_all_reject(calls, pattern):
    for call in calls:
        with pytest.raises(ValueError, match=pattern):
            call()


def test_float_class_labels_are_rejected_not_truncated():
    model, X, y = _ce_problem()
    soft = torch.full((40,), 0.9, dtype=torch.float64)  # would become class 0 under .long()
    pattern = r"y has dtype torch.float64: cross_entropy takes integer class indices of shape "
    pattern += r"\(40,\).*0.9 to class 0"
    _assert_all_reject(_every_entry_point(model, CE, X, soft), pattern)
    # whole-number floats too: the caller converts explicitly
    _assert_all_reject(_every_entry_point(model, CE, X, y.double()), r"y has dtype torch.float64")


def test_column_labels_are_rejected_with_the_shape_expected():
    model, X, y = _ce_problem()
    pattern = r"y of shape \(40, 1\) \(torch.int64\): cross_entropy takes integer class indices "
    pattern += r"of shape \(40,\); pass y.reshape\(-1\)"
    _assert_all_reject(_every_entry_point(model, CE, X, y[:, None]), pattern)


def test_soft_labels_are_rejected_for_cross_entropy():
    model, X, y = _ce_problem()
    probabilities = torch.nn.functional.one_hot(y, 4).double()
    pattern = r"y of shape \(40, 4\) \(torch.float64\) looks like soft labels.*does not support"
    _assert_all_reject(_every_entry_point(model, CE, X, probabilities), pattern)


def test_class_labels_outside_the_model_outputs_are_rejected():
    model, X, y = _ce_problem()
    y = y.clone()
    y[3] = 4
    pattern = r"y holds class label 4 but the model has 4 outputs; .* in 0..3"
    _assert_all_reject(_every_entry_point(model, CE, X, y), pattern)
    y[3] = -1
    _assert_all_reject(_every_entry_point(model, CE, X, y), r"class label -1 but")


def test_an_input_width_that_does_not_fit_the_model_is_rejected():
    model, X, y = _ce_problem()
    wide = torch.cat([X, X[:, :1]], dim=1)
    pattern = r"X of shape \(40, 4\) does not fit the model: its first layer Linear\("
    pattern += r"in_features=3.*expects inputs of shape \(n, 3\)"
    _assert_all_reject(_every_entry_point(model, CE, wide, y), pattern)


def test_integer_inputs_are_rejected_naming_the_dtypes():
    model, X, y = _ce_problem()
    pixels = (X * 100).to(torch.uint8)
    pattern = r"X has dtype torch.uint8 but the model's first layer Linear computes in "
    pattern += r"torch.float64; pass floating-point inputs"
    _assert_all_reject(_every_entry_point(model, CE, pixels, y), pattern)


def test_mismatched_rows_are_rejected_by_every_entry_point():
    model, X, y = _ce_problem()
    pattern = r"X of shape \(40, 3\) has 40 rows but y of shape \(38,\) has 38; they must match"
    _assert_all_reject(_every_entry_point(model, CE, X, y[:-2]), pattern)
    model, (X, y) = _mlp(), _data()
    _assert_all_reject(_every_entry_point(model, "mse", X[:-1], y), r"has 39 rows but y of shape")


def test_mse_keeps_real_valued_and_column_targets():
    model, (X, y) = _mlp(), _data()
    flat = loss_gradient(model, "mse", X, y)
    torch.testing.assert_close(loss_gradient(model, "mse", X, y[:, None]), flat)
    assert float(flat.abs().sum()) > 0
