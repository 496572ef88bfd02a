"""Figure 3 claim (fig3.band) on the elastic_net.summary layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradmatch.report.claims import fig3
from gradmatch.report.claims.latex import tex_escape


def with_diagnostics(frame: pd.DataFrame) -> pd.DataFrame:
    """The stationarity columns of elastic_net.summary, set so that every cell reads
    ‖∇J‖/‖∇L‖ = 0.5, noise/signal = 0.25 and a share 0.1 inside β."""
    return frame.assign(
        loss_grad_norm=2.0,
        grad_objective_norm=1.0,
        l1_signal_norm=0.5,
        l1_unique_signal=0.4,
        l1_unique_noise=0.1,
        share_inside_beta=0.1,
    )


def test_claim_fig3_band_per_method_and_coefficient():
    grid = [(a, b) for a in (1e-4, 1e-3, 1e-1, 10.0) for b in (1e-4, 1e-3, 1e-1, 10.0)]
    frame = pd.DataFrame(grid, columns=["lambda_true_l1", "lambda_true_l2"])
    for method in ("adam", "lstsq"):
        frame[f"lambda_hat_l1_{method}"] = frame["lambda_true_l1"] * 2.0  # 0.30 decades off
        frame[f"lambda_hat_l2_{method}"] = frame["lambda_true_l2"] / 2.0
    frame.loc[frame["lambda_true_l1"] == 10.0, "lambda_hat_l1_adam"] = 1e-6  # outside the band
    frame = with_diagnostics(frame)
    outcomes = fig3.claim_fig3(frame)
    assert sorted(outcomes) == ["l1_adam", "l1_lstsq", "l2_adam", "l2_lstsq"]
    assert all(o.passed for o in outcomes.values())
    assert outcomes["l1_adam"].measured == pytest.approx(np.log10(2.0))
    frame["lambda_hat_l2_lstsq"] = frame["lambda_true_l2"] * 4.0  # 0.60 decades
    assert not fig3.claim_fig3(frame)["l2_lstsq"].passed


def test_claim_fig3_checks_nnls_beside_lstsq_where_lstsq_goes_negative():
    grid = [(a, b, s) for a in (1e-3, 1e-2, 1e-1) for b in (1e-3, 1e-1) for s in (0, 1)]
    frame = pd.DataFrame(grid, columns=["lambda_true_l1", "lambda_true_l2", "seed"])
    for coefficient in ("l1", "l2"):
        frame[f"lambda_hat_{coefficient}_lstsq"] = frame[f"lambda_true_{coefficient}"]
        frame[f"lambda_hat_{coefficient}_nnls"] = frame[f"lambda_true_{coefficient}"]
    small = frame["lambda_true_l1"] == 1e-2
    frame.loc[small, "lambda_hat_l1_lstsq"] = [-0.03, 0.01, -0.03, 0.01]  # mean −0.01
    frame.loc[small, "lambda_hat_l1_nnls"] = [0.0, 0.01, 0.0, 0.01]  # mean 0.005
    outcomes = fig3.claim_fig3(with_diagnostics(frame))
    assert sorted(outcomes) == ["l1_lstsq", "l1_nnls", "l2_lstsq", "l2_nnls"]
    assert outcomes["l1_lstsq"].measured == np.inf  # a mean λ̂1 ≤ 0 has no log-gap
    assert outcomes["l1_nnls"].measured == pytest.approx(0.0)  # median of (0, 0.30, 0) decades
    assert outcomes["l1_nnls"].passed
    assert outcomes["l1_nnls"].detail == "λ̂1 = 0 in 2 of 12 cells in the band"


def small_grid() -> pd.DataFrame:
    """Two true λ1 (1e-3, 1e-2) × two λ2 (1e-3, 1e-1), one seed, with known diagnostics."""
    grid = [(a, b) for a in (1e-3, 1e-2) for b in (1e-3, 1e-1)]
    frame = pd.DataFrame(grid, columns=["lambda_true_l1", "lambda_true_l2"])
    frame["lambda_hat_l1_lstsq"] = [2e-3, -1e-3, -4e-3, 2e-3]  # means 5e-4, -1e-3
    frame["lambda_hat_l2_lstsq"] = frame["lambda_true_l2"]
    frame["loss_grad_norm"] = 2.0
    frame["grad_objective_norm"] = [1.6, 1.6, 1.0, 1.4]  # ratios 0.8, 0.8; 0.5, 0.7
    frame["l1_signal_norm"] = [0.02, 0.02, 0.2, 0.3]
    frame["l1_unique_signal"] = [0.01, 0.01, 0.1, 0.0]  # the last cell: every weight inside β
    frame["l1_unique_noise"] = [0.15, 0.15, 0.2, np.nan]  # noise/signal 15, 15; 2
    frame["share_inside_beta"] = [0.02, 0.04, 0.9, 1.0]
    return frame


def test_lstsq_l1_detail_gives_the_failure_in_numbers_per_true_lambda1():
    outcomes = fig3.claim_fig3(small_grid())
    assert outcomes["l1_lstsq"].measured == np.inf  # the band mean at λ1 = 1e-2 is ≤ 0
    assert outcomes["l1_lstsq"].detail == (
        "band mean λ̂1 per true λ1: 0.001: 5.00e-04, 0.01: -0.001; "
        "per true λ1 (medians over its cells): "
        "λ1 = 0.001: λ̂1 ≤ 0 in 1 of 2 cells, ‖∇J‖/‖∇L‖ = 0.8, noise/signal = 15, "
        "share |θ̂| < β = 0.03; "
        "λ1 = 0.01: λ̂1 ≤ 0 in 1 of 2 cells, ‖∇J‖/‖∇L‖ = 0.6, noise/signal = 2, "
        "share |θ̂| < β = 0.95; "
        "λ̂1 ≤ 0 in 2 of 4 cells in all"
    )
    tex_escape(outcomes["l1_lstsq"].detail)  # every symbol has a LaTeX form


def test_lstsq_l1_detail_follows_the_table():
    frame = small_grid()
    before = fig3.claim_fig3(frame)["l1_lstsq"].detail
    frame.loc[0, "grad_objective_norm"] = 1.2  # ratio 0.6: median at λ1 = 1e-3 becomes 0.7
    after = fig3.claim_fig3(frame)["l1_lstsq"].detail
    assert after == before.replace("‖∇J‖/‖∇L‖ = 0.8", "‖∇J‖/‖∇L‖ = 0.7")
    frame.loc[0, "lambda_hat_l1_lstsq"] = -2e-3
    assert "λ1 = 0.001: λ̂1 ≤ 0 in 2 of 2 cells" in fig3.claim_fig3(frame)["l1_lstsq"].detail


def test_lstsq_l1_diagnostics_without_visible_signal():
    frame = small_grid()
    frame.loc[frame["lambda_true_l1"] == 1e-2, "l1_unique_signal"] = [0.0, 3e-17]  # rounding
    table = fig3.lstsq_l1_diagnostics(frame)
    assert np.isnan(table.loc[1e-2, "noise_to_signal"])
    assert "λ1 = 0.01: λ̂1 ≤ 0 in 1 of 2 cells, ‖∇J‖/‖∇L‖ = 0.6, noise/signal undefined (u = 0)" in (
        fig3.claim_fig3(frame)["l1_lstsq"].detail
    )


def test_lstsq_l1_detail_needs_the_stationarity_columns():
    with pytest.raises(ValueError, match="l1_unique_noise"):
        fig3.claim_fig3(small_grid().drop(columns="l1_unique_noise"))


def test_a_method_left_out_of_fit_methods_has_no_row():
    frame = small_grid().assign(lambda_hat_l1_nnls=np.nan, lambda_hat_l2_nnls=np.nan)
    assert sorted(fig3.claim_fig3(frame)) == ["l1_lstsq", "l2_lstsq"]
