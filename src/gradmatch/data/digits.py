"""scikit-learn's bundled 8×8 handwritten digits: an offline stand-in for MNIST.

The data (1,797 images of 8×8 pixels with values 0..16, ten classes; the UCI "Optical
Recognition of Handwritten Digits" test set) ships with scikit-learn, so no network is needed.
Pixels are scaled to [0, 1] by x / 16, the analogue of MNIST's ``ToTensor`` (x / 255).

Fixed split, independent of any random generator: the first ``N_TRAIN`` = 1,500 images are the
training split and the remaining 297 the test split. The file cycles through the classes, so
both splits are balanced (train 146-153 per class, test 27-33), and the test images come from
the last writers, as MNIST's test split comes from writers outside the training split.
"""

from __future__ import annotations

import numpy as np

N_TRAIN = 1500
N_TOTAL = 1797
MAX_PIXEL = 16.0
SPLITS = ("train", "test")


def load_digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (n, 64) float32 in [0, 1] and labels (n,) int64 of the digits ``split``."""
    if split not in SPLITS:
        raise ValueError(f"digits split {split!r} unknown; choose one of {list(SPLITS)}")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.asarray(bunch.data, dtype=np.float32) / np.float32(MAX_PIXEL)
    labels = np.asarray(bunch.target, dtype=np.int64)
    if pixels.shape != (N_TOTAL, 64):
        raise ValueError(
            f"scikit-learn's digits have shape {pixels.shape}, expected ({N_TOTAL}, 64); "
            "the split in gradmatch.data.digits assumes the bundled data set"
        )
    rows = slice(0, N_TRAIN) if split == "train" else slice(N_TRAIN, N_TOTAL)
    return pixels[rows], labels[rows]
