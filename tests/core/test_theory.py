"""Eq. 5 (Ali et al.): Λ_t recovered by gradient matching, and θ̂_t reproduced by retraining."""

import numpy as np
import pytest

from gradmatch import DiagQuadratic, SymQuadratic, match_gradients
from gradmatch.core.theory import (
    early_stopping_penalty,
    gradient_descent_path,
    linear_mse_target,
    penalized_least_squares,
)

N, P, STEP_SIZE, STEPS = 1000, 10, 0.01, 500  # the Fig. 4 setting (paper H.3)


def _design(seed=56):
    return np.random.default_rng(seed).normal(size=(N, P))


def _endpoint(X, seed):
    """A fresh β and noise on the shared X, then t GD steps from 0."""
    rng = np.random.default_rng(seed)
    y = X @ (3.0 * rng.normal(size=P)) + rng.normal(size=N)
    return y, gradient_descent_path(X, y, STEPS, STEP_SIZE)[-1]


def test_gradient_descent_iterate_solves_the_penalized_problem():
    X = _design()
    y, theta = _endpoint(X, 0)
    penalty = early_stopping_penalty(X, STEPS, STEP_SIZE)
    np.testing.assert_allclose(penalized_least_squares(X, y, penalty), theta, rtol=1e-10)
    eigenvalues = np.linalg.eigvalsh(penalty)
    assert 0.002 < eigenvalues.min() < eigenvalues.max() < 0.02  # ≈ 0.003-0.014 (reference)


def _stacked_endpoints(X, m):
    endpoints = [_endpoint(X, 1000 + k) for k in range(m)]
    thetas = np.array([theta for _, theta in endpoints])
    targets = np.array([linear_mse_target(X, y, theta) for y, theta in endpoints])
    return thetas, targets


@pytest.mark.parametrize("m", [10, 12])
def test_full_penalty_recovered_from_m_endpoints_stopped_at_the_same_step(m):
    X = _design()
    fit = match_gradients(SymQuadratic(), *_stacked_endpoints(X, m))
    penalty = early_stopping_penalty(X, STEPS, STEP_SIZE)
    error = np.linalg.norm(fit.params["Q"] - penalty) / np.linalg.norm(penalty)
    assert error < 1e-8
    assert (fit.n_equations, fit.n_unknowns, fit.rank) == (m * P, 55, 55)


@pytest.mark.parametrize("m", [6, 9])
def test_fewer_than_p_endpoints_leave_the_penalty_unidentified(m):
    # m·p >= 55 equations, but a symmetric Q supported on the complement of span{θ_k} solves
    # the homogeneous system: rank = 55 − (p − m)(p − m + 1)/2, so m >= p endpoints are needed.
    fit = match_gradients(SymQuadratic(), *_stacked_endpoints(_design(), m))
    assert fit.rank == 55 - (P - m) * (P - m + 1) // 2


def test_single_endpoint_diagonal_fit_reproduces_the_endpoint_when_retrained():
    X = _design()
    y, theta = _endpoint(X, 7)
    fit = match_gradients(DiagQuadratic(), theta, linear_mse_target(X, y, theta))
    retrained = penalized_least_squares(X, y, fit.params["q"])
    assert np.linalg.norm(retrained - theta) / np.linalg.norm(theta) < 1e-10
    penalty = early_stopping_penalty(X, STEPS, STEP_SIZE)
    assert not np.allclose(np.diag(fit.params["q"]), penalty, rtol=0.05)  # differs from Λ_t


def test_one_step_penalty_is_about_one_over_step_size():
    penalty = early_stopping_penalty(_design(), 1, STEP_SIZE)
    # s/((1 − εs)^(−1) − 1) = (1 − εs)/ε ≈ 99 for s ≈ 1 (reference: Λ^(1) ≈ 99·I).
    assert np.all(np.abs(np.linalg.eigvalsh(penalty) - 99) < 0.5)


def test_step_size_beyond_stability_and_zero_steps_are_rejected():
    with pytest.raises(ValueError, match=r"step_size must lie in \(0, 1/s_max\)"):
        early_stopping_penalty(_design(), 10, 5.0)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        early_stopping_penalty(_design(), 0, STEP_SIZE)


def test_penalized_least_squares_rejects_a_wrong_penalty_shape():
    X = _design()
    with pytest.raises(ValueError, match=r"Q must be a scalar, shape \(10,\) or \(10, 10\)"):
        penalized_least_squares(X, np.zeros(N), np.ones((3, 3)))
