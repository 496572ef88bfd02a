"""Figure S1 claim (figS1.closer, formerly igr_lh.closer) on the igr_long_horizon.drift layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradmatch.report.claims import figS1


def test_claim_long_horizon_per_case_flips_at_one():
    steps = np.arange(4)
    frames = []
    for case, data, final in (("linear_eta0.01", "synthetic", 0.02), ("mlp_tanh", "digits", 0.5)):
        ratio = np.r_[np.nan, np.linspace(0.1, final, 3)]
        frames.append(
            pd.DataFrame(
                {"case": case, "data": data, "lr": 0.01, "step": steps, "drift_ratio": ratio}
            )
        )
    table = pd.concat(frames, ignore_index=True)
    outcomes = figS1.claim_long_horizon(table)
    assert list(outcomes) == ["linear_eta0.01", "mlp_tanh"]
    assert all(o.passed for o in outcomes.values())
    assert outcomes["mlp_tanh"].measured == pytest.approx(0.5)
    assert outcomes["mlp_tanh"].detail == "digits, η = 0.01, step 3"
    assert outcomes["mlp_tanh"].dataset == "digits"
    table.loc[table.index[-1], "drift_ratio"] = 1.01  # only the last step counts
    moved = figS1.claim_long_horizon(table)
    assert not moved["mlp_tanh"].passed and moved["linear_eta0.01"].passed
