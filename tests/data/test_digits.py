"""The bundled digits: shapes, range, and the fixed split."""

from __future__ import annotations

import pytest
import torch

from gradmatch.data import load_images, train_val_indices


@pytest.mark.parametrize(("split", "n"), [("train", 1500), ("test", 297)])
def test_digits_shapes_and_range(split, n):
    X, y = load_images("digits", split)
    assert X.shape == (n, 64) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0
    assert set(y.tolist()) == set(range(10))


def test_digits_split_is_fixed_and_disjoint():
    X_train, _ = load_images("digits", "train")
    X_again, _ = load_images("digits", "train")
    X_test, _ = load_images("digits", "test")
    assert torch.equal(X_train, X_again)
    assert X_train.shape[0] + X_test.shape[0] == 1797


def test_train_val_indices_match_random_split():
    train, val = train_val_indices(600, 0.1, seed=42)
    reference = torch.utils.data.random_split(
        range(600), [540, 60], generator=torch.Generator().manual_seed(42)
    )
    assert train.tolist() == list(reference[0].indices)
    assert val.tolist() == list(reference[1].indices)
