"""Figure 3 claim (fig3.band) on the elastic_net.summary layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradmatch.report.claims import fig3


def test_claim_fig3_band_per_method_and_coefficient():
    grid = [(a, b) for a in (1e-4, 1e-3, 1e-1, 10.0) for b in (1e-4, 1e-3, 1e-1, 10.0)]
    frame = pd.DataFrame(grid, columns=["lambda_true_l1", "lambda_true_l2"])
    for method in ("adam", "lstsq"):
        frame[f"lambda_hat_l1_{method}"] = frame["lambda_true_l1"] * 2.0  # 0.30 decades off
        frame[f"lambda_hat_l2_{method}"] = frame["lambda_true_l2"] / 2.0
    frame.loc[frame["lambda_true_l1"] == 10.0, "lambda_hat_l1_adam"] = 1e-6  # outside the band
    outcomes = fig3.claim_fig3(frame)
    assert sorted(outcomes) == ["l1_adam", "l1_lstsq", "l2_adam", "l2_lstsq"]
    assert all(o.passed for o in outcomes.values())
    assert outcomes["l1_adam"].measured == pytest.approx(np.log10(2.0))
    frame["lambda_hat_l2_lstsq"] = frame["lambda_true_l2"] * 4.0  # 0.60 decades
    assert not fig3.claim_fig3(frame)["l2_lstsq"].passed
