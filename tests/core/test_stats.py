import math

import numpy as np
import pytest

from gradmatch.core.stats import spearman


def test_spearman_matches_hand_computed_ranks():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one swap among four: 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_spearman_averages_tied_ranks():
    # y ranks (1, 2.5, 2.5, 4): Pearson with (1, 2, 3, 4) = 4.5 / sqrt(5 * 4.5)
    assert spearman([1, 2, 3, 4], [1, 2, 2, 3]) == pytest.approx(4.5 / math.sqrt(5 * 4.5))


def test_spearman_is_nan_when_undefined():
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))
    assert math.isnan(spearman([2, 2, 2], [1, 2, 3]))
    assert math.isnan(spearman([1.0], [2.0]))


def test_spearman_accepts_arrays_and_is_rank_invariant():
    x = np.array([0.1, 0.5, 0.2, 0.9])
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)
