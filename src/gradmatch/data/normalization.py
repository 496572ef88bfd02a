"""Standardised images for the IGR analyses (Figure 6 and its long-horizon appendix).

Pixels from :func:`gradmatch.data.images.load_images` (in [0, 1]) are flattened and mapped to
(x − μ)/σ. For ``mnist`` μ = 0.1307 and σ = 0.3081 (the constants of the authors'
``transforms.Normalize``); for ``digits`` μ and σ are the pixel mean and standard deviation of
the whole digits train split (computed, not tuned), so both data sets enter the network on the
same scale.
"""

from __future__ import annotations

import os

import torch

from gradmatch.data.images import load_images

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def normalization(dataset: str, mnist_dir: str | os.PathLike | None) -> tuple[float, float]:
    """(μ, σ): MNIST's constants, or the pixel mean and std of the digits train split."""
    if dataset == "mnist":
        return MNIST_MEAN, MNIST_STD
    x, _ = load_images(dataset, "train", mnist_dir)
    return float(x.double().mean()), float(x.double().std())


def load_normalized(
    dataset: str, split: str, mnist_dir: str | os.PathLike | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened images of ``split`` normalised as (x − μ)/σ (see :func:`normalization`).

    ``mnist_dir`` is the folder of the MNIST IDX files (required for mnist, unused for digits).
    """
    x, y = load_images(dataset, split, mnist_dir)
    mean, std = normalization(dataset, mnist_dir)
    return (x - mean) / std, y
