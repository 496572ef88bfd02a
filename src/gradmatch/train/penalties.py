"""Explicit penalties added to the training loss, one strength per member.

A penalty is any callable ``penalty(params) -> Tensor (K,)`` taking the stacked parameter list
(entry j of shape (K, ...)); the trainer minimises, for member k, L_k + penalty(params)[k].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


class ElasticNetPenalty:
    """R_k(θ) = λ1_k Σ_j h_β(θ_j) + λ2_k Σ_j θ_j², summed over all parameters, biases included.

    h_β is torch's ``smooth_l1_loss`` against 0: h_β(θ) = θ²/(2β) for |θ| < β and |θ| − β/2
    otherwise, so ∂h_β/∂θ = θ/β inside and sign(θ) outside (paper H.2; authors' β = 1e-3).
    ``lambda1`` and ``lambda2`` are one value or one per member.
    """

    def __init__(
        self, lambda1: float | Sequence[float], lambda2: float | Sequence[float], beta: float = 1e-3
    ) -> None:
        if beta <= 0:
            raise ValueError(f"ElasticNetPenalty.beta must be > 0, got {beta}")
        self.lambda1 = torch.as_tensor(lambda1, dtype=torch.float64).flatten()
        self.lambda2 = torch.as_tensor(lambda2, dtype=torch.float64).flatten()
        if bool((self.lambda1 < 0).any()) or bool((self.lambda2 < 0).any()):
            raise ValueError("ElasticNetPenalty: lambda1 and lambda2 must be >= 0")
        self.beta = float(beta)
        self._cache: dict = {}

    def _strengths(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (like.dtype, like.device, like.shape[0])
        if key not in self._cache:
            k = like.shape[0]
            pair = []
            for name, value in (("lambda1", self.lambda1), ("lambda2", self.lambda2)):
                if value.numel() not in (1, k):
                    raise ValueError(
                        f"ElasticNetPenalty.{name}: give one value or one per member ({k}), "
                        f"got {value.numel()}"
                    )
                pair.append(value.expand(k).to(dtype=like.dtype, device=like.device))
            self._cache[key] = tuple(pair)
        return self._cache[key]

    def __call__(self, params: Sequence[torch.Tensor]) -> torch.Tensor:
        lambda1, lambda2 = self._strengths(params[0])
        smooth = sum(
            F.smooth_l1_loss(p, torch.zeros_like(p), reduction="none", beta=self.beta)
            .flatten(1)
            .sum(1)
            for p in params
        )
        square = sum(p.square().flatten(1).sum(1) for p in params)
        return lambda1 * smooth + lambda2 * square
