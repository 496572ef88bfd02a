"""Figure 5 claim (fig5.monotone) on the dropout.members layout: it reads the table's ρ."""

from __future__ import annotations

import pandas as pd
import pytest

from gradmatch.core.stats import spearman
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
                     "lambda_hat_lstsq": 1e-3 * (1 + rate), "adam_converged": seed == 0,
                     "fit_loss_excess_adam": 0.5 * (1 + seed)}
                )  # fmt: skip
    frame = pd.DataFrame(rows)
    return with_spearman(frame)


def with_spearman(frame: pd.DataFrame) -> pd.DataFrame:
    """The table's per-(depth, width) ρ columns, computed as gradmatch.experiments.dropout does."""
    frame = frame.copy()
    for method in ("lstsq", "adam"):
        column = f"spearman_rate_lambda_{method}"
        for _, facet in frame.groupby(["depth", "width"]):
            rho = spearman(facet["dropout_rate"], facet[f"lambda_hat_{method}"])
            frame.loc[facet.index, column] = rho
    return frame


def test_claim_fig5_per_facet_reports_facets_without_dropout_as_not_applicable():
    frame = _dropout_frame()
    outcomes = fig5.claim_fig5(frame)
    assert list(outcomes) == ["d1_w128_lstsq", "d1_w128_adam", "d3_w128_lstsq", "d3_w128_adam"]
    for key in ("d1_w128_lstsq", "d1_w128_adam"):
        assert outcomes[key].verdict == "n/a" and not outcomes[key].passed
        assert "no dropout layer at depth 1" in outcomes[key].detail
    # lstsq: ties within a rate (same λ̂ for both seeds); adam: seeds break the ties
    assert outcomes["d3_w128_lstsq"].measured == pytest.approx(
        spearman(frame["dropout_rate"][:8], frame["lambda_hat_lstsq"][:8])
    )
    assert outcomes["d3_w128_adam"].verdict == "pass"
    assert outcomes["d3_w128_lstsq"].detail == "4 rates × 2 seeds"
    frame["lambda_hat_adam"] = 0.25 * frame["lambda_hat_lstsq"]
    adam = fig5.claim_fig5(with_spearman(frame))["d3_w128_adam"]
    assert adam.detail == (
        "4 rates × 2 seeds; median λ̂_adam/λ̂_lstsq = 0.25; converged 4/8, median objective "
        "excess 0.75"
    )


def test_claim_fig5_measures_the_tables_column_not_its_own_statistic():
    """One number, one source: the measured ρ is the table's spearman_rate_lambda_<fit>."""
    frame = _dropout_frame(depths=(3,))
    frame["spearman_rate_lambda_lstsq"] = 0.79  # what the table says, whatever λ̂ holds
    outcome = fig5.claim_fig5(frame)["d3_w128_lstsq"]
    assert outcome.measured == 0.79 and outcome.verdict == "FAIL"
    assert outcome.criterion == "≥ 0.8"
    frame["spearman_rate_lambda_lstsq"] = 0.8
    assert fig5.claim_fig5(frame)["d3_w128_lstsq"].passed


def test_claim_fig5_refuses_a_facet_with_two_rho_values_or_too_few_rates():
    frame = _dropout_frame(depths=(3,))
    frame.loc[0, "spearman_rate_lambda_lstsq"] = 0.1
    with pytest.raises(ValueError, match="takes 2 values in one"):
        fig5.claim_fig5(frame)
    with pytest.raises(ValueError, match="has 2 dropout rate"):
        fig5.claim_fig5(_dropout_frame(depths=(3,), rates=(0.0, 0.5)))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['spearman_rate_lambda_adam'\]"):
        fig5.claim_fig5(_dropout_frame(depths=(3,)).drop(columns="spearman_rate_lambda_adam"))
