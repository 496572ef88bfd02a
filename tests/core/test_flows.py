"""flows: loss gradients (Appendix D), double-backprop HVPs, RK4 flows, and Eq. 6 (IGR)."""

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from gradmatch import GradNormSquared, flat_parameters, loss_gradient, match_gradients
from gradmatch.flows import (
    estimate_igr,
    fit_igr,
    gradient,
    gradient_flow,
    hessian_gradient,
    hessian_vector_product,
    modified_flow,
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


def _quadratic(n=60, p=4, seed=2):
    """Linear model without bias + MSE: L = (1/n)‖y − Xθ‖², ∇L = A(θ − θ*), A = 2XᵀX/n."""
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, p, generator=generator, dtype=torch.float64)
    y = X @ torch.randn(p, generator=generator, dtype=torch.float64) + 0.3 * torch.randn(
        n, generator=generator, dtype=torch.float64
    )
    model = torch.nn.Linear(p, 1, bias=False).double()
    Xn, yn = X.numpy(), y.numpy()
    hessian = 2 * Xn.T @ Xn / n
    minimiser = np.linalg.solve(Xn.T @ Xn, Xn.T @ yn)
    return model, X, y, hessian, minimiser


@pytest.mark.parametrize(("time", "substeps"), [(0.1, 10), (2.0, 100)])
def test_rk4_gradient_flow_equals_matrix_exponential_solution(time, substeps):
    model, X, y, hessian, minimiser = _quadratic()
    start = flat_parameters(model)
    exact = minimiser + expm(-time * hessian) @ (start - minimiser)
    flowed = gradient_flow(model, "mse", X, y, time, substeps=substeps).numpy()
    assert np.max(np.abs(flowed - exact)) < 1e-8


def test_rk4_modified_flow_equals_matrix_exponential_solution():
    model, X, y, hessian, minimiser = _quadratic()
    start, lr, time = flat_parameters(model), 0.1, 0.5
    generator = hessian + 0.5 * lr * hessian @ hessian  # −∇L − (η/2)H∇L = −(A + ηA²/2)(θ − θ*)
    exact = minimiser + expm(-time * generator) @ (start - minimiser)
    flowed = modified_flow(model, "mse", X, y, time, lr, substeps=50).numpy()
    assert np.max(np.abs(flowed - exact)) < 1e-8


def _exact_igr(hessian, minimiser, start, lr, steps):
    """Eq. 6 with the exact flow e^{−ηA} on the quadratic, at the GD probe points."""
    products, residuals, theta = [], [], start.copy()
    for _ in range(steps):
        offset = theta - minimiser
        grad = hessian @ offset
        flow = (expm(-lr * hessian) - np.eye(len(offset))) @ offset
        products.append(hessian @ grad)
        residuals.append((flow + lr * grad) / lr)
        theta = theta - lr * grad
    return fit_igr(np.array(products), np.array(residuals))


def test_estimate_igr_matches_the_exact_flow_and_recovers_eta_p_over_4_to_first_order():
    model, X, y, hessian, minimiser = _quadratic()
    start, p = flat_parameters(model), hessian.shape[0]
    relative_errors = []
    for lr in (0.02, 0.01):
        fit = estimate_igr(model, "mse", X, y, lr, probe_steps=5, substeps=10)
        exact_lambda, exact_ratio = _exact_igr(hessian, minimiser, start, lr, 5)
        assert fit.lambda_hat == pytest.approx(exact_lambda, rel=1e-8)
        assert fit.residual_ratio == pytest.approx(exact_ratio, rel=1e-5)
        assert fit.lambda_theory == pytest.approx(lr * p / 4)
        relative_errors.append(abs(fit.lambda_hat / fit.lambda_theory - 1))
    # r = (η/2)Hg − (η²/6)H²g + O(η³): the relative error is O(η‖H‖) and halves with η.
    largest_curvature = np.linalg.eigvalsh(hessian).max()
    assert relative_errors[0] < 0.02 * largest_curvature / 3 * 1.01
    assert relative_errors[0] / relative_errors[1] == pytest.approx(2.0, rel=0.05)


def test_grad_norm_squared_family_reproduces_the_closed_form_estimate():
    model, (X, y) = _mlp(), _data()
    lr = 0.05
    fit = estimate_igr(model, "mse", X, y, lr, probe_steps=1, keep_vectors=True)
    family = GradNormSquared(model, "mse", X, y)
    matched = match_gradients(family, flat_parameters(model), fit.residuals[0])
    assert matched.params["lambda"] == pytest.approx(fit.lambda_hat, rel=1e-10)
    assert matched.residual_ratio == pytest.approx(fit.residual_ratio, rel=1e-8)


def test_float32_data_follow_a_float64_model():
    model, (X, y) = _mlp(), _data()
    result = loss_gradient(model, "mse", X.float(), y.float())
    torch.testing.assert_close(result, loss_gradient(model, "mse", X, y), rtol=1e-6, atol=1e-8)
