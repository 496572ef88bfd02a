"""Parameter groups: which coordinates of the flat parameter vector θ share one coefficient.

A per-group family (``Ridge(groups=...)``, ``ElasticNet(groups=...)``) fits one λ per group,
R = Σ_g λ_g Σ_{j∈g} θ_j² (ridge), so weight decay that differs by layer is recovered per layer.
θ is :func:`gradmatch.core.autodiff.flat_parameters` (``model.named_parameters()`` order); a
group is a union of contiguous segments of θ, one segment per named parameter, so a group map
costs memory per parameter tensor, not per coordinate.

- ``parameter_groups(model)`` / ``by="layer"``: one group per module that owns parameters,
  named by its qualified name (``"0"``, ``"features.conv1"``; ``"(root)"`` for the model itself).
- ``by="parameter"``: one group per named parameter (``"0.weight"``, ``"0.bias"``, ...).
- ``patterns={"weight": "*.weight", "bias": "*.bias"}``: groups by ``fnmatch`` patterns on the
  parameter names (a pattern or a list of patterns per group); a parameter joins the first group
  whose pattern matches, and an unmatched parameter is an error (add a catch-all ``"*"``).
- :meth:`ParameterGroups.from_sizes` and :meth:`ParameterGroups.from_labels` build groups
  without a model (a dict of name → size in θ order, or one label per coordinate).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["ParameterGroups", "as_groups", "parameter_groups"]

BY = ("layer", "parameter")


@dataclasses.dataclass(frozen=True)
class ParameterGroups:
    """Groups of coordinates of θ: ``names`` and ``segments`` (start, stop, group index).

    Segments are sorted, disjoint and cover 0..``size`` exactly.
    """

    names: tuple[str, ...]
    segments: tuple[tuple[int, int, int], ...]
    size: int

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"group names must be unique, got {list(self.names)}")
        position = 0
        used = set()
        for start, stop, group in self.segments:
            if start != position or stop <= start:
                raise ValueError(
                    f"group segments must be contiguous and non-empty from 0, got segment "
                    f"({start}, {stop}) after coordinate {position}"
                )
            if not 0 <= group < len(self.names):
                raise ValueError(f"segment ({start}, {stop}) names group {group} of {self.names}")
            used.add(group)
            position = stop
        if position != self.size:
            raise ValueError(f"group segments cover {position} coordinates, size is {self.size}")
        empty = [name for index, name in enumerate(self.names) if index not in used]
        if empty:
            raise ValueError(f"groups {empty} hold no coordinate; drop them")

    @classmethod
    def from_sizes(cls, sizes: Mapping[str, int]) -> ParameterGroups:
        """One group per entry, in order: ``{"conv": 80, "fc": 650}`` (contiguous blocks)."""
        segments, start = [], 0
        for index, size in enumerate(sizes.values()):
            segments.append((start, start + int(size), index))
            start += int(size)
        return cls(tuple(sizes), tuple(segments), start)

    @classmethod
    def from_labels(cls, labels: Iterable[Any]) -> ParameterGroups:
        """One label per coordinate of θ (names in order of first appearance)."""
        values = [str(label) for label in labels]
        names = tuple(dict.fromkeys(values))
        index = {name: position for position, name in enumerate(names)}
        segments, start = [], 0
        for position in range(1, len(values) + 1):
            if position == len(values) or values[position] != values[start]:
                segments.append((start, position, index[values[start]]))
                start = position
        return cls(names, tuple(segments), len(values))

    def sizes(self) -> dict[str, int]:
        """Number of coordinates per group."""
        counts = dict.fromkeys(self.names, 0)
        for start, stop, group in self.segments:
            counts[self.names[group]] += stop - start
        return counts

    def labels(self) -> np.ndarray:
        """The group index of every coordinate, shape (size,) (memory: one int per coordinate)."""
        index = np.empty(self.size, dtype=np.int64)
        for start, stop, group in self.segments:
            index[start:stop] = group
        return index

    def check_size(self, p: int) -> None:
        if p != self.size:
            raise ValueError(
                f"the parameter groups cover {self.size} coordinates but theta has {p}; build "
                f"them from the same model (parameter_groups(model)) as flat_parameters(model)"
            )


def as_groups(groups: Any) -> ParameterGroups:
    """``groups`` as :class:`ParameterGroups` (accepts one label per coordinate too)."""
    if isinstance(groups, ParameterGroups):
        return groups
    if isinstance(groups, Mapping):
        return ParameterGroups.from_sizes(groups)
    if hasattr(groups, "__len__") and not isinstance(groups, str):
        return ParameterGroups.from_labels(np.asarray(groups).reshape(-1).tolist())
    raise ValueError(
        f"groups must be ParameterGroups (gradmatch.core.groups.parameter_groups(model)), a "
        f"dict of name -> size, or one label per coordinate; got {type(groups).__name__}"
    )


def _owner(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else "(root)"


def _pattern_group(name: str, patterns: dict[str, tuple[str, ...]]) -> str | None:
    for group, group_patterns in patterns.items():
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in group_patterns):
            return group
    return None


def parameter_groups(
    model: Any, by: str = "layer", patterns: Mapping[str, str | Iterable[str]] | None = None
) -> ParameterGroups:
    """Groups of θ = ``flat_parameters(model)``, per layer (default), per parameter or by pattern.

    >>> groups = parameter_groups(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(),
    ...                                               torch.nn.Linear(2, 1)))
    >>> groups.names, groups.sizes()
    (('0', '2'), {'0': 8, '2': 3})
    """
    named = [(name, int(parameter.numel())) for name, parameter in model.named_parameters()]
    if not named:
        raise ValueError(f"model {type(model).__name__} has no parameters")
    if patterns is not None:
        table = {
            group: (pattern,) if isinstance(pattern, str) else tuple(pattern)
            for group, pattern in patterns.items()
        }
        labels = [_pattern_group(name, table) for name, _ in named]
        unmatched = [name for (name, _), label in zip(named, labels, strict=True) if label is None]
        if unmatched:
            raise ValueError(
                f"parameters {unmatched} match none of the group patterns {table}; add a "
                f"pattern for them (a catch-all such as {{'other': '*'}} last)"
            )
    elif by == "layer":
        labels = [_owner(name) for name, _ in named]
    elif by == "parameter":
        labels = [name for name, _ in named]
    else:
        raise ValueError(f"by must be one of {list(BY)} (or pass patterns=), got {by!r}")
    names = tuple(dict.fromkeys(labels))
    index = {name: position for position, name in enumerate(names)}
    segments, start = [], 0
    for (_, size), label in zip(named, labels, strict=True):
        segments.append((start, start + size, index[label]))
        start += size
    return ParameterGroups(names, tuple(segments), start)
