"""core.igr: Eq. 6 (IGR) against the exact flow, and the GradNormSquared family."""

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from gradmatch.core.autodiff import flat_parameters
from gradmatch.core.estimators import match_gradients
from gradmatch.core.igr import estimate_igr, fit_igr
from gradmatch.core.regularizers import GradNormSquared


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


def test_igr_fit_reports_n_params_and_rejects_a_bad_step():
    model, (X, y) = _mlp(), _data()
    fit = estimate_igr(model, "mse", X, y, 0.05, probe_steps=2)
    assert fit.n_params == flat_parameters(model).size and fit.probe_steps == 2
    with pytest.raises(ValueError, match="lr \\(the step size η\\) must be finite and > 0"):
        estimate_igr(model, "mse", X, y, 0.0)
