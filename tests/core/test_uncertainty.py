"""Standard errors and intervals of Fit: coverage in simulation, power, nnls/adam, bootstrap."""

import numpy as np
import pytest
import torch

from gradmatch import DiagQuadratic, ElasticNet, Ridge, SymQuadratic, match_gradients
from gradmatch.core.uncertainty import (
    HC1,
    Z95,
    bootstrap_batches,
    hc1,
    hc1_stderr,
    sandwich_or_reason,
)

TRUTH = np.array([0.5, 2.0])
REPETITIONS = 400


def _heteroskedastic_problem(p=500):
    """θ ~ N(0, I); b = A λ + ε with sd(ε_j) = 0.3 θ_j² (noise largest where leverage is)."""
    theta = np.random.default_rng(12345).normal(size=p)
    family = ElasticNet(beta=1e-3)
    design = family.design(theta)
    return family, theta, design, 0.3 * theta**2


def _draws():
    family, theta, design, noise_sd = _heteroskedastic_problem()
    for repetition in range(REPETITIONS):
        noise = np.random.default_rng(1000 + repetition).normal(size=theta.size)
        target = design @ TRUTH + noise_sd * noise
        yield design, target, match_gradients(family, theta, target)


def _coverage(stderr_of):
    """Fraction of repetitions whose ĉ ± 1.96·SE covers the truth, per coefficient."""
    hits = np.zeros(2)
    for design, target, fit in _draws():
        hits += np.abs(fit.coefficients - TRUTH) <= Z95 * stderr_of(design, target, fit)
    return hits / REPETITIONS


def _homoskedastic_stderr(design, target, fit):
    residual = design @ fit.coefficients - target
    variance = residual @ residual / (design.shape[0] - design.shape[1])
    return np.sqrt(variance * np.diag(np.linalg.inv(design.T @ design)))


def test_hc1_interval_covers_the_truth_in_90_to_98_percent():
    coverage = _coverage(lambda design, target, fit: fit.stderr)
    assert np.all((coverage >= 0.90) & (coverage <= 0.98)), coverage


@pytest.mark.parametrize(
    "wrong",
    [_homoskedastic_stderr, lambda design, target, fit: 0.5 * fit.stderr],
    ids=["homoskedastic", "half"],
)
def test_a_wrong_standard_error_falls_outside_the_band(wrong):
    # the coverage test has power: under this heteroskedasticity the classical SE, or half
    # the HC1 SE, covers far less often than 90 % (measured 0.60-0.87 and 0.63)
    coverage = _coverage(wrong)
    assert np.any(coverage < 0.90), coverage


def test_interval_and_stderr_by_name_and_the_stated_assumption():
    family, theta, design, noise_sd = _heteroskedastic_problem(p=100)
    target = design @ TRUTH + noise_sd * np.random.default_rng(0).normal(size=theta.size)
    fit = match_gradients(family, theta, target)
    assert fit.se_method == HC1 and "HC1" in HC1 and "independent" in HC1
    low, high = fit.interval
    np.testing.assert_allclose(high - low, 2 * Z95 * fit.stderr)
    assert fit.stderr_params["lambda_l2"] == pytest.approx(fit.stderr[1])
    assert fit.interval_params["lambda_l1"] == (pytest.approx(low[0]), pytest.approx(high[0]))
    residual = design @ fit.coefficients - target
    by_hand = np.linalg.inv(design.T @ design)
    by_hand = by_hand @ (design.T * residual**2) @ design @ by_hand * 100 / 98
    np.testing.assert_allclose(fit.stderr, np.sqrt(np.diag(by_hand)), rtol=1e-10)


@pytest.mark.parametrize("method", ["nnls", "adam"])
def test_nnls_and_adam_report_the_lstsq_sandwich_at_their_own_coefficients(method):
    family, theta, design, noise_sd = _heteroskedastic_problem(p=200)
    target = design @ TRUTH + noise_sd * np.random.default_rng(1).normal(size=theta.size)
    fit = match_gradients(family, theta, target, method=method)
    residual = design @ fit.coefficients - target
    meat = (design * residual[:, None] ** 2).T @ design
    expected = hc1_stderr(design.T @ design, meat, theta.size)
    np.testing.assert_allclose(fit.stderr, expected, rtol=1e-10)
    assert fit.se_method == HC1


def test_torch_inputs_give_the_same_standard_errors():
    family, theta, design, noise_sd = _heteroskedastic_problem(p=300)
    target = design @ TRUTH + noise_sd * np.random.default_rng(2).normal(size=theta.size)
    host = match_gradients(family, theta, target)
    device = match_gradients(family, torch.from_numpy(theta), torch.from_numpy(target))
    np.testing.assert_allclose(device.stderr, host.stderr, rtol=1e-9)
    np.testing.assert_allclose(device.coefficients, host.coefficients, rtol=1e-12)


def test_diag_quadratic_stderr_per_coordinate_and_nan_from_one_endpoint():
    rng = np.random.default_rng(3)
    thetas = rng.normal(size=(6, 4))
    q = np.array([0.2, -0.1, 0.5, 1.0])
    targets = 2 * q * thetas + 0.05 * rng.normal(size=thetas.shape)
    fit = match_gradients(DiagQuadratic(), thetas, targets)
    design = np.vstack([DiagQuadratic().design(row) for row in thetas])
    residual = design @ fit.coefficients - targets.reshape(-1)
    meat = (design * residual[:, None] ** 2).T @ design
    np.testing.assert_allclose(fit.stderr, hc1_stderr(design.T @ design, meat, 24), rtol=1e-10)
    single = match_gradients(DiagQuadratic(), thetas[0], targets[0])
    assert np.isnan(single.stderr).all() and "no residual degrees of freedom" in single.se_method


def test_sym_quadratic_stderr_matches_the_dense_sandwich():
    rng = np.random.default_rng(4)
    thetas, targets = rng.normal(size=(12, 4)), rng.normal(size=(12, 4))
    fit = match_gradients(SymQuadratic(), thetas, targets)
    design = np.vstack([SymQuadratic().design(row) for row in thetas])
    residual = design @ fit.coefficients - targets.reshape(-1)
    meat = (design * residual[:, None] ** 2).T @ design
    np.testing.assert_allclose(fit.stderr, hc1_stderr(design.T @ design, meat, 48), rtol=1e-8)


def test_bootstrap_over_batches_matches_the_spread_of_independent_batches():
    # 20 batch targets with independent heteroskedastic noise: the bootstrap SE of the mean
    # target's fit estimates the spread of that fit across fresh data
    family, theta, design, noise_sd = _heteroskedastic_problem(p=200)
    rng = np.random.default_rng(5)

    def batches():
        return [design @ TRUTH + 3 * noise_sd * rng.normal(size=theta.size) for _ in range(20)]

    spread = np.std(
        [
            match_gradients(family, theta, np.mean(batches(), axis=0)).coefficients
            for _ in range(200)
        ],
        axis=0,
        ddof=1,
    )
    boot = bootstrap_batches(family, theta, batches(), n_boot=300, seed=0)
    assert boot.replicates.shape == (300, 2)
    np.testing.assert_allclose(boot.stderr, spread, rtol=0.3)
    assert np.all(boot.low < boot.high)
    with pytest.raises(ValueError, match="at least 2 batch targets"):
        bootstrap_batches(Ridge(), theta, [design[:, 1]])
    with pytest.raises(ValueError, match="batch_sizes must hold 20 positive sizes"):
        bootstrap_batches(family, theta, batches(), batch_sizes=[1, 2])


def test_a_numerically_singular_gram_gives_nan_errors_with_the_reason():
    from gradmatch.core.uncertainty import hc1

    gram = np.array([[1.0, 2.0], [2.0, 4.0]])  # exactly singular: LU has a zero pivot
    stderr, method = hc1(gram, gram, 10)
    assert np.isnan(stderr).all() and method == "not available: AᵀA is numerically singular"
    stderr, method = hc1(np.eye(2), np.eye(2), 10)
    assert method == HC1 and np.allclose(stderr, np.sqrt(10 / 8))


def test_every_fit_decides_standard_errors_by_one_rule():
    """Rank < k: not identified; N <= k: no degrees of freedom; both before any moment is
    computed; else HC1 of the moments. The dense, normal-equations and SymQuadratic fits agree."""

    def never():
        raise AssertionError("the moments were computed for an unavailable standard error")

    deficient, reason = sandwich_or_reason(10, 3, 2, never)
    assert np.isnan(deficient).all() and "not identified (rank 2 < k = 3)" in reason
    exact, reason = sandwich_or_reason(3, 3, 3, never)
    assert np.isnan(exact).all() and "no residual degrees of freedom (N = 3 <= k = 3)" in reason
    design = np.random.default_rng(0).normal(size=(20, 2))
    residual = np.random.default_rng(1).normal(size=20)
    moments = design.T @ design, (design * residual[:, None] ** 2).T @ design
    full, method = sandwich_or_reason(20, 2, 2, lambda: moments)
    np.testing.assert_array_equal(full, hc1(*moments, 20)[0])
    assert method == HC1
    theta = np.random.default_rng(2).normal(size=(1, 2))
    target = np.random.default_rng(3).normal(size=(1, 2))
    with pytest.warns(UserWarning, match="not identified"):
        symmetric = match_gradients(SymQuadratic(), theta, target, allow_underdetermined=True)
    for fit in (
        match_gradients(ElasticNet(beta=1e-3), theta, target),
        match_gradients(ElasticNet(beta=1e-3), torch.as_tensor(theta), torch.as_tensor(target)),
        symmetric,
    ):
        assert np.isnan(fit.stderr).all() and fit.se_method.startswith("not available: ")


def test_effective_parameter_count_is_n_for_uncorrelated_errors_and_doubles_with_endpoints():
    from gradmatch.core.uncertainty import effective_parameter_count

    rng = np.random.default_rng(3)
    design = rng.normal(size=(60, 2))
    n_eff, kappa = effective_parameter_count(design, rng.normal(size=(20000, 60)))
    assert abs(kappa - 1) < 0.05 and abs(n_eff - 60) < 3
    stacked = np.vstack([design, rng.normal(size=(60, 2))])  # a second, independent endpoint
    n_eff_2, _ = effective_parameter_count(stacked, rng.normal(size=(20000, 120)))
    assert abs(n_eff_2 / n_eff - 2) < 0.1


def test_errors_aligned_with_the_design_inflate_kappa():
    from gradmatch.core.uncertainty import effective_parameter_count

    rng = np.random.default_rng(4)
    design = rng.normal(size=(60, 2))
    direction = design[:, 0] / np.linalg.norm(design[:, 0])
    errors = rng.normal(size=(20000, 60)) + 5.0 * rng.normal(size=(20000, 1)) * direction
    n_eff, kappa = effective_parameter_count(design, errors)
    # unit mean variance: tr C = 60 with 25 of it along `direction`, so κ ≈ 60·26/85 ≈ 18.4
    assert abs(kappa - 60 * 26 / 85) < 1.0 and n_eff < 60 / 15
    orthogonal = rng.normal(size=60)
    orthogonal -= design @ np.linalg.lstsq(design, orthogonal, rcond=None)[0]
    orthogonal /= np.linalg.norm(orthogonal)
    errors = rng.normal(size=(20000, 60)) + 5.0 * rng.normal(size=(20000, 1)) * orthogonal
    _, kappa_outside = effective_parameter_count(design, errors)
    assert kappa_outside < 1  # noise outside the design's span does not inflate the error


def test_effective_parameter_count_names_bad_input():
    from gradmatch.core.uncertainty import effective_parameter_count

    with pytest.raises(ValueError, match="error_samples must be"):
        effective_parameter_count(np.ones((5, 1)), np.ones((1, 5)))
    with pytest.raises(ValueError, match="no variance"):
        effective_parameter_count(np.ones((5, 1)), np.ones((3, 5)))
