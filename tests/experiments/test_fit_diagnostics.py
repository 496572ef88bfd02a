"""The fit diagnostics of Figs 3 and 5 (issue 15): stationarity of θ̂, Adam convergence."""

import numpy as np
import pytest

from gradmatch.core.adam import AdamOptions
from gradmatch.core.estimators import match_gradients
from gradmatch.core.regularizers import ElasticNet, Ridge
from gradmatch.experiments.dropout import adam_convergence
from gradmatch.experiments.elastic_net import stationarity


def test_lstsq_lambda1_is_the_truth_minus_the_noise_along_the_unique_l1_direction():
    rng = np.random.default_rng(0)
    theta = rng.normal(scale=0.01, size=400)
    family = ElasticNet(1e-3)
    lambda1, lambda2 = 1e-3, 1e-2
    noise = rng.normal(scale=1e-3, size=400)
    target = family.design(theta) @ np.array([lambda1, lambda2]) + noise  # −∇L = ∇R − ∇J
    row = stationarity(family, theta, target, lambda1, lambda2)
    fit = match_gradients(family, theta, target, method="lstsq")
    unique_norm = row["l1_unique_signal"] / lambda1
    expected = lambda1 - row["l1_unique_noise"] / unique_norm
    assert fit.params["lambda_l1"] == pytest.approx(expected, rel=1e-9)
    assert row["grad_objective_norm"] == pytest.approx(np.linalg.norm(noise), rel=1e-12)
    assert row["share_inside_beta"] == pytest.approx(np.mean(np.abs(theta) < 1e-3))
    assert row["l2_signal_norm"] == pytest.approx(lambda2 * 2 * np.linalg.norm(theta))


def test_adam_convergence_flags_a_fit_short_of_the_minimum():
    rng = np.random.default_rng(1)
    theta = rng.normal(size=50)
    target = 2 * 0.3 * theta + rng.normal(scale=0.1, size=50)
    fits = {"lstsq": match_gradients(Ridge(), theta, target, method="lstsq")}
    for epochs, converged in ((3, False), (3000, True)):
        options = AdamOptions(lr=0.05, max_epochs=epochs, patience=3000, init_log_std=0.1, seed=2)
        fits["adam"] = match_gradients(Ridge(), theta, target, method="adam", adam=options)
        row = adam_convergence(fits, options, theta.size)
        assert row["adam_converged"] is converged
        assert row["fit_loss_excess_adam"] == pytest.approx(
            fits["adam"].loss / fits["lstsq"].loss - 1
        )
        distance = abs(np.log(fits["adam"].params["lambda"] / row["fit_lambda_start_adam"]))
        assert row["fit_log_distance_adam"] == pytest.approx(distance)
    assert 0.7 < row["fit_lambda_start_adam"] < 1.4  # exp(0.1 · N(0, 1))
