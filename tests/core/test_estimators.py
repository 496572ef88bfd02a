"""match_gradients / match_trajectory: exact recovery, the authors' Adam procedure, bad input."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import ElasticNet as SklearnElasticNet

from gradmatch import (
    AdamOptions,
    DiagQuadratic,
    ElasticNet,
    Ridge,
    SymQuadratic,
    match_gradients,
    match_trajectory,
)
from gradmatch.core.estimators import UnderdeterminedWarning


def _regression(n=200, p=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X @ rng.normal(scale=2.0, size=p) + rng.normal(size=n)
    return X, y


def _mse_target(X, y, theta):
    """−∇ of the mean squared error without ½: (2/n) Xᵀ(y − Xθ)."""
    return 2.0 / X.shape[0] * X.T @ (y - X @ theta)


def test_ridge_lambda_recovered_from_closed_form_solution():
    X, y = _regression()
    n, p = X.shape
    true_lambda = 0.37
    theta = np.linalg.solve(X.T @ X + n * true_lambda * np.eye(p), X.T @ y)
    fit = match_gradients(Ridge(), theta, _mse_target(X, y, theta))
    assert abs(fit.params["lambda"] - true_lambda) / true_lambda < 1e-10
    assert fit.residual_ratio < 1e-10
    assert fit.cosine == pytest.approx(1.0, abs=1e-12)
    assert (fit.n_equations, fit.n_unknowns) == (p, 1)


def test_sklearn_elastic_net_scales_recovered_on_nonzero_coefficients():
    # sklearn: (1/(2n))‖y − Xw‖² + alpha·l1_ratio‖w‖₁ + ½alpha(1 − l1_ratio)‖w‖². Times 2 this is
    # our MSE (no ½) + 2·alpha·l1_ratio‖w‖₁ + alpha(1 − l1_ratio)‖w‖², so λ1 = 2·alpha·l1_ratio
    # and λ2 = alpha·(1 − l1_ratio) (see gradmatch.ElasticNet).
    X, y = _regression(n=300, p=12, seed=3)
    alpha, l1_ratio = 0.4, 0.6
    model = SklearnElasticNet(
        alpha=alpha, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-14, max_iter=1_000_000
    ).fit(X, y)
    w = model.coef_
    nonzero = w != 0
    assert 2 <= nonzero.sum() < w.size  # some coefficients are exactly zero
    target = _mse_target(X, y, w)
    fit = match_gradients(ElasticNet(beta=1e-9), w[nonzero], target[nonzero])
    assert fit.params["lambda_l1"] / 2 == pytest.approx(alpha * l1_ratio, rel=1e-4)
    assert fit.params["lambda_l2"] == pytest.approx(alpha * (1 - l1_ratio), rel=1e-4)


def _elastic_net_problem(p=400, seed=1, noise=0.0):
    """A well-conditioned elastic-net matching problem with λ = (0.5, 2.0)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=p)
    family = ElasticNet(beta=1e-3)
    target = family.design(theta) @ np.array([0.5, 2.0]) + noise * rng.normal(size=p)
    return family, theta, target


def test_adam_agrees_with_lstsq_within_one_percent():
    family, theta, target = _elastic_net_problem(noise=1e-2)
    exact = match_gradients(family, theta, target, method="lstsq")
    authors = AdamOptions(lr=1e-2, max_epochs=1000, patience=50)  # the Fig. 3 fit (H.2)
    fitted = match_gradients(family, theta, target, method="adam", adam=authors)
    for name in family.names:
        assert fitted.params[name] == pytest.approx(exact.params[name], rel=0.01)
    assert fitted.loss >= exact.loss * (1 - 1e-12)
    assert fitted.epochs == len(fitted.history)


def test_normalize_gives_the_same_lambda():
    family, theta, target = _elastic_net_problem(noise=1e-2)
    plain = match_gradients(family, theta, target)
    normalized = match_gradients(family, theta, target, normalize=True)
    adam = match_gradients(
        family, theta, target, method="adam", normalize=True, adam={"lr": 0.05, "max_epochs": 5000}
    )
    for name in family.names:
        assert normalized.params[name] == pytest.approx(plain.params[name], rel=1e-10)
        assert adam.params[name] == pytest.approx(plain.params[name], rel=0.01)


def test_nnls_clips_a_negative_scale_to_zero():
    rng = np.random.default_rng(2)
    theta = rng.normal(size=50)
    family = ElasticNet(beta=1e-6)
    target = family.design(theta) @ np.array([0.3, -0.05])
    assert match_gradients(family, theta, target).params["lambda_l2"] == pytest.approx(-0.05)
    fit = match_gradients(family, theta, target, method="nnls")
    assert fit.params["lambda_l2"] == 0.0
    l1_column = family.design(theta)[:, 0]
    l1_only = l1_column @ target / (l1_column @ l1_column)
    assert l1_only > 0
    assert fit.params["lambda_l1"] == pytest.approx(l1_only, rel=1e-12)


def test_stochastic_adam_uses_one_target_per_step_and_stops_early():
    family, theta, target = _elastic_net_problem()
    rng = np.random.default_rng(5)
    noise = rng.normal(scale=0.2 * np.abs(target).mean(), size=(4, theta.size))
    noise -= noise.mean(axis=0)  # the batch targets average to the full target
    epochs_seen, last_batch = [], []

    def target_batches(epoch):  # a shuffled loader: a new batch order each epoch
        epochs_seen.append(epoch)
        order = np.random.default_rng(epoch).permutation(len(noise))
        last_batch.append(order[-1])
        return [target + noise[index] for index in order]

    options = AdamOptions(lr=1e-2, max_epochs=2000, patience=20, plateau_factor=0.5)
    fit = match_gradients(
        family, theta, target, method="adam", adam=options, target_batches=target_batches
    )
    assert epochs_seen == list(range(fit.epochs))
    assert fit.epochs < 2000
    assert fit.params["lambda_l2"] == pytest.approx(2.0, rel=0.01)
    last_target = target + noise[last_batch[-1]]
    last_batch_loss = np.mean((family.design(theta) @ fit.coefficients - last_target) ** 2)
    assert fit.history[-1] == pytest.approx(last_batch_loss, rel=0.05)


def test_diag_quadratic_adam_is_fitted_unconstrained():
    rng = np.random.default_rng(4)
    theta = rng.normal(size=5)
    q = np.array([0.5, -0.2, 1.0, 0.1, 0.0])
    target = 2 * q * theta
    exact = match_gradients(DiagQuadratic(), theta, target)
    np.testing.assert_allclose(exact.params["q"], q, rtol=1e-12, atol=1e-14)
    fitted = match_gradients(
        DiagQuadratic(), theta, target, method="adam", adam=AdamOptions(lr=1e-2, max_epochs=5000)
    )
    np.testing.assert_allclose(fitted.params["q"], q, atol=1e-3)


def test_trajectory_recovers_explicit_ridge_of_gradient_descent():
    X, y = _regression(n=100, p=5)
    true_lambda, lr = 0.2, 0.05
    thetas = [np.zeros(5)]
    for _ in range(30):
        theta = thetas[-1]
        thetas.append(theta - lr * (-_mse_target(X, y, theta) + 2 * true_lambda * theta))
    path = np.array(thetas)
    grads = np.array([-_mse_target(X, y, theta) for theta in path[:-1]])
    fit = match_trajectory(Ridge(), path[:-1], np.diff(path, axis=0), grads, lr)
    assert fit.params["lambda"] == pytest.approx(true_lambda, rel=1e-10)
    assert fit.n_equations == 150


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match=r"theta has shape \(3,\) but target has shape \(4,\)"):
        match_gradients(Ridge(), np.ones(3), np.ones(4))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_is_rejected(bad):
    values = np.ones(3)
    values[1] = bad
    with pytest.raises(ValueError, match="target contains 1 NaN or inf"):
        match_gradients(Ridge(), np.ones(3), values)
    with pytest.raises(ValueError, match="theta contains 1 NaN or inf"):
        match_gradients(Ridge(), values, np.ones(3))


def _symmetric_problem(m, p=10, seed=0):
    rng = np.random.default_rng(seed)
    symmetric = rng.normal(size=(p, p))
    symmetric += symmetric.T
    theta = rng.normal(size=(m, p))
    return symmetric, theta, 2 * theta @ symmetric


@pytest.mark.parametrize("m", [2, 6, 9])
def test_sym_quadratic_below_p_endpoints_is_judged_by_rank_not_by_counting(m):
    # m·p >= 55 equations from m = 6 on, yet the rank is 55 − (p − m)(p − m + 1)/2 < 55
    _, theta, target = _symmetric_problem(m)
    rank = 55 - (10 - m) * (10 - m + 1) // 2
    with pytest.raises(
        ValueError, match=rf"rank {rank} < 55 unknowns .* needs m ≥ p = 10 linearly independent"
    ):
        match_gradients(SymQuadratic(), theta, target)
    with pytest.warns(UnderdeterminedWarning, match=rf"{m} endpoint\(s\) .* rank {rank} < 55"):
        fit = match_gradients(SymQuadratic(), theta, target, allow_underdetermined=True)
    assert (fit.rank, fit.rank_deficiency) == (rank, 55 - rank)
    assert fit.residual_ratio < 1e-10  # the minimum-norm solution solves a consistent system
    design = np.vstack([SymQuadratic().design(row) for row in theta])
    minimum_norm = np.linalg.pinv(design) @ target.reshape(-1)
    np.testing.assert_allclose(fit.coefficients, minimum_norm, atol=1e-10)


def test_sym_quadratic_from_p_endpoints_is_exact_and_silent():
    symmetric, theta, target = _symmetric_problem(10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = match_gradients(SymQuadratic(), theta, target)
    assert (fit.rank, fit.rank_deficiency) == (55, 0)
    np.testing.assert_allclose(fit.params["Q"], symmetric, rtol=1e-9)


def test_elastic_net_inside_the_smoothing_zone_names_beta():
    theta = np.linspace(-0.5, 0.5, 20) * 1e-3
    family = ElasticNet(beta=1e-2)
    target = family.design(theta) @ np.array([0.3, 0.1])
    with pytest.raises(ValueError, match=r"rank 1 < 2 unknowns .* needs some \|θ_j\| ≥ β = 0.01"):
        match_gradients(family, theta, target)


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match=r"method must be one of \['lstsq', 'nnls', 'adam'\]"):
        match_gradients(Ridge(), np.ones(3), np.ones(3), method="sgd")


def test_unknown_adam_option_and_misplaced_target_batches_are_rejected():
    with pytest.raises(ValueError, match=r"unknown adam option\(s\) \['epochs'\]"):
        match_gradients(Ridge(), np.ones(3), np.ones(3), method="adam", adam={"epochs": 3})
    with pytest.raises(ValueError, match="target_batches needs method='adam'"):
        match_gradients(Ridge(), np.ones(3), np.ones(3), target_batches=lambda epoch: [])


def test_a_non_finite_batch_target_is_rejected():
    family, theta, target = _elastic_net_problem(p=20)
    bad = target.copy()
    bad[3] = np.nan
    with pytest.raises(
        ValueError, match="target_batches yielded a target with NaN or inf at epoch 0"
    ):
        match_gradients(family, theta, target, method="adam", target_batches=lambda epoch: [bad])


# ---- structured solvers and torch inputs (issue 16 item 3) -------------------------------------


def _dense_lstsq(family, thetas, targets):
    design = np.vstack([family.design(row) for row in np.atleast_2d(thetas)])
    return np.linalg.lstsq(design, np.asarray(targets).reshape(-1), rcond=None)[0]


def test_diag_quadratic_closed_form_equals_dense_lstsq_with_an_unidentified_coordinate():
    rng = np.random.default_rng(7)
    thetas = rng.normal(size=(3, 6))
    thetas[:, 2] = 0.0  # zero in every endpoint: not identified, minimum norm q_2 = 0
    targets = rng.normal(size=(3, 6))
    with pytest.raises(ValueError, match=r"rank 5 < 6 unknowns .* θ_kj ≠ 0 in at least one"):
        match_gradients(DiagQuadratic(), thetas, targets)
    with pytest.warns(UnderdeterminedWarning):
        fit = match_gradients(DiagQuadratic(), thetas, targets, allow_underdetermined=True)
    np.testing.assert_allclose(fit.coefficients, _dense_lstsq(DiagQuadratic(), thetas, targets))
    assert fit.params["q"][2] == 0.0 and np.isnan(fit.stderr[2])
    design = np.vstack([DiagQuadratic().design(row) for row in thetas])
    residual = design @ fit.coefficients - targets.reshape(-1)
    assert fit.loss == pytest.approx(np.mean(residual**2), rel=1e-12)


def test_diag_quadratic_nnls_clips_each_coordinate():
    theta = np.array([1.0, -2.0, 0.5])
    target = 2 * np.array([0.3, -0.4, 0.1]) * theta
    fit = match_gradients(DiagQuadratic(), theta, target, method="nnls")
    np.testing.assert_allclose(fit.params["q"], [0.3, 0.0, 0.1], atol=1e-15)


def test_sym_quadratic_structured_solve_equals_dense_lstsq_with_noise():
    rng = np.random.default_rng(8)
    thetas, targets = rng.normal(size=(15, 7)), rng.normal(size=(15, 7))
    fit = match_gradients(SymQuadratic(), thetas, targets)
    np.testing.assert_allclose(
        fit.coefficients, _dense_lstsq(SymQuadratic(), thetas, targets), rtol=1e-10, atol=1e-12
    )
    matrix = fit.params["Q"]
    np.testing.assert_array_equal(matrix, matrix.T)
    assert fit.loss == pytest.approx(np.mean((2 * thetas @ matrix - targets) ** 2), rel=1e-12)


@pytest.mark.parametrize("family", [Ridge(), ElasticNet(beta=0.05), DiagQuadratic()])
def test_torch_inputs_stay_torch_and_agree_with_numpy(family):
    rng = np.random.default_rng(9)
    thetas, targets = rng.normal(size=(2, 300)), rng.normal(size=(2, 300))
    host = match_gradients(family, thetas, targets)
    device = match_gradients(family, torch.from_numpy(thetas), torch.from_numpy(targets))
    coefficients = device.coefficients
    if isinstance(family, DiagQuadratic):  # p coefficients stay on the inputs' device
        assert isinstance(coefficients, torch.Tensor) and coefficients.dtype == torch.float64
        coefficients = coefficients.numpy()
    np.testing.assert_allclose(coefficients, host.coefficients, rtol=1e-10)
    for name in ("loss", "residual_ratio", "cosine"):
        assert getattr(device, name) == pytest.approx(getattr(host, name), rel=1e-10)
    assert device.rank == host.rank


def test_float32_torch_inputs_accumulate_in_float64():
    rng = np.random.default_rng(10)
    theta = torch.from_numpy(rng.normal(size=50_000)).float()
    target = 2 * 0.123 * theta.double() + 1e-4 * torch.from_numpy(rng.normal(size=50_000))
    fit = match_gradients(Ridge(), theta, target.float())
    exact = float(theta.double() @ target.float().double() / (2 * theta.double() @ theta.double()))
    assert fit.params["lambda"] == pytest.approx(exact, rel=1e-12)


def test_adam_refuses_a_design_too_large_to_form():
    theta = np.ones(10_000)
    with pytest.raises(
        ValueError, match=r"needs the dense design of 10000 x 10000 = 1e\+08 entries \(limit"
    ):
        match_gradients(DiagQuadratic(), theta, theta, method="adam")
