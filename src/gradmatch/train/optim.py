"""Optimisers for stacked members, each member with its own learning rate, step count and mask.

The update of member k is exactly that of ``torch.optim`` on member k alone (same formulas, same
order of operations); a member whose ``active`` flag is False keeps its weights and its optimiser
state (moments, step count) unchanged.

Adam (``torch.optim.Adam``, no weight decay, no amsgrad), with t the member's own step count:

    m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²,
    θ ← θ − (η/(1 − β₁ᵗ)) · m / (√v/√(1 − β₂ᵗ) + ε).

SGD (``torch.optim.SGD``, dampening 0, no Nesterov): g ← g + wd·θ; with momentum μ > 0,
b ← g at the first step and b ← μb + g after, then θ ← θ − η·b; plain θ ← θ − η·g when μ = 0.

Learning-rate schedule (``MultiStepLR``, stepped once per epoch): during epoch e (0-based)
η_k(e) = η_k · γ^{#{milestones m ≤ e}}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


def _per_member(value, k: int, name: str, dtype, device) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=dtype, device=device).flatten()
    if tensor.numel() == 1:
        tensor = tensor.expand(k).clone()
    if tensor.numel() != k:
        raise ValueError(f"{name}: give one value or one per member ({k}), got {tensor.numel()}")
    return tensor


@dataclass(frozen=True)
class Adam:
    """Adam with a per-member learning rate ``lr`` (float or one per member)."""

    lr: float | Sequence[float] = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1

    def build(self, params, k):
        return _StackedAdam(self, params, k)


@dataclass(frozen=True)
class SGD:
    """SGD with optional momentum and weight decay; ``lr`` per member; optional MultiStepLR."""

    lr: float | Sequence[float] = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    milestones: tuple[int, ...] = field(default_factory=tuple)
    gamma: float = 0.1

    def build(self, params, k):
        return _StackedSGD(self, params, k)


class _Stacked:
    """Shared part: per-member base learning rates and the MultiStepLR factor."""

    def __init__(self, spec, params: list[torch.Tensor], k: int) -> None:
        self.spec = spec
        self.params = params
        # schedule arithmetic in float64, as torch.optim does it in Python floats
        self.base_lr = _per_member(spec.lr, k, "optimizer.lr", torch.float64, params[0].device)
        if bool((self.base_lr <= 0).any()):
            raise ValueError(f"optimizer.lr: every learning rate must be > 0, got {spec.lr}")
        self.lr = self.base_lr.clone()

    def set_epoch(self, epoch: int) -> torch.Tensor:
        """Set and return the (K,) learning rates of epoch ``epoch`` (MultiStepLR)."""
        passed = sum(1 for milestone in self.spec.milestones if milestone <= epoch)
        self.lr = self.base_lr * self.spec.gamma**passed
        return self.lr

    @staticmethod
    def _view(vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return vector.view(-1, *([1] * (like.dim() - 1)))


class _StackedAdam(_Stacked):
    def __init__(self, spec: Adam, params, k) -> None:
        super().__init__(spec, params, k)
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = torch.zeros(k, dtype=torch.float64, device=params[0].device)

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], active: torch.Tensor | None) -> None:
        beta1, beta2 = self.spec.betas
        self.steps += 1 if active is None else active.to(self.steps.dtype)
        steps = self.steps.clamp(min=1)
        dtype = self.params[0].dtype
        step_size = (self.lr / (1 - beta1**steps)).to(dtype)
        bias_correction2_sqrt = (1 - beta2**steps).sqrt().to(dtype)
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq, strict=True):
            new_m = m.lerp(g, 1 - beta1)
            new_v = v.mul(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (new_v.sqrt() / self._view(bias_correction2_sqrt, p)).add_(self.spec.eps)
            new_p = p - self._view(step_size, p) * (new_m / denom)
            _assign(p, new_p, active)
            _assign(m, new_m, active)
            _assign(v, new_v, active)


class _StackedSGD(_Stacked):
    def __init__(self, spec: SGD, params, k) -> None:
        super().__init__(spec, params, k)
        self.buffers = [torch.zeros_like(p) for p in params] if spec.momentum else None
        self.started = torch.zeros(k, dtype=torch.bool, device=params[0].device)

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], active: torch.Tensor | None) -> None:
        for j, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            if self.spec.weight_decay:
                g = g.add(p, alpha=self.spec.weight_decay)
            if self.buffers is not None:
                b = self.buffers[j]
                started = self._view(self.started, p)
                new_b = torch.where(started, b * self.spec.momentum + g, g)
                _assign(b, new_b, active)
                g = new_b
            _assign(p, p - self._view(self.lr.to(p.dtype), p) * g, active)
        self.started |= True if active is None else active


def _assign(target: torch.Tensor, value: torch.Tensor, active: torch.Tensor | None) -> None:
    """target ← value for active members (all when ``active`` is None), in place."""
    if active is None:
        target.copy_(value)
    else:
        mask = active.view(-1, *([1] * (target.dim() - 1)))
        target.copy_(torch.where(mask, value, target))
