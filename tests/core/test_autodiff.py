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
    with pytest.raises(ValueError, match="X has 40 rows but y has 39"):
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
