"""The authors' Adam fit (gradmatch.core.adam): projected minibatch targets give today's fit.

The "projected" targets (gradmatch.train.matching) replace each step's backward pass by the
k-vector Aᵀb of per-sample projections; on a float64 model λ̂ must equal the "backward" fit's
to 1e-6 relative (issue 13, item 3), for Fig. 5's setting (Ridge, cross-entropy, last partial
batch kept, plateau scheduler, noisy start) and Fig. 3's (ElasticNet, MSE, last batch dropped,
vectorised targets).
"""

import numpy as np
import pytest
import torch

from gradmatch.core import autodiff
from gradmatch.core.adam import AdamOptions, adam_init, adam_start
from gradmatch.core.estimators import match_gradients
from gradmatch.core.regularizers import ElasticNet, Ridge
from gradmatch.train import minibatch_targets


def _classifier():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 3)
    )
    X = torch.rand(203, 6, dtype=torch.float64)
    return model.double().eval(), X, torch.randint(0, 3, (203,))


def _regressor():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(5, 20), torch.nn.ReLU(), torch.nn.Linear(20, 1))
    X = torch.randn(300, 5, dtype=torch.float64)
    return model.double(), X, torch.randn(300, dtype=torch.float64)


def _fits(family, model, loss, X, y, options, **batching):
    theta = autodiff.flat_parameters(model)
    target = autodiff.loss_gradient(model, loss, X, y).numpy()
    return {
        way: match_gradients(
            family,
            theta,
            target,
            method="adam",
            adam=options,
            target_batches=minibatch_targets(model, loss, X, y, targets=way, **batching),
        )
        for way in ("backward", "projected")
    }


def test_projected_ridge_fit_equals_backward_fit_fig5_setting():
    model, X, y = _classifier()
    options = AdamOptions(
        lr=0.05,
        max_epochs=80,
        patience=100,
        plateau_factor=0.5,
        plateau_patience=10,
        init_log_std=0.1,
        seed=3,
    )
    fits = _fits(
        Ridge(), model, "cross_entropy", X, y, options, batch_size=32, seed=5, drop_last=False
    )
    old, new = fits["backward"], fits["projected"]
    assert new.params["lambda"] == pytest.approx(old.params["lambda"], rel=1e-6, abs=0)
    assert new.epochs == old.epochs
    np.testing.assert_allclose(new.history, old.history, rtol=1e-9)
    assert abs(np.log(new.params["lambda"])) > 0.5  # the fit moved: the comparison has content


def test_projected_elastic_net_fit_equals_backward_fit_fig3_setting():
    model, X, y = _regressor()
    options = AdamOptions(lr=1e-2, max_epochs=40, patience=50, init={"lambda_l1": 1.0})
    batching = {"batch_size": 32, "seed": 7, "drop_last": True, "vectorize": True}
    fits = _fits(ElasticNet(1e-3), model, "mse", X, y, options, **batching)
    old, new = fits["backward"], fits["projected"]
    for name in ("lambda_l1", "lambda_l2"):
        assert new.params[name] == pytest.approx(old.params[name], rel=1e-6, abs=0)
        assert abs(np.log(new.params[name])) > 0.5
    assert new.epochs == old.epochs


def test_projected_fit_with_one_batch_is_the_full_data_fit_bit_for_bit():
    model, X, y = _classifier()
    options = AdamOptions(lr=0.05, max_epochs=50)
    fits = _fits(Ridge(), model, "cross_entropy", X, y, options, batch_size=500, seed=0)
    assert fits["projected"].params["lambda"] == fits["backward"].params["lambda"]
    assert fits["projected"].history == fits["backward"].history


def test_projected_targets_need_one_endpoint_and_finite_values():
    model, X, y = _regressor()
    theta = autodiff.flat_parameters(model)
    projected = minibatch_targets(model, "mse", X, y, 32, 0, targets="projected")
    stacked = np.stack([theta, theta])
    with pytest.raises(ValueError, match="projected target_batches match one endpoint"):
        match_gradients(Ridge(), stacked, stacked, method="adam", target_batches=projected)

    class Broken:
        def project(self, design):
            return lambda epoch: (torch.full((2, 1), np.nan), torch.zeros(design.shape[0]))

    with pytest.raises(ValueError, match="projected target_batches gave NaN or inf at epoch 0"):
        match_gradients(Ridge(), theta, theta, method="adam", target_batches=Broken())


def test_adam_start_is_the_noisy_log_start_of_the_fit():
    options = AdamOptions(init_log_std=0.1, seed=4, max_epochs=1, lr=1e-12)
    start = adam_start(True, adam_init(Ridge(), options, 3), options)
    expected = 0.1 * torch.randn(1, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert torch.equal(start, expected)
    fit = match_gradients(Ridge(), np.ones(3), np.ones(3), method="adam", adam=options)
    assert fit.params["lambda"] == pytest.approx(float(torch.exp(expected)), rel=1e-9)
    with pytest.raises(ValueError, match="must be > 0"):
        adam_start(True, np.array([0.0]), options)
