"""Figure 7 claims (fig7.bootstrap, fig7.sigma) on the bootstrap tables' layouts."""

from __future__ import annotations

import pandas as pd

from gradmatch.report.claims import fig7


def test_claim_fig7_bindings_flip():
    boot = pd.DataFrame(
        {"m": [1, 50, 100], "distance_frobenius": [2.0, 1.0, 0.9], "zero_baseline_frobenius": 1.0}
    )
    assert fig7.claim_fig7_bootstrap(boot).passed
    boot.loc[2, "distance_frobenius"] = 1.1
    assert not fig7.claim_fig7_bootstrap(boot).passed

    sweep = pd.DataFrame(
        {
            "noise_std": [0.5, 0.5, 10.0, 10.0],
            "distance_frobenius": [3.0, 2.0, 0.5, 0.7],
            "zero_baseline_frobenius": 1.0,
        }
    )
    outcomes = fig7.claim_fig7_sigma(sweep)
    assert all(o.passed for o in outcomes.values())
    sweep["distance_frobenius"] = [0.5, 0.5, 1.5, 1.5]
    outcomes = fig7.claim_fig7_sigma(sweep)
    assert not any(o.passed for o in outcomes.values())
