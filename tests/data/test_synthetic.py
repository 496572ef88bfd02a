"""The linear-regression generator, the OLS problem (the authors' torch draw order, float64 out)
and the bootstrap draws."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from gradmatch.data import synthetic
from gradmatch.settings import OLSProblem


def test_linear_regression_draws_x_then_beta_then_noise_from_the_generator():
    draw = synthetic.linear_regression(torch.Generator().manual_seed(3), 50, 4, 2.0, 0.5)
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(50, 4, generator=gen)
    beta = torch.randn(4, generator=gen)
    noise = torch.randn(50, generator=gen)
    assert draw.X.dtype == torch.float32
    torch.testing.assert_close(draw.X, X, rtol=0, atol=0)
    torch.testing.assert_close(draw.beta, 2.0 * beta, rtol=0, atol=0)
    torch.testing.assert_close(draw.noise, 0.5 * noise, rtol=0, atol=0)
    torch.testing.assert_close(draw.y, X @ (2.0 * beta) + 0.5 * noise, rtol=0, atol=0)


def test_linear_regression_dtypes_and_a_given_design():
    wide = synthetic.linear_regression(
        torch.Generator().manual_seed(3), 50, 4, 2.0, 0.5, draw_dtype=torch.float64
    )
    gen = torch.Generator().manual_seed(3)
    torch.testing.assert_close(wide.X, torch.randn(50, 4, generator=gen, dtype=torch.float64))
    cast = synthetic.linear_regression(
        torch.Generator().manual_seed(3), 50, 4, 2.0, 0.5, dtype=torch.float64
    )
    assert cast.y.dtype == torch.float64
    gen = torch.Generator().manual_seed(3)
    torch.testing.assert_close(cast.X, torch.randn(50, 4, generator=gen).double(), rtol=0, atol=0)
    # with X given only β, then ε are drawn
    given = synthetic.linear_regression(
        torch.Generator().manual_seed(9), 50, 4, 2.0, 0.5, X=cast.X, dtype=torch.float64
    )
    gen = torch.Generator().manual_seed(9)
    beta = 2.0 * torch.randn(4, generator=gen).double()
    assert given.X is cast.X
    torch.testing.assert_close(given.beta, beta, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"X must have shape \(50, 5\)"):
        synthetic.linear_regression(torch.Generator(), 50, 5, 1.0, 1.0, X=cast.X)


def test_noise_is_drawn_also_at_zero_sigma_so_later_draws_do_not_depend_on_it():
    gens = [torch.Generator().manual_seed(1) for _ in range(2)]
    clean = synthetic.linear_regression(gens[0], 20, 3, 1.0, 0.0)
    noisy = synthetic.linear_regression(gens[1], 20, 3, 1.0, 1.0)
    torch.testing.assert_close(clean.y, clean.X @ clean.beta, rtol=0, atol=0)
    assert torch.equal(torch.randn(5, generator=gens[0]), torch.randn(5, generator=gens[1]))
    assert float((noisy.y - clean.y).abs().max()) > 0.5


def test_ols_problem_matches_one_torch_generator_in_float64():
    gen = torch.Generator().manual_seed(56)
    X = torch.randn(1000, 10, generator=gen)
    beta = 3.0 * torch.randn(10, generator=gen)
    standard = torch.randn(1000, generator=gen)
    problem = synthetic.sample_ols(OLSProblem(), noise_std=2.5)
    assert problem.X.dtype == np.float64
    np.testing.assert_array_equal(problem.X, X.double().numpy())
    np.testing.assert_allclose(problem.beta, beta.double().numpy(), rtol=1e-6)
    expected_y = X.double().numpy() @ problem.beta + 2.5 * standard.double().numpy()
    np.testing.assert_allclose(problem.y, expected_y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(problem.gram, problem.X.T @ problem.X / 1000, atol=1e-15)
    np.testing.assert_allclose(problem.moment, problem.X.T @ problem.y / 1000, atol=1e-12)


def test_zero_noise_keeps_x_and_beta():
    small = OLSProblem(n_samples=200, n_features=4)
    clean = synthetic.sample_ols(small, noise_std=0.0)
    noisy = synthetic.sample_ols(small, noise_std=1.0)
    np.testing.assert_array_equal(clean.X, noisy.X)
    np.testing.assert_array_equal(clean.beta, noisy.beta)
    np.testing.assert_allclose(clean.y, clean.X @ clean.beta, rtol=0, atol=1e-12)
    assert np.max(np.abs(noisy.y - clean.y)) > 0.5


def test_resample_response_shares_x_and_uses_beta_then_noise():
    X = synthetic.sample_ols(OLSProblem(n_samples=300, n_features=5), 0.0).X
    endpoint = synthetic.resample_response(X, seed=156, noise_std=1.0, beta_scale=3.0)
    gen = torch.Generator().manual_seed(156)
    beta = 3.0 * torch.randn(5, generator=gen).double().numpy()
    noise = torch.randn(300, generator=gen).double().numpy()
    assert np.shares_memory(endpoint.X, X)  # the shared design, not a copy
    np.testing.assert_allclose(endpoint.beta, beta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(endpoint.y, X @ beta + noise, rtol=0, atol=1e-12)


def test_draw_noise_alone():
    noise = synthetic.draw_noise(synthetic.generator(8), 30, 2.0)
    expected = 2.0 * torch.randn(30, generator=torch.Generator().manual_seed(8)).double()
    np.testing.assert_array_equal(noise, expected.numpy())


def test_bootstrap_indices_are_torch_randint_and_counts_add_up():
    indices = synthetic.bootstrap_indices(142, 1000)
    expected = torch.randint(0, 1000, (1000,), generator=torch.Generator().manual_seed(142))
    np.testing.assert_array_equal(indices, expected.numpy())
    assert 0 <= indices.min() and indices.max() < 1000
    counts = synthetic.bootstrap_counts([142, 143], 1000)
    assert counts.shape == (2, 1000) and list(counts.sum(axis=1)) == [1000, 1000]
    np.testing.assert_array_equal(counts[0], np.bincount(indices, minlength=1000))
    assert synthetic.bootstrap_counts([], 7).shape == (0, 7)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="noise_std"):
        synthetic.sample_ols(OLSProblem(), noise_std=-1.0)
    with pytest.raises(ValueError, match="seed"):
        synthetic.generator(-3)
    with pytest.raises(ValueError, match="n_samples >= 1"):
        synthetic.linear_regression(torch.Generator(), 0, 3, 1.0, 1.0)


def test_module_imports_without_torch():
    code = "import sys; from gradmatch.data import synthetic; print('torch._C' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]
