"""Figure 5 claim (fig5.monotone) on the dropout.members layout."""

from __future__ import annotations

import pandas as pd
import pytest

from gradmatch.report.claims import fig5


def _dropout_frame(depths=(1, 3), rates=(0.0, 0.1, 0.2, 0.3)) -> pd.DataFrame:
    rows = []
    for depth in depths:
        for rate in rates:
            for seed in range(2):
                rows.append(
                    {"depth": depth, "width": 128, "dropout_rate": rate, "seed": seed,
                     "has_dropout": depth > 1 and rate > 0,
                     "lambda_hat_adam": 1e-3 * (1 + rate) + 1e-5 * seed,
                     "lambda_hat_lstsq": 1e-3 * (1 + rate)}
                )  # fmt: skip
    return pd.DataFrame(rows)


def test_claim_fig5_per_facet_reports_facets_without_dropout_as_not_applicable():
    frame = _dropout_frame()
    outcomes = fig5.claim_fig5(frame)
    assert list(outcomes) == ["d1_w128_lstsq", "d1_w128_adam", "d3_w128_lstsq", "d3_w128_adam"]
    for key in ("d1_w128_lstsq", "d1_w128_adam"):
        assert outcomes[key].verdict == "n/a" and not outcomes[key].passed
        assert "no dropout layer at depth 1" in outcomes[key].detail
    for key in ("d3_w128_lstsq", "d3_w128_adam"):
        assert outcomes[key].verdict == "pass" and outcomes[key].measured == pytest.approx(1.0)
    assert outcomes["d3_w128_lstsq"].detail == "4 rates × 2 seeds"
    frame["lambda_hat_adam"] = 0.25 * frame["lambda_hat_lstsq"]
    adam = fig5.claim_fig5(frame)["d3_w128_adam"]
    assert adam.detail == "4 rates × 2 seeds; median λ̂_adam/λ̂_lstsq = 0.25"
    # break the trend at the largest rate: ρ of (0, .1, .2, .3) vs (1, 1.1, 1.2, 0) = 1 − 6·12/60
    frame.loc[(frame["depth"] == 3) & (frame["dropout_rate"] == 0.3), "lambda_hat_lstsq"] = 0.0
    flipped = fig5.claim_fig5(frame)
    assert flipped["d3_w128_lstsq"].verdict == "FAIL"
    assert flipped["d3_w128_lstsq"].measured == pytest.approx(-0.2)
    assert flipped["d3_w128_adam"].passed


def test_claim_fig5_flips_at_the_spearman_threshold():
    frame = _dropout_frame(depths=(3,), rates=(0.0, 0.1, 0.2, 0.3, 0.4))

    def reorder(mapping):
        frame["lambda_hat_lstsq"] = 1e-3 * (1 + frame["dropout_rate"].replace(mapping))
        return fig5.claim_fig5(frame)["d3_w128_lstsq"]

    # one adjacent swap of medians: ρ = 1 − 6·2/(5·24) = 0.9 ≥ 0.8
    above = reorder({0.1: 0.2, 0.2: 0.1})
    assert above.passed and above.measured == pytest.approx(0.9)
    # a 3-cycle of the lowest rates (rank gaps 1, 1, 2): ρ = 1 − 6·6/120 = 0.7 < 0.8
    below = reorder({0.0: 0.1, 0.1: 0.2, 0.2: 0.0})
    assert not below.passed and below.measured == pytest.approx(0.7)
