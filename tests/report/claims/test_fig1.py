"""Figure 1 claim (ridge.exact) on the ridge_stationarity.arrows layout."""

from __future__ import annotations

import pandas as pd

from gradmatch.report.claims import fig1


def test_claim_ridge_on_the_fig1_arrows_layout():
    theta, lam = 1.25, 0.8
    arrows = pd.DataFrame(
        {
            "arrow": ["grad_penalty", "grad_mse"],
            "theta": [theta, theta],
            "slope": [2 * lam * theta, -2 * lam * theta],
            "penalty_strength": [lam, lam],
            "preset": "smoke",
        }
    )
    assert fig1.claim_ridge(arrows).passed
    arrows.loc[1, "slope"] *= 1 + 1e-6
    assert not fig1.claim_ridge(arrows).passed
