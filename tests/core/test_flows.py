"""flows: RK4 gradient flow and modified flow against the matrix-exponential solution."""

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from gradmatch.core.autodiff import flat_parameters
from gradmatch.core.flows import gradient_flow, modified_flow, rk4


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


def test_rk4_integrates_a_scalar_exponential_to_fourth_order():
    start = torch.tensor([1.0], dtype=torch.float64)
    errors = [
        abs(float(rk4(lambda x: -x, start, 1.0, k)[0]) - (np.exp(-1.0) - 1.0)) for k in (16, 32)
    ]
    assert errors[0] / errors[1] == pytest.approx(16.0, rel=0.1)
    with pytest.raises(ValueError, match="substeps must be an integer >= 1"):
        rk4(lambda x: -x, start, 1.0, 0)
