"""Image classification data behind one interface: ``load_images(name, split, root)``.

``digits`` (scikit-learn's 8×8 digits, offline, d = 64) and ``mnist`` (the IDX files under
``root``, d = 784) both return pixels in [0, 1] without mean/std normalisation, as the
authors' ``ToTensor`` transform, and int64 labels 0..9.
"""

from __future__ import annotations

import os

import torch

DATASETS = ("digits", "mnist")
SPLITS = ("train", "test")


def load_images(
    name: str, split: str, root: str | os.PathLike | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(X float32 (n, d) in [0, 1], y int64 (n,)) of data set ``name`` and ``split``.

    ``root`` is the folder holding the MNIST IDX files (required for mnist, unused for digits;
    the workflow passes its MNIST folder as the setting ``mnist_dir``: the config key
    ``mnist.dir`` when set, else its download folder). Either naming of the files, gzipped or
    plain, is read (:func:`gradmatch.data.mnist.locate`).
    """
    if name not in DATASETS:
        raise ValueError(
            f"dataset {name!r} unknown; choose one of {list(DATASETS)} (config key dataset)"
        )
    if split not in SPLITS:
        raise ValueError(f"split {split!r} unknown; choose one of {list(SPLITS)}")
    if name == "digits":
        from gradmatch.data.digits import load_digits_split

        pixels, labels = load_digits_split(split)
        return torch.from_numpy(pixels), torch.from_numpy(labels)
    from gradmatch.data.mnist import load_mnist

    if root is None:
        raise ValueError(
            "dataset mnist needs the folder of its IDX files: set mnist_dir (the workflow "
            "fills it from config key mnist.dir, else its download folder), or use dataset: "
            "digits offline"
        )
    images, labels = load_mnist(split, root)
    X = torch.from_numpy(images.astype("float32") / 255.0)
    return X, torch.from_numpy(labels.astype("int64"))


def train_val_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a random train/validation split, as ``torch.utils.data.random_split``.

    n_val = round(val_fraction · n) (MNIST: 6,000 of 60,000), n_train = n − n_val; a permutation
    ``torch.randperm(n, generator=Generator().manual_seed(seed))`` is cut after n_train, which
    gives the same indices as ``random_split(range(n), [n_train, n_val], generator)``.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    n_val = int(round(val_fraction * n))
    if n_val < 1 or n_val >= n:
        raise ValueError(f"val_fraction {val_fraction} of {n} examples leaves an empty split")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n - n_val], perm[n - n_val :]
