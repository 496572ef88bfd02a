"""MLP architectures: a solo ``nn.Sequential`` builder and the same network with K stacked members.

One :class:`MLPSpec` describes the architecture. :func:`build_mlp` builds it as a plain
``nn.Sequential`` (the form the estimators take); :func:`init_stacked` builds K solo models, member
k right after ``torch.manual_seed(seeds[k])`` (standard PyTorch initialisation), and stacks their
parameters along a leading member axis; :func:`stacked_forward` evaluates all K members at once
with batched matmuls:

    h⁰ = x,   hˡ = φ(hˡ⁻¹ Wₗᵀ + bₗ) ⊙ mₗ/(1 − pₖ),   ŷ = hᴸ W_outᵀ + b_out,

with ``Wₗ`` of shape (K, out, in), φ = relu | tanh and mₗ an inverted-dropout Bernoulli(1 − pₖ)
mask with a per-member rate pₖ. Dropout follows hidden blocks 1..L−1 only, as in the authors'
``DeepReLUClassifier`` ("no dropout after the last hidden block"), unless
``dropout_after_last=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
_FUNCTIONAL = {"relu": torch.relu, "tanh": torch.tanh}


@dataclass(frozen=True)
class MLPSpec:
    """An MLP: ``in_features`` → hidden widths (activation each) → ``out_features`` (linear).

    ``hidden_bias`` switches the biases of the hidden Linear layers (Fig 6 has none),
    ``output_bias`` that of the output layer. ``dropout_after_last`` adds dropout after the last
    hidden block too (the authors' code leaves it out).
    """

    in_features: int
    hidden: tuple[int, ...]
    out_features: int
    activation: str = "relu"
    hidden_bias: bool = True
    output_bias: bool = True
    dropout_after_last: bool = False

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"MLPSpec.activation: {self.activation!r} is not known; use one of "
                f"{sorted(ACTIVATIONS)}"
            )
        widths = (self.in_features, *self.hidden, self.out_features)
        if any(int(width) < 1 for width in widths):
            raise ValueError(f"MLPSpec: every layer width must be >= 1, got {widths}")
        object.__setattr__(self, "hidden", tuple(int(width) for width in self.hidden))

    @property
    def layer_shapes(self) -> list[tuple[int, int, bool]]:
        """(in, out, has_bias) of every Linear layer, input to output."""
        widths = (self.in_features, *self.hidden, self.out_features)
        biases = [self.hidden_bias] * len(self.hidden) + [self.output_bias]
        return [(widths[i], widths[i + 1], biases[i]) for i in range(len(widths) - 1)]

    def dropout_layers(self) -> list[bool]:
        """For each hidden block, whether dropout follows it."""
        depth = len(self.hidden)
        return [self.dropout_after_last or i < depth - 1 for i in range(depth)]

    def n_parameters(self) -> int:
        """p, the number of scalar parameters of one member."""
        return sum(i * o + (o if bias else 0) for i, o, bias in self.layer_shapes)


def build_mlp(spec: MLPSpec, dropout: float = 0.0) -> nn.Sequential:
    """The solo network: [Linear, activation, (Dropout)] per hidden block, then Linear.

    A Dropout module is inserted only where ``spec.dropout_layers()`` allows it and ``dropout``
    > 0, so the parameter order (W₁, b₁, W₂, b₂, …) never depends on the rate.
    """
    _check_rate(dropout, "dropout")
    layers: list[nn.Module] = []
    shapes = spec.layer_shapes
    for (n_in, n_out, bias), with_dropout in zip(shapes[:-1], spec.dropout_layers(), strict=True):
        layers += [nn.Linear(n_in, n_out, bias=bias), ACTIVATIONS[spec.activation]()]
        if with_dropout and dropout > 0:
            layers.append(nn.Dropout(dropout))
    n_in, n_out, bias = shapes[-1]
    layers.append(nn.Linear(n_in, n_out, bias=bias))
    return nn.Sequential(*layers)


def _check_rate(rate: float, name: str) -> None:
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"{name}: a dropout rate must lie in [0, 1), got {rate}")


def init_stacked(
    spec: MLPSpec, seeds: Sequence[int], *, dtype: torch.dtype = torch.float32, device=None
) -> list[torch.Tensor]:
    """Stacked initial parameters: entry j has shape (K, *shape of parameter j of the solo model).

    Member k equals ``build_mlp(spec)`` built right after ``torch.manual_seed(seeds[k])``. The
    global RNG state is restored afterwards.
    """
    if len(seeds) == 0:
        raise ValueError("init_stacked: seeds is empty; give one seed per member")
    members = []
    with torch.random.fork_rng(devices=[]):
        for seed in seeds:
            torch.manual_seed(int(seed))
            members.append([p.detach().clone() for p in build_mlp(spec).parameters()])
    return [
        torch.stack([member[j] for member in members]).to(device=device, dtype=dtype)
        for j in range(len(members[0]))
    ]


def _split_layers(spec: MLPSpec, params: Sequence[torch.Tensor]) -> list[tuple]:
    """Group a flat parameter list into (weight, bias or None) per Linear layer."""
    layers, index = [], 0
    for _, _, bias in spec.layer_shapes:
        weight = params[index]
        index += 1
        layers.append((weight, params[index] if bias else None))
        index += int(bias)
    if index != len(params):
        raise ValueError(
            f"stacked parameters: expected {index} tensors for {spec}, got {len(params)}"
        )
    return layers


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (K, B, in) or (B, in) shared, weight (K, out, in) → (K, B, out)."""
    out = torch.matmul(x, weight.transpose(-1, -2))
    return out if bias is None else out + bias.unsqueeze(-2)


def stacked_forward(
    spec: MLPSpec,
    params: Sequence[torch.Tensor],
    x: torch.Tensor,
    *,
    dropout: torch.Tensor | None = None,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """Outputs (K, B, out_features) of all K members on x (K, B, in) or shared x (B, in).

    ``dropout`` (K,) per-member rates switch on training-mode dropout; ``None`` is evaluation
    mode. Masks come from ``generator``: one generator for all members, or a sequence of K, one
    per member, so that a member's masks do not depend on the other members.
    """
    act = _FUNCTIONAL[spec.activation]
    layers = _split_layers(spec, params)
    h = x
    for (weight, bias), with_dropout in zip(layers[:-1], spec.dropout_layers(), strict=True):
        h = act(_linear(h, weight, bias))
        if dropout is not None and with_dropout:
            h = _dropout(h, dropout, generator)
    weight, bias = layers[-1]
    return _linear(h, weight, bias)


def _dropout(h: torch.Tensor, rates: torch.Tensor, generator):
    """Inverted dropout with member k's rate pₖ: h ⊙ Bernoulli(1 − pₖ) / (1 − pₖ)."""
    keep = (1.0 - rates).to(h.dtype).view(-1, 1, 1)
    if isinstance(generator, Sequence):
        if len(generator) != h.shape[0]:
            raise ValueError(f"generator: give one per member ({h.shape[0]}), got {len(generator)}")
        uniform = torch.stack(
            [
                torch.rand(h.shape[1:], generator=g, device=h.device, dtype=h.dtype)
                for g in generator
            ]
        )
    else:
        uniform = torch.rand(h.shape, generator=generator, device=h.device, dtype=h.dtype)
    return h * (uniform < keep).to(h.dtype) / keep


def load_member(
    spec: MLPSpec, params: Sequence[torch.Tensor], k: int, *, dropout: float = 0.0
) -> nn.Sequential:
    """Member k of stacked ``params`` as a solo ``nn.Sequential`` (a copy, same dtype/device)."""
    if not 0 <= k < params[0].shape[0]:
        raise IndexError(f"load_member: member {k} out of range; there are {params[0].shape[0]}")
    model = build_mlp(spec, dropout=dropout).to(dtype=params[0].dtype, device=params[0].device)
    with torch.no_grad():
        for target, stacked in zip(model.parameters(), params, strict=True):
            target.copy_(stacked[k])
    return model
