"""Regularizer families: design matrices against finite differences of R and torch smooth_l1."""

import numpy as np
import pytest
import torch

from gradmatch.core.groups import ParameterGroups
from gradmatch.core.regularizers import (
    DiagQuadratic,
    ElasticNet,
    GradNormSquared,
    Ridge,
    SmoothL1,
    SymQuadratic,
)


def _params(family, p, rng):
    n = family.n_unknowns(p)
    return family.params(rng.uniform(0.5, 2.0, size=n), p)


def _finite_difference(family, theta, params, step=1e-6):
    grad = np.empty_like(theta)
    for j in range(theta.size):
        shift = np.zeros_like(theta)
        shift[j] = step
        grad[j] = (
            family.penalty(theta + shift, params) - family.penalty(theta - shift, params)
        ) / (2 * step)
    return grad


GROUPS = ParameterGroups.from_labels(["w", "w", "b", "w", "b", "b", "w"])


@pytest.mark.parametrize(
    "family",
    [
        Ridge(),
        SmoothL1(beta=0.3),
        ElasticNet(beta=0.3),
        DiagQuadratic(),
        SymQuadratic(),
        Ridge(groups=GROUPS),
        SmoothL1(beta=0.3, groups=GROUPS),
        ElasticNet(beta=0.3, groups=GROUPS),
    ],
    ids=repr,
)
def test_design_times_coefficients_is_the_gradient_of_the_penalty(family):
    rng = np.random.default_rng(0)
    theta = rng.normal(size=7)
    theta[0] = 0.1  # inside the quadratic zone of h_beta
    params = _params(family, theta.size, rng)
    analytic = family.design(theta) @ family.coefficients(params, theta.size)
    np.testing.assert_allclose(analytic, _finite_difference(family, theta, params), atol=1e-7)
    np.testing.assert_allclose(family.gradient(theta, params), analytic, rtol=1e-12)


def test_smooth_l1_matches_torch_smooth_l1_against_zero():
    theta = np.array([-2.0, -0.01, 0.0, 0.004, 0.5])
    beta = 0.05
    expected = torch.nn.functional.smooth_l1_loss(
        torch.tensor(theta), torch.zeros(5, dtype=torch.float64), beta=beta, reduction="sum"
    )
    assert SmoothL1(beta).penalty(theta, {"lambda": 1.0}) == pytest.approx(float(expected), 1e-14)


def test_sym_quadratic_params_round_trip_and_count():
    family = SymQuadratic()
    assert family.n_unknowns(10) == 55
    matrix = np.arange(16.0).reshape(4, 4)
    matrix = matrix + matrix.T
    coefficients = family.coefficients({"Q": matrix}, 4)
    np.testing.assert_array_equal(family.params(coefficients, 4)["Q"], matrix)


def test_grad_norm_squared_design_is_two_over_p_times_hessian_gradient():
    hg = np.array([1.0, -2.0, 4.0])
    np.testing.assert_allclose(
        GradNormSquared().design(np.zeros(3), hessian_gradient=hg)[:, 0], 2 / 3 * hg
    )
    with pytest.raises(ValueError, match="GradNormSquared"):
        GradNormSquared().design(np.zeros(3))


def test_negative_beta_is_rejected():
    with pytest.raises(ValueError, match="beta"):
        ElasticNet(beta=-1.0)


@pytest.mark.parametrize("family", [Ridge(groups=GROUPS), ElasticNet(beta=0.3, groups=GROUPS)])
def test_chunked_design_blocks_assemble_the_dense_design(family):
    theta = np.random.default_rng(1).normal(size=7)
    dense = np.zeros((7, family.n_unknowns(7)))
    for start, stop, columns, block in family.design_blocks(torch.from_numpy(theta), chunk=2):
        dense[start:stop, columns] += block.numpy()
    np.testing.assert_array_equal(dense, family.design(theta))
