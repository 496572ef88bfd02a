"""Per-layer implicit ridge penalty of a small CNN on scikit-learn's bundled 8×8 digits.

A practitioner's run of gradmatch (library API only, no workflow):

1. Train a small CNN with AdamW weight decay, dropout and label smoothing (minibatches), then
   match the loss gradient at the endpoint to a per-layer ridge penalty
   R(θ) = Σ_g λ_g Σ_{j∈g} θ_j² (``Ridge(groups=parameter_groups(model))``; ∇R = 2λ_g θ on layer
   g) and print λ̂_g with its 95 % interval.
2. Train the same CNN twice with the same nominal coefficient ``wd`` and no dropout: Adam with
   an L2 term (wd/2)·‖θ‖² inside the loss, and AdamW's decoupled decay θ ← θ − η·wd·θ. Print
   both per-layer λ̂ side by side.

What theory predicts for part 2 (gradient matching, paper Eq. 3: −∇L(θ̂) = ∇R(θ̂, Λ̂)):

- Adam + L2. The L2 term sits inside the gradient that Adam preconditions, so a fixed point
  of Adam (its update m̂/(√v̂ + ε) = 0, i.e. a zero full gradient) satisfies ∇L + wd·θ = 0,
  whatever the preconditioner. Ridge's convention is R = λΣθ², ∇R = 2λθ, so the matched
  λ̂ = wd/2 in every layer: the nominal strength is recovered.
- AdamW. The decay is applied outside the preconditioner, so a fixed point satisfies
  m̂/(√v̂ + ε) + wd·θ = 0, i.e. −∇L ≈ wd·(√v̂ + ε)⊙θ: a *preconditioned* ridge. The matched
  λ̂_g ≈ (wd/2)·Σ_{j∈g}(√v̂_j + ε)θ_j² / Σ_{j∈g}θ_j² then scales with the size of each layer's
  gradients (√v̂ ≪ 1 near convergence), so it is far below wd/2 and differs by layer. An
  annealed run ends close to, not at, such a fixed point, so only this qualitative prediction
  (smaller, and layer-dependent) is checked, not the exact value.

What part 1 shows (measured, seeds 0-2): λ̂ < 0 in every layer, with intervals clear of 0,
and a low cosine (≈ 0.2-0.3: a ridge explains little of the gradient). Negative means that at θ̂
the eval-mode, label-smoothed loss would fall if the weights shrank: the network was trained
under dropout noise, and without that noise (eval mode) its logits are more confident than label
smoothing's finite optimum. Each ingredient alone leaves a positive λ̂ (seed 0, conv1: no
dropout 2.9e-4, no label smoothing 3.8e-4, neither 4.9e-4); only together do they flip its sign.

The loss gradient is evaluated in eval mode (``model.eval()``: dropout off), on the full
training split, with the training loss itself (label smoothing included), so the matched
penalty is what the optimiser and dropout add on top of that loss.

Run: ``python examples/digits_cnn_implicit_penalty.py`` (about half a minute on one CPU core;
needs scikit-learn for the data). ``tests/test_examples.py`` runs exactly this command.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

import gradmatch
from gradmatch import Ridge, match_gradients
from gradmatch.core.groups import parameter_groups
from gradmatch.data.digits import load_digits_split


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every value of the example."""

    seed: int = 0
    weight_decay: float = 1e-2  # the nominal coefficient wd of both optimisers
    lr: float = 1e-2  # peak learning rate, cosine-annealed to 0
    label_smoothing: float = 0.1
    dropout: float = 0.2  # part 1 only; part 2 has no dropout (see the module docstring)
    epochs: int = 40  # part 1: minibatch epochs
    batch_size: int = 100  # part 1
    full_batch_steps: int = 600  # part 2: full-batch steps per optimiser


class DigitsCNN(nn.Module):
    """conv(1→8) → pool → conv(8→16) → pool → fc(64→32) → fc(32→10), dropout before each fc."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, 10)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(self.dropout(x.flatten(1))))
        return self.fc2(self.dropout(x))


def load(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, 1, 8, 8) in [0, 1] and labels (n,) of the digits split."""
    pixels, labels = load_digits_split(split)
    return torch.from_numpy(pixels).reshape(-1, 1, 8, 8), torch.from_numpy(labels)


def cosine(optimizer: torch.optim.Optimizer, steps: int):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / steps))
    )


def train_practitioner(cfg: Settings, X: torch.Tensor, y: torch.Tensor, loss_fn) -> nn.Module:
    """Part 1: AdamW + dropout + label smoothing, minibatches, cosine schedule."""
    torch.manual_seed(cfg.seed)
    model = DigitsCNN(cfg.dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, y), batch_size=cfg.batch_size, shuffle=True
    )
    schedule = cosine(optimizer, cfg.epochs * len(loader))
    model.train()
    for _ in range(cfg.epochs):
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss_fn(model(inputs), targets).backward()
            optimizer.step()
            schedule.step()
    return model


def train_full_batch(cfg: Settings, X: torch.Tensor, y: torch.Tensor, loss_fn, decoupled: bool):
    """Part 2, no dropout: AdamW(weight_decay=wd) or Adam on L + (wd/2)‖θ‖² (full batch)."""
    torch.manual_seed(cfg.seed)
    model = DigitsCNN(dropout=0.0)
    if decoupled:
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:  # the L2 term in the loss: the same as torch.optim.Adam(weight_decay=wd)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = cosine(optimizer, cfg.full_batch_steps)
    for _ in range(cfg.full_batch_steps):
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        if not decoupled:
            loss = loss + cfg.weight_decay / 2 * sum(p.square().sum() for p in model.parameters())
        loss.backward()
        optimizer.step()
        schedule.step()
    return model


def per_layer_ridge(model: nn.Module, loss_fn, data):
    """λ̂ per layer with 95 % intervals: Ridge(groups=layers) matched to −∇L at θ̂, eval mode."""
    model.eval()  # dropout off: the gradient of the deterministic network
    target = gradmatch.loss_gradient(model, loss_fn, data)
    theta = gradmatch.flat_parameters(model)
    fit = match_gradients(Ridge(groups=parameter_groups(model)), theta, target)
    low, high = fit.interval_params["lambda"]
    rows = {name: (value, low[name], high[name]) for name, value in fit.params["lambda"].items()}
    return rows, fit


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(X).argmax(1) == y).double().mean())


def show_part1(cfg: Settings, model, rows, fit, train, test) -> None:
    print(
        f"Part 1: AdamW (weight_decay={cfg.weight_decay:g}), dropout {cfg.dropout:g}, label "
        f"smoothing {cfg.label_smoothing:g}, {cfg.epochs} epochs of batch {cfg.batch_size}"
    )
    train_accuracy, test_accuracy = accuracy(model, *train), accuracy(model, *test)
    print(f"  train accuracy {train_accuracy:.3f}, test accuracy {test_accuracy:.3f}")
    print("  per-layer implicit ridge λ̂ (gradient in eval mode, dropout off):")
    print(f"  {'layer':<8}{'λ̂':>12}{'95 % interval':>28}")
    for name, (value, low, high) in rows.items():
        print(f"  part1 {name:<8}{value:12.4e}   [{low:11.4e}, {high:11.4e}]")
    print(f"  fit: residual ratio {fit.residual_ratio:.3f}, cosine {fit.cosine:.3f}")


def show_part2(cfg: Settings, adam_l2, adamw) -> None:
    nominal = cfg.weight_decay / 2
    print(
        f"\nPart 2: same nominal coefficient wd = {cfg.weight_decay:g}, no dropout, "
        f"{cfg.full_batch_steps} full-batch steps; Ridge convention R = λΣθ², so the L2 term "
        f"(wd/2)‖θ‖² has nominal λ = {nominal:g}"
    )
    print(
        f"  {'layer':<8}{'Adam+L2 λ̂':>12}{'95 % interval':>28}{'AdamW λ̂':>14}{'95 % interval':>28}"
        f"  nominal in Adam+L2 interval"
    )
    for name, (value, low, high) in adam_l2[0].items():
        w_value, w_low, w_high = adamw[0][name]
        covers = "yes" if low <= nominal <= high else "no"
        print(
            f"  part2 {name:<8}{value:12.4e}   [{low:11.4e}, {high:11.4e}]"
            f"{w_value:14.4e}   [{w_low:11.4e}, {w_high:11.4e}]  {covers}"
        )
    for label, (_, fit) in (("Adam+L2", adam_l2), ("AdamW", adamw)):
        print(f"  {label} fit: residual ratio {fit.residual_ratio:.3f}, cosine {fit.cosine:.3f}")
    print(f"  nominal λ = {nominal:.4e}")
    print(
        "  The intervals describe the spread over coordinates at this θ̂, not the bias of an\n"
        "  endpoint that is near, not at, a fixed point (the residual ratio above): Adam+L2's\n"
        "  λ̂ is within a few per cent of the nominal λ even where its interval misses it."
    )


def main(cfg: Settings = Settings()) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    train, test = load("train"), load("test")
    print(
        f"Data: scikit-learn's bundled 8×8 digits, {len(train[1])} training and "
        f"{len(test[1])} test images"
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    model = train_practitioner(cfg, *train, loss_fn)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*train), batch_size=500)
    rows, fit = per_layer_ridge(model, loss_fn, loader)
    show_part1(cfg, model, rows, fit, train, test)
    adam_l2 = per_layer_ridge(
        train_full_batch(cfg, *train, loss_fn, decoupled=False), loss_fn, train
    )
    adamw = per_layer_ridge(train_full_batch(cfg, *train, loss_fn, decoupled=True), loss_fn, train)
    show_part2(cfg, adam_l2, adamw)
    print(f"Intervals: {fit.se_method}")


if __name__ == "__main__":
    main()
