"""Figure 6 claims (fig6.slope, fig6.calibration) on the igr.runs layout."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gradmatch.report.claims import fig6
from gradmatch.report.claims.latex import tex_escape


def test_claim_fig6_slope_and_calibration_flip():
    theory = np.array([1.0, 10.0, 100.0, 1000.0, 5.0])
    runs = pd.DataFrame(
        {"lambda_theory": theory, "lambda_hat": 0.8 * theory, "excluded": [False] * 4 + [True]}
    )
    runs.loc[4, "lambda_hat"] = np.nan  # an excluded run has no estimate
    outcomes = fig6.claim_fig6(runs)
    assert outcomes["slope"].passed and outcomes["slope"].measured == pytest.approx(1.0)
    assert outcomes["slope"].detail == "4 runs; 1 excluded"
    assert outcomes["calibration"].passed
    assert outcomes["calibration"].measured == pytest.approx(-np.log10(0.8))
    assert outcomes["calibration"].detail.startswith("λ̂/(ηp/4): median 0.80, range 0.80–0.80")
    assert tex_escape(outcomes["calibration"].detail)
    # slope 1.24 passes, 1.26 fails (tolerance 0.25)
    runs["lambda_hat"] = theory**1.24
    assert fig6.claim_fig6(runs)["slope"].passed
    runs["lambda_hat"] = theory**1.26
    assert not fig6.claim_fig6(runs)["slope"].passed
    # calibration: a factor 10**0.49 passes, 10**0.51 fails (half a decade)
    runs["lambda_hat"] = theory * 10**0.49
    assert fig6.claim_fig6(runs)["calibration"].passed
    runs["lambda_hat"] = theory * 10**0.51
    outcome = fig6.claim_fig6(runs)["calibration"]
    assert not outcome.passed and outcome.measured == pytest.approx(0.51)


def test_claim_fig6_fails_without_two_included_runs_and_counts_the_excluded():
    runs = pd.DataFrame(
        {"lambda_theory": [1.0, 10.0, 100.0], "lambda_hat": [0.9, np.nan, np.nan],
         "excluded": [False, True, True]}
    )  # fmt: skip
    outcomes = fig6.claim_fig6(runs)
    for outcome in outcomes.values():
        assert outcome.verdict == "FAIL" and math.isnan(outcome.measured)
        assert "1 included, 2 excluded" in outcome.detail
