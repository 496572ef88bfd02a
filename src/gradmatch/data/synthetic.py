"""Synthetic least-squares data of Figures 4 and 7: the authors' OLS data-generating process.

One ``torch.Generator`` seeded with ``seed`` draws, in this order,

    X ~ N(0, 1)^(n×p),   β = scale · N(0, I_p),   ε = σ · N(0, I_n),   y = Xβ + ε,

exactly as the authors' ``analysis/ols_dgp.py`` (defaults n = 1000, p = 10, scale 3, seed 56).
The standard normals are drawn in float32 (torch's default, so the same seed gives the same
numbers as theirs) and every later computation is float64; the authors computed in float32.
With σ = 0 no noise is drawn, as in their code. Bootstrap row indices come from
``torch.randint(0, n, (n,))`` on a generator seeded per endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

OLS_SEED = 56  # the authors' DEFAULT_OLS_SEED
OLS_N = 1000  # rows of X
OLS_P = 10  # columns of X
OLS_BETA_SCALE = 3.0  # β = 3·N(0, I): β_j ~ N(0, 9)


@dataclass(frozen=True)
class OLSProblem:
    """One draw of the DGP, float64: design X (n, p), response y (n,), truth β (p,)."""

    X: np.ndarray
    y: np.ndarray
    beta: np.ndarray

    @property
    def gram(self) -> np.ndarray:
        """XᵀX/n, the Hessian of (1/2n)‖y − Xθ‖²."""
        return self.X.T @ self.X / self.X.shape[0]

    @property
    def moment(self) -> np.ndarray:
        """Xᵀy/n."""
        return self.X.T @ self.y / self.X.shape[0]


def generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (the authors' seeding)."""
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def draw_design(gen: torch.Generator, n: int = OLS_N, p: int = OLS_P) -> np.ndarray:
    """X with iid N(0, 1) entries, shape (n, p), drawn in float32 and returned as float64."""
    if n < 1 or p < 1:
        raise ValueError(f"the design needs n >= 1 and p >= 1, got n={n}, p={p}")
    return torch.randn(n, p, generator=gen).double().numpy()


def draw_beta(gen: torch.Generator, p: int = OLS_P, scale: float = OLS_BETA_SCALE) -> np.ndarray:
    """β = scale · N(0, I_p), float64."""
    return scale * torch.randn(p, generator=gen).double().numpy()


def draw_noise(gen: torch.Generator, n: int, noise_std: float) -> np.ndarray:
    """ε = σ · N(0, I_n), float64; σ = 0 draws nothing (the generator does not advance)."""
    if noise_std < 0:
        raise ValueError(f"noise_std (σ) must be >= 0, got {noise_std}")
    if noise_std == 0:
        return np.zeros(n)
    return noise_std * torch.randn(n, generator=gen).double().numpy()


def sample_ols(
    seed: int = OLS_SEED,
    n: int = OLS_N,
    p: int = OLS_P,
    noise_std: float = 1.0,
    beta_scale: float = OLS_BETA_SCALE,
) -> OLSProblem:
    """The canonical problem: X, then β, then ε from one generator seeded with ``seed``."""
    gen = generator(seed)
    X = draw_design(gen, n, p)
    beta = draw_beta(gen, p, beta_scale)
    noise = draw_noise(gen, n, noise_std)
    return OLSProblem(X=X, y=X @ beta + noise, beta=beta)


def resample_response(
    X: np.ndarray, seed: int, noise_std: float, beta_scale: float = OLS_BETA_SCALE
) -> OLSProblem:
    """A fresh endpoint on a shared design: β_k then ε_k from one generator seeded with ``seed``.

    The authors' multi-endpoint runs (Fig. 4B, D) seed it with 56 + 100 + pool·10000 + k.
    """
    gen = generator(seed)
    beta = draw_beta(gen, X.shape[1], beta_scale)
    noise = draw_noise(gen, X.shape[0], noise_std)
    return OLSProblem(X=X, y=X @ beta + noise, beta=beta)


def bootstrap_indices(seed: int, n: int) -> np.ndarray:
    """n row indices drawn with replacement: ``torch.randint(0, n, (n,))`` seeded with ``seed``."""
    if n < 1:
        raise ValueError(f"bootstrap needs n >= 1 rows, got {n}")
    return torch.randint(0, n, (n,), generator=generator(seed)).numpy()
