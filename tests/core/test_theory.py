"""Eq. 5 (Ali et al.): Λ_t recovered by gradient matching, and θ̂_t reproduced by retraining."""

import numpy as np
import pytest

from gradmatch import DiagQuadratic, SymQuadratic, match_gradients
from gradmatch.core.theory import (
    early_stopping_penalty,
    early_stopping_steps,
    gd_iterate,
    gd_path,
    gradient_descent_path,
    gram,
    linear_mse_target,
    moment,
    mse_path,
    mse_target,
    penalized_least_squares,
    resampled_grams,
    resampled_moments,
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
    with pytest.raises(ValueError, match=r"needs m ≥ p = 10"):
        match_gradients(SymQuadratic(), *_stacked_endpoints(_design(), m))
    with pytest.warns(UserWarning, match=r"not identified"):
        fit = match_gradients(
            SymQuadratic(), *_stacked_endpoints(_design(), m), allow_underdetermined=True
        )
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


# ---------------------------------------------------------------- GD in the moment form


def _residual_form_gd(X, y, steps, step_size):
    """θ_{t+1} = θ_t + εXᵀ(y − Xθ_t)/n written directly on the residuals."""
    theta, path = np.zeros(X.shape[1]), [np.zeros(X.shape[1])]
    for _ in range(steps):
        theta = theta + step_size * X.T @ (y - X @ theta) / X.shape[0]
        path.append(theta)
    return np.array(path)


def test_batched_gd_is_gd_on_the_residuals_for_each_response():
    X = _design()
    ys = [_endpoint(X, seed)[0] for seed in (1, 2, 3)]
    path = gd_path(gram(X), np.stack([moment(X, y) for y in ys]), 300, STEP_SIZE)
    assert path.shape == (301, 3, P)
    for k, y in enumerate(ys):
        np.testing.assert_allclose(path[:, k], _residual_form_gd(X, y, 300, STEP_SIZE), atol=1e-12)
        single = gradient_descent_path(X, y, 300, STEP_SIZE)
        np.testing.assert_allclose(path[:, k], single, rtol=0, atol=1e-12)
    iterate = gd_iterate(gram(X), np.stack([moment(X, y) for y in ys]), 300, STEP_SIZE)
    np.testing.assert_array_equal(iterate, path[-1])


def test_gd_from_a_start_point_and_its_target():
    X = _design()
    y, _ = _endpoint(X, 4)
    start = np.linspace(-1, 1, P)
    path = gradient_descent_path(X, y, 5, STEP_SIZE, theta0=start)
    np.testing.assert_array_equal(path[0], start)
    expected = path[0] + STEP_SIZE * X.T @ (y - X @ path[0]) / N
    np.testing.assert_allclose(path[1], expected, atol=1e-12)
    target = linear_mse_target(X, y, path[1])
    np.testing.assert_allclose(target, 2 / N * X.T @ (y - X @ path[1]), atol=1e-12)
    np.testing.assert_array_equal(target, mse_target(gram(X), moment(X, y), path[1]))


def test_resampled_moments_are_the_moments_of_the_resampled_rows():
    X = _design()
    y, _ = _endpoint(X, 5)
    rows = np.random.default_rng(0).integers(0, N, size=(2, N))
    counts = np.stack([np.bincount(r, minlength=N) for r in rows])
    grams, moments = resampled_grams(counts, X), resampled_moments(counts, X, y)
    for k, r in enumerate(rows):
        np.testing.assert_allclose(grams[k], gram(X[r]), atol=1e-12)
        np.testing.assert_allclose(moments[k], moment(X[r], y[r]), atol=1e-12)
    # batched over (K, p, p) grams: each resample's own GD and target
    thetas = gd_iterate(grams, moments, 50, STEP_SIZE)
    for k, r in enumerate(rows):
        np.testing.assert_allclose(thetas[k], gradient_descent_path(X[r], y[r], 50, STEP_SIZE)[-1])
    np.testing.assert_allclose(
        mse_target(grams, moments, thetas)[1], linear_mse_target(X[rows[1]], y[rows[1]], thetas[1])
    )


def test_mse_path_equals_the_residual_form():
    X = _design()
    ys = np.stack([_endpoint(X, seed)[0] for seed in (6, 7)])
    path = gd_path(gram(X), np.stack([moment(X, y) for y in ys]), 200, STEP_SIZE)
    losses = mse_path(path, X, ys)
    for k in range(2):
        direct = np.mean((ys[k][None, :] - path[:, k] @ X.T) ** 2, axis=1)
        np.testing.assert_allclose(losses[:, k], direct, rtol=1e-12)
    assert np.all(np.diff(losses, axis=0) < 0)


def test_replay_stops_after_patience_epochs_without_improvement():
    losses = np.array([5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0])
    # epochs 0 and 1 improve; epochs 2, 3, 4 do not; patience 3 fires at the end of epoch 4
    assert early_stopping_steps(losses, patience=3, min_delta=0.0) == 5
    decreasing = 1.0 - 4e-4 * np.arange(30)
    # each step improves by 4e-4 < min_delta 1e-3: epochs 1 and 2 fail, patience 2 fires at epoch 2
    assert early_stopping_steps(decreasing, patience=2, min_delta=1e-3) == 3
    assert early_stopping_steps(decreasing, patience=3, min_delta=1e-3) == 29
    assert early_stopping_steps(decreasing, patience=2, min_delta=0.0) == 29
    batched = early_stopping_steps(np.column_stack([losses[:8], decreasing[:8]]), 3, 0.0)
    np.testing.assert_array_equal(batched, [5, 7])


@pytest.mark.parametrize(("m", "rank"), [(1, 10), (6, 45), (9, 54), (10, 55)])
def test_symmetric_design_rank_is_55_minus_free_directions(m, rank):
    thetas = np.random.default_rng(0).standard_normal((m, 10))
    design = np.vstack([SymQuadratic().design(theta) for theta in thetas])
    assert np.linalg.matrix_rank(design) == rank == 55 - (10 - m) * (10 - m + 1) // 2
