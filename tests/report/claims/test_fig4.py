"""Figure 4 claims (fig4b, fig4c, fig4d, fig4e) on the OLS tables' layouts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gradmatch.report.claims import fig4


def test_claim_fig4_bindings_flip():
    endpoint = pd.DataFrame(
        {
            "noise_std": [1.0] * 3 + [10.0] * 3,
            "theta_hat": [1.0, -2.0, 0.5] * 2,
            "theta_retrained_lstsq": [1.0, -2.0, 0.5] * 2,
            "theta_retrained_adam": [1.0005, -2.0, 0.5] * 2,
        }
    )
    assert all(o.passed for o in fig4.claim_fig4c_retrain(endpoint).values())
    endpoint.loc[0, "theta_retrained_adam"] = 1.01  # 0.01 / 2 = 5e-3 > 1e-3
    assert not fig4.claim_fig4c_retrain(endpoint)["adam"].passed

    error = pd.DataFrame({"m": np.arange(1, 13), "relative_frobenius_error": 0.5})
    error.loc[error["m"] >= 10, "relative_frobenius_error"] = 1e-12
    assert fig4.claim_fig4b_from(10)(error).passed
    assert not fig4.claim_fig4b_from(6)(error).passed

    m = np.tile(np.arange(1, 8), 2)
    distance = pd.DataFrame({"m": m, "distance_frobenius": 1.0 / m})
    assert fig4.claim_fig4d(distance).passed
    assert not fig4.claim_fig4d(distance.assign(distance_frobenius=m)).passed

    trace = pd.DataFrame(
        {"lambda_theory": [99.0, 1.0, 0.01], "lambda_hat_lstsq": [99.0, 0.9, 0.0085]}
    )
    trace["lambda_hat_adam"] = trace["lambda_hat_lstsq"]
    assert fig4.claim_fig4e(trace)["lstsq"].passed
    trace.loc[2, "lambda_hat_adam"] = 0.001
    outcome = fig4.claim_fig4e(trace)
    assert outcome["lstsq"].passed and not outcome["adam"].passed
