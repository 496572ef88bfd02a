"""Per-member early stopping and best-state selection, vectorised over the member axis.

Early stopping follows Lightning's ``EarlyStopping(mode="min")``: after each epoch member k's
monitored value v improves when v < best − min_delta (then best ← v and the wait count resets),
otherwise the wait count grows by one; the member stops once its wait count reaches ``patience``.
A non-finite value counts as no improvement.

Best-state selection keeps, for each member, the weights of the epoch with the highest selection
score s (ties: the earliest epoch); a NaN score makes an epoch ineligible, so a member whose
every epoch is ineligible has no best state (``found`` False).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EarlyStopping:
    """Stop member k after ``patience`` epochs without an improvement of ``monitor`` (lower is
    better) by more than ``min_delta``. ``monitor`` names an epoch metric, for example
    ``"train_objective_last"`` (penalised training loss of the epoch's last step, Fig 3) or
    ``"val_loss"`` (Fig 5)."""

    monitor: str = "train_objective_last"
    patience: int = 15
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"EarlyStopping.patience must be >= 1, got {self.patience}")
        if self.min_delta < 0:
            raise ValueError(f"EarlyStopping.min_delta must be >= 0, got {self.min_delta}")


class StopState:
    """Running early-stopping state of K members."""

    def __init__(self, rule: EarlyStopping, k: int, device) -> None:
        self.rule = rule
        self.best = torch.full((k,), float("inf"), dtype=torch.float64, device=device)
        self.wait = torch.zeros(k, dtype=torch.long, device=device)

    def update(self, value: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Fold in one epoch's values for the active members; return the new active mask."""
        value = value.to(torch.float64)
        improved = torch.isfinite(value) & (value < self.best - self.rule.min_delta) & active
        self.best = torch.where(improved, value, self.best)
        self.wait = torch.where(improved, 0, self.wait + active.long())
        return active & (self.wait < self.rule.patience)


class BestState:
    """Per-member copy of the parameters at the best selection score so far."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        k = params[0].shape[0]
        self.params = [p.detach().clone() for p in params]
        self.score = torch.full((k,), -float("inf"), dtype=torch.float64, device=params[0].device)
        self.epoch = torch.full((k,), -1, dtype=torch.long, device=params[0].device)

    @property
    def found(self) -> torch.Tensor:
        return self.epoch >= 0

    @torch.no_grad()
    def update(self, params, score: torch.Tensor, active: torch.Tensor, epoch: int) -> None:
        score = score.to(torch.float64)
        better = active & ~torch.isnan(score) & (score > self.score)
        if not bool(better.any()):
            return
        self.score = torch.where(better, score, self.score)
        self.epoch = torch.where(better, epoch, self.epoch)
        for kept, current in zip(self.params, params, strict=True):
            mask = better.view(-1, *([1] * (kept.dim() - 1)))
            kept.copy_(torch.where(mask, current, kept))
