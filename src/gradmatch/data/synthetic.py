"""Synthetic linear-regression data: one generic generator, and the OLS problem of Figures 4, 7.

:func:`linear_regression` is the one data-generating process of a linear model: from a given
``torch.Generator`` it draws, in this order,

    X ~ N(0, 1)^(n×p),   β = beta_scale · N(0, I_p),   ε = σ · N(0, I_n),   y = Xβ + ε.

The standard normals are drawn in ``draw_dtype`` (torch's default float32 unless told) and cast
to ``dtype`` before any arithmetic. ε is drawn also when σ = 0, so that what a caller draws from
the generator afterwards never depends on σ.

The OLS problem of Figures 4 and 7 (paper H.3, the authors' ``analysis/ols_dgp.py``; its
seed, n, p and β scale are :class:`gradmatch.settings.OLSProblem`) is this process with float32
draws, as the authors' (so the same seed gives their numbers), and float64 arithmetic (they
computed in float32): :func:`sample_ols` returns it as numpy float64 (:class:`OLSData`), and
:func:`resample_response` draws a fresh endpoint β_k, ε_k on a shared design. Bootstrap row
indices come from ``torch.randint(0, n, (n,))`` on a generator seeded per resample
(:func:`bootstrap_indices`, :func:`bootstrap_counts`).

Torch is imported lazily (:mod:`gradmatch._lazy`): importing this module does not execute it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradmatch import settings as base
from gradmatch._lazy import lazy_import
from gradmatch.core import theory

torch = lazy_import("torch")


@dataclass(frozen=True)
class LinearRegression:
    """One draw of :func:`linear_regression`, torch tensors of one dtype: design ``X`` (n, p),
    coefficients ``beta`` (p,), noise ``noise`` = ε (n,) and response ``y`` = Xβ + ε (n,)."""

    X: torch.Tensor
    beta: torch.Tensor
    noise: torch.Tensor
    y: torch.Tensor


def generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (the authors' seeding)."""
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def _standard_normal(gen, shape: tuple[int, ...], draw_dtype, dtype) -> torch.Tensor:
    draws = torch.randn(*shape, generator=gen, dtype=draw_dtype)
    return draws if dtype is None else draws.to(dtype)


def linear_regression(
    gen: torch.Generator,
    n_samples: int,
    n_features: int,
    beta_scale: float,
    noise_std: float,
    *,
    X: torch.Tensor | None = None,
    draw_dtype: torch.dtype | None = None,
    dtype: torch.dtype | None = None,
) -> LinearRegression:
    """y = Xβ + ε with X, then β, then ε drawn from ``gen`` (see the module docstring).

    ``draw_dtype``: dtype of the standard-normal draws (None: torch's default, float32);
    ``dtype``: dtype of X, β, ε and y (None: ``draw_dtype``). With ``X`` given (shape
    (n_samples, n_features), already of ``dtype``) no design is drawn: only β, then ε.
    """
    if n_samples < 1 or n_features < 1:
        raise ValueError(
            f"linear regression needs n_samples >= 1 and n_features >= 1, got "
            f"n_samples={n_samples}, n_features={n_features}"
        )
    if noise_std < 0:
        raise ValueError(f"noise_std (σ) must be >= 0, got {noise_std}")
    if X is None:
        X = _standard_normal(gen, (n_samples, n_features), draw_dtype, dtype)
    elif tuple(X.shape) != (n_samples, n_features):
        raise ValueError(f"X must have shape ({n_samples}, {n_features}), got {tuple(X.shape)}")
    beta = beta_scale * _standard_normal(gen, (n_features,), draw_dtype, dtype)
    noise = noise_std * _standard_normal(gen, (n_samples,), draw_dtype, dtype)
    return LinearRegression(X=X, beta=beta, noise=noise, y=X @ beta + noise)


def draw_noise(gen: torch.Generator, n: int, noise_std: float) -> np.ndarray:
    """ε = σ · N(0, I_n) alone, drawn in float32 and returned as float64 numpy."""
    if noise_std < 0:
        raise ValueError(f"noise_std (σ) must be >= 0, got {noise_std}")
    return (noise_std * _standard_normal(gen, (n,), None, torch.float64)).numpy()


# ---- the OLS problem of Figures 4 and 7 ---------------------------------------------------------


@dataclass(frozen=True)
class OLSData:
    """One draw of the OLS problem, float64 numpy: design X (n, p), response y (n,), β (p,)."""

    X: np.ndarray
    y: np.ndarray
    beta: np.ndarray

    @property
    def gram(self) -> np.ndarray:
        """A = XᵀX/n, the Hessian of (1/2n)‖y − Xθ‖²."""
        return theory.gram(self.X)

    @property
    def moment(self) -> np.ndarray:
        """b = Xᵀy/n."""
        return theory.moment(self.X, self.y)


def _ols_data(draw: LinearRegression) -> OLSData:
    X, beta, noise = draw.X.numpy(), draw.beta.numpy(), draw.noise.numpy()
    # y in numpy float64 (numpy's and torch's matrix-vector products round differently)
    return OLSData(X=X, y=X @ beta + noise, beta=beta)


def sample_ols(problem: base.OLSProblem, noise_std: float) -> OLSData:
    """The problem ``problem`` (seed, n, p, β scale) at noise σ = ``noise_std``: X, then β, then ε
    from one generator seeded with ``problem.seed``, float32 draws, float64 values."""
    draw = linear_regression(
        generator(problem.seed),
        problem.n_samples,
        problem.n_features,
        problem.beta_scale,
        noise_std,
        dtype=torch.float64,
    )
    return _ols_data(draw)


def resample_response(X: np.ndarray, seed: int, noise_std: float, beta_scale: float) -> OLSData:
    """A fresh endpoint on a shared design: β_k, then ε_k, from one generator seeded with ``seed``.

    The authors' multi-endpoint runs (Fig. 4B, D) seed it with 56 + 100 + pool·10000 + k.
    """
    n, p = X.shape
    draw = linear_regression(
        generator(seed), n, p, beta_scale, noise_std, X=torch.from_numpy(X), dtype=torch.float64
    )
    return _ols_data(draw)


def bootstrap_indices(seed: int, n: int) -> np.ndarray:
    """n row indices drawn with replacement: ``torch.randint(0, n, (n,))`` seeded with ``seed``."""
    if n < 1:
        raise ValueError(f"bootstrap needs n >= 1 rows, got {n}")
    return torch.randint(0, n, (n,), generator=generator(seed)).numpy()


def bootstrap_counts(seeds: list[int], n: int) -> np.ndarray:
    """How often each of the n rows is drawn in the resample of each seed, shape (K, n)."""
    if not seeds:
        return np.zeros((0, n), dtype=np.int64)
    return np.stack([np.bincount(bootstrap_indices(seed, n), minlength=n) for seed in seeds])
