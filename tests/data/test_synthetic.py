"""The OLS data-generating process: the authors' torch draw order, float64 out, bootstrap draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradmatch.data import synthetic


def test_draw_order_matches_one_torch_generator():
    gen = torch.Generator().manual_seed(56)
    X = torch.randn(1000, 10, generator=gen)
    beta = 3.0 * torch.randn(10, generator=gen)
    standard = torch.randn(1000, generator=gen)
    problem = synthetic.sample_ols(56, 1000, 10, noise_std=2.5)
    assert problem.X.dtype == np.float64
    np.testing.assert_array_equal(problem.X, X.double().numpy())
    np.testing.assert_allclose(problem.beta, beta.double().numpy(), rtol=1e-6)
    expected_y = X.double().numpy() @ problem.beta + 2.5 * standard.double().numpy()
    np.testing.assert_allclose(problem.y, expected_y, rtol=0, atol=1e-12)


def test_zero_noise_draws_nothing_and_keeps_x_and_beta():
    clean = synthetic.sample_ols(56, 200, 4, noise_std=0.0)
    noisy = synthetic.sample_ols(56, 200, 4, noise_std=1.0)
    np.testing.assert_array_equal(clean.X, noisy.X)
    np.testing.assert_array_equal(clean.beta, noisy.beta)
    np.testing.assert_allclose(clean.y, clean.X @ clean.beta, rtol=0, atol=1e-12)
    assert np.max(np.abs(noisy.y - clean.y)) > 0.5


def test_resample_response_shares_x_and_uses_beta_then_noise():
    X = synthetic.sample_ols(56, 300, 5, 0.0).X
    endpoint = synthetic.resample_response(X, seed=156, noise_std=1.0)
    gen = torch.Generator().manual_seed(156)
    beta = 3.0 * torch.randn(5, generator=gen).double().numpy()
    noise = torch.randn(300, generator=gen).double().numpy()
    np.testing.assert_allclose(endpoint.beta, beta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(endpoint.y, X @ beta + noise, rtol=0, atol=1e-12)


def test_bootstrap_indices_are_torch_randint():
    indices = synthetic.bootstrap_indices(142, 1000)
    expected = torch.randint(0, 1000, (1000,), generator=torch.Generator().manual_seed(142))
    np.testing.assert_array_equal(indices, expected.numpy())
    assert 0 <= indices.min() and indices.max() < 1000


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="noise_std"):
        synthetic.sample_ols(noise_std=-1.0)
    with pytest.raises(ValueError, match="seed"):
        synthetic.generator(-3)
