"""Claim functions: each verdict flips when its measured value crosses the tolerance."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gradmatch.report import claims


def test_spearman_matches_hand_computed_ranks():
    assert claims.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert claims.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one adjacent swap among 4 values: 1 - 6*2/(4*15) = 0.8
    assert claims.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert math.isnan(claims.spearman([1, 2, 3], [5, 5, 5]))


def test_ridge_recovery_flips_when_lambda_is_off_by_more_than_tol():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.standard_normal(50)
    lam, n = 0.3, X.shape[0]
    # minimiser of (1/n)||y - X θ||² + λ||θ||²; −∇L = (2/n) Xᵀ(y − Xθ) = 2λθ there
    theta = np.linalg.solve(X.T @ X / n + lam * np.eye(4), X.T @ y / n)
    target = 2.0 / n * X.T @ (y - X @ theta)
    exact = claims.ridge_recovery(theta, target, lam, tol=1e-8)
    assert exact.passed and exact.measured < 1e-10
    shifted = claims.ridge_recovery(theta, target, lam * (1 + 1e-6), tol=1e-8)
    assert not shifted.passed and shifted.measured == pytest.approx(1e-6, rel=1e-3)


def test_retrain_equality_flips():
    theta = np.array([1.0, -2.0, 4.0])
    assert claims.retrain_equality(theta + 1e-6, theta, tol=1e-4).passed
    moved = claims.retrain_equality(theta + np.array([0, 0, 1e-3]), theta, tol=1e-4)
    assert not moved.passed and moved.measured == pytest.approx(1e-3 / 4)


def test_recovery_from_m_uses_only_m_at_least_m_min():
    frame = pd.DataFrame({"m": [1, 5, 6, 10], "relative_error": [0.9, 0.5, 1e-9, 1e-10]})
    ok = claims.recovery_from_m(frame, m_min=6, tol=1e-6)
    assert ok.passed and ok.measured == pytest.approx(1e-9) and ok.detail == "m = 6..10"
    frame.loc[frame["m"] == 10, "relative_error"] = 2e-6
    assert not claims.recovery_from_m(frame, m_min=6, tol=1e-6).passed
    with pytest.raises(ValueError, match="no row with m >= 20"):
        claims.recovery_from_m(frame, m_min=20)


def test_decreases_with_flips_on_a_rising_tail():
    m = np.repeat(np.arange(1, 6), 2)
    falling = pd.DataFrame({"m": m, "distance": 1.0 / m})
    verdict = claims.decreases_with(falling, x_col="m", y_col="distance", threshold=-0.8)
    assert verdict.passed and verdict.measured == pytest.approx(-1.0)
    rising = falling.assign(distance=np.where(m >= 3, m, 1.0 / m))
    flipped = claims.decreases_with(rising, x_col="m", y_col="distance", threshold=-0.8)
    assert not flipped.passed and flipped.measured > -0.8


def test_tracks_in_log_flips_past_the_decade_tolerance():
    frame = pd.DataFrame({"est": [1.0, 0.1, 0.01], "ref": [1.0, 0.1, 0.0105]})
    assert claims.tracks_in_log(frame, estimate_col="est", reference_col="ref").passed
    frame.loc[2, "est"] = 0.0105 * 10**0.11
    moved = claims.tracks_in_log(frame, estimate_col="est", reference_col="ref", tol_decades=0.1)
    assert not moved.passed and moved.measured == pytest.approx(0.11)


def test_band_recovery_looks_only_inside_the_band():
    grid = pd.DataFrame(
        {"lambda_true": [1e-4, 1e-2, 1e-2, 1e-1, 1e1], "lambda_hat": [1e-1, 1.2e-2, 0.8e-2, 0.1, 1]}
    )
    kw = {"true_col": "lambda_true", "estimate_col": "lambda_hat", "band": (1e-2, 1e-1)}
    ok = claims.band_recovery(grid, tol_decades=0.3, **kw)
    assert ok.passed and ok.measured == pytest.approx(0.0)
    grid.loc[grid["lambda_true"] == 1e-1, "lambda_hat"] = 1.0  # one decade off
    grid.loc[grid["lambda_true"] == 1e-2, "lambda_hat"] = 1e-1
    bad = claims.band_recovery(grid, tol_decades=0.3, **kw)
    assert not bad.passed and bad.measured == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"no lambda_true in \[1, 2\]"):
        claims.band_recovery(grid, **{**kw, "band": (1.0, 2.0)})


def test_increases_with_flips_when_the_median_trend_breaks():
    rates = np.repeat([0.0, 0.1, 0.2, 0.3], 3)
    frame = pd.DataFrame({"dropout": rates, "lambda_hat": 1 + rates + 0.01 * np.tile([0, 1, 2], 4)})
    ok = claims.increases_with(frame, x_col="dropout", y_col="lambda_hat", threshold=0.9)
    assert ok.passed and ok.measured == pytest.approx(1.0)
    broken = frame.assign(lambda_hat=np.where(rates == 0.3, 0.5, frame["lambda_hat"]))
    bad = claims.increases_with(broken, x_col="dropout", y_col="lambda_hat", threshold=0.9)
    assert not bad.passed and bad.measured == pytest.approx(-0.2)  # 1 - 6*12/(4*15)
    with pytest.raises(ValueError, match="at least 3"):
        claims.increases_with(frame[frame["dropout"] < 0.1], x_col="dropout", y_col="lambda_hat")


def test_loglog_slope_flips_outside_target_band():
    x = np.logspace(-2, 2, 9)
    frame = pd.DataFrame({"theory": x, "estimate": 3.0 * x**1.2})
    ok = claims.loglog_slope(frame, x_col="theory", y_col="estimate", target=1.0, tol=0.25)
    assert ok.passed and ok.measured == pytest.approx(1.2)
    steep = frame.assign(estimate=3.0 * x**1.3)
    assert not claims.loglog_slope(steep, x_col="theory", y_col="estimate", tol=0.25).passed


def test_beats_baseline_flips_at_one():
    assert claims.beats_baseline(0.99, 1.0).passed
    moved = claims.beats_baseline(1.01, 1.0)
    assert not moved.passed and moved.measured == pytest.approx(1.01)
    with pytest.raises(ValueError, match="must be > 0"):
        claims.beats_baseline(1.0, 0.0)


def test_nan_measurements_fail():
    assert not claims.at_most(math.nan, 1.0).passed
    assert not claims.at_least(math.nan, 0.0).passed


def test_missing_table_names_the_file_and_rule(tmp_path, monkeypatch):
    monkeypatch.setitem(
        claims.TABLES, "demo", claims.Table(str(tmp_path / "demo.parquet"), "demo_rule")
    )
    claim = claims.Claim(
        "demo.claim", "Fig. 0", "demo", ("demo",), lambda demo: claims.at_most(0, 1)
    )
    with pytest.raises(claims.MissingTableError, match=r"demo\.parquet.*rule demo_rule"):
        claims.evaluate_claims([claim])


def test_failed_claims_stay_in_the_table_and_in_latex(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"x": [1.0, 2.0], "preset": "smoke"}).to_parquet(path)
    monkeypatch.setitem(claims.TABLES, "t", claims.Table(str(path), "rule_t"))
    good = claims.Claim("a.good", "Fig. 9", "λ small", ("t",), lambda t: claims.at_most(1, 2))
    bad = claims.Claim(
        "b.bad",
        "Fig. 9",
        "per facet",
        ("t",),
        lambda t: {"d3_w128": claims.at_least(0.1, 0.8), "d5_w128": claims.at_least(0.9, 0.8)},
    )
    table = claims.evaluate_claims([good, bad])
    assert list(table["claim_id"]) == ["a.good", "b.bad.d3_w128", "b.bad.d5_w128"]
    assert list(table["passed"]) == [True, False, True]
    assert set(table["preset"]) == {"smoke"} and set(table["dataset"]) == {"synthetic"}
    latex = claims.claims_latex(table)
    assert latex.count(r"\textbf{FAIL}") == 1 and latex.count(r"\textbf{pass}") == 2
    assert r"\ensuremath{\lambda} small" in latex and r"b.bad.d3\_w128" in latex
    macros = claims.claims_macros(table)
    assert r"\@namedef{gmclaim@b.bad.d3_w128@verdict}{FAILED}" in macros
    assert "1 failed" in claims.claims_text(table)


def test_tex_escape_maps_symbols_and_refuses_unknown_ones():
    assert claims.tex_escape("λ̂_1 ≤ 5%") == r"\ensuremath{\hat\lambda}\_1 \ensuremath{\leq} 5\%"
    with pytest.raises(ValueError, match="U\\+263A"):
        claims.tex_escape("fine ☺")


def test_every_registered_claim_has_a_latex_statement_and_a_known_table():
    assert {claim.id for claim in claims.CLAIMS} >= {
        "ridge.exact", "fig3.band", "fig4b.exact_from_p", "fig4c.retrain", "fig4d.decreasing",
        "fig4e.trace", "fig7.bootstrap", "fig5.monotone", "fig6.slope", "fig6.calibration",
        "igr_lh.closer",
    }  # fmt: skip
    for claim in claims.CLAIMS:
        assert claims.tex_escape(claim.statement)
        assert set(claim.tables) <= set(claims.TABLES), claim.id
        for name in claim.tables:
            assert claims.TABLES[name].path.startswith("data/generated/")


# ---- the bindings, on frames with the workflow's column names ----


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
    assert claims.claim_ridge(arrows).passed
    arrows.loc[1, "slope"] *= 1 + 1e-6
    assert not claims.claim_ridge(arrows).passed


def test_claim_fig3_band_per_method_and_coefficient():
    grid = [(a, b) for a in (1e-4, 1e-3, 1e-1, 10.0) for b in (1e-4, 1e-3, 1e-1, 10.0)]
    frame = pd.DataFrame(grid, columns=["lambda_true_l1", "lambda_true_l2"])
    for method in ("adam", "lstsq"):
        frame[f"lambda_hat_l1_{method}"] = frame["lambda_true_l1"] * 2.0  # 0.30 decades off
        frame[f"lambda_hat_l2_{method}"] = frame["lambda_true_l2"] / 2.0
    frame.loc[frame["lambda_true_l1"] == 10.0, "lambda_hat_l1_adam"] = 1e-6  # outside the band
    outcomes = claims.claim_fig3(frame)
    assert sorted(outcomes) == ["l1_adam", "l1_lstsq", "l2_adam", "l2_lstsq"]
    assert all(o.passed for o in outcomes.values())
    assert outcomes["l1_adam"].measured == pytest.approx(np.log10(2.0))
    frame["lambda_hat_l2_lstsq"] = frame["lambda_true_l2"] * 4.0  # 0.60 decades
    assert not claims.claim_fig3(frame)["l2_lstsq"].passed


def test_claim_fig4_bindings_flip():
    endpoint = pd.DataFrame(
        {
            "noise_std": [1.0] * 3 + [10.0] * 3,
            "theta_hat": [1.0, -2.0, 0.5] * 2,
            "theta_retrained_lstsq": [1.0, -2.0, 0.5] * 2,
            "theta_retrained_adam": [1.0005, -2.0, 0.5] * 2,
        }
    )
    assert all(o.passed for o in claims.claim_fig4c_retrain(endpoint).values())
    endpoint.loc[0, "theta_retrained_adam"] = 1.01  # 0.01 / 2 = 5e-3 > 1e-3
    assert not claims.claim_fig4c_retrain(endpoint)["adam"].passed

    error = pd.DataFrame({"m": np.arange(1, 13), "relative_frobenius_error": 0.5})
    error.loc[error["m"] >= 10, "relative_frobenius_error"] = 1e-12
    assert claims.claim_fig4b_from(10)(error).passed
    assert not claims.claim_fig4b_from(6)(error).passed

    m = np.tile(np.arange(1, 8), 2)
    distance = pd.DataFrame({"m": m, "distance_frobenius": 1.0 / m})
    assert claims.claim_fig4d(distance).passed
    assert not claims.claim_fig4d(distance.assign(distance_frobenius=m)).passed

    trace = pd.DataFrame(
        {"lambda_theory": [99.0, 1.0, 0.01], "lambda_hat_lstsq": [99.0, 0.9, 0.0085]}
    )
    trace["lambda_hat_adam"] = trace["lambda_hat_lstsq"]
    assert claims.claim_fig4e(trace)["lstsq"].passed
    trace.loc[2, "lambda_hat_adam"] = 0.001
    outcome = claims.claim_fig4e(trace)
    assert outcome["lstsq"].passed and not outcome["adam"].passed


def test_claim_fig7_bindings_flip():
    boot = pd.DataFrame(
        {"m": [1, 50, 100], "distance_frobenius": [2.0, 1.0, 0.9], "zero_baseline_frobenius": 1.0}
    )
    assert claims.claim_fig7_bootstrap(boot).passed
    boot.loc[2, "distance_frobenius"] = 1.1
    assert not claims.claim_fig7_bootstrap(boot).passed

    sweep = pd.DataFrame(
        {
            "noise_std": [0.5, 0.5, 10.0, 10.0],
            "distance_frobenius": [3.0, 2.0, 0.5, 0.7],
            "zero_baseline_frobenius": 1.0,
        }
    )
    outcomes = claims.claim_fig7_sigma(sweep)
    assert all(o.passed for o in outcomes.values())
    sweep["distance_frobenius"] = [0.5, 0.5, 1.5, 1.5]
    outcomes = claims.claim_fig7_sigma(sweep)
    assert not any(o.passed for o in outcomes.values())


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
    outcomes = claims.claim_fig5(frame)
    assert list(outcomes) == ["d1_w128_lstsq", "d1_w128_adam", "d3_w128_lstsq", "d3_w128_adam"]
    for key in ("d1_w128_lstsq", "d1_w128_adam"):
        assert outcomes[key].verdict == "n/a" and not outcomes[key].passed
        assert "no dropout layer at depth 1" in outcomes[key].detail
    for key in ("d3_w128_lstsq", "d3_w128_adam"):
        assert outcomes[key].verdict == "pass" and outcomes[key].measured == pytest.approx(1.0)
    assert outcomes["d3_w128_lstsq"].detail == "4 rates × 2 seeds"
    frame["lambda_hat_adam"] = 0.25 * frame["lambda_hat_lstsq"]
    adam = claims.claim_fig5(frame)["d3_w128_adam"]
    assert adam.detail == "4 rates × 2 seeds; median λ̂_adam/λ̂_lstsq = 0.25"
    # break the trend at the largest rate: ρ of (0, .1, .2, .3) vs (1, 1.1, 1.2, 0) = 1 − 6·12/60
    frame.loc[(frame["depth"] == 3) & (frame["dropout_rate"] == 0.3), "lambda_hat_lstsq"] = 0.0
    flipped = claims.claim_fig5(frame)
    assert flipped["d3_w128_lstsq"].verdict == "FAIL"
    assert flipped["d3_w128_lstsq"].measured == pytest.approx(-0.2)
    assert flipped["d3_w128_adam"].passed


def test_claim_fig5_flips_at_the_spearman_threshold():
    frame = _dropout_frame(depths=(3,), rates=(0.0, 0.1, 0.2, 0.3, 0.4))

    def reorder(mapping):
        frame["lambda_hat_lstsq"] = 1e-3 * (1 + frame["dropout_rate"].replace(mapping))
        return claims.claim_fig5(frame)["d3_w128_lstsq"]

    # one adjacent swap of medians: ρ = 1 − 6·2/(5·24) = 0.9 ≥ 0.8
    above = reorder({0.1: 0.2, 0.2: 0.1})
    assert above.passed and above.measured == pytest.approx(0.9)
    # a 3-cycle of the lowest rates (rank gaps 1, 1, 2): ρ = 1 − 6·6/120 = 0.7 < 0.8
    below = reorder({0.0: 0.1, 0.1: 0.2, 0.2: 0.0})
    assert not below.passed and below.measured == pytest.approx(0.7)


def test_claim_fig6_slope_and_calibration_flip():
    theory = np.array([1.0, 10.0, 100.0, 1000.0, 5.0])
    runs = pd.DataFrame(
        {"lambda_theory": theory, "lambda_hat": 0.8 * theory, "excluded": [False] * 4 + [True]}
    )
    runs.loc[4, "lambda_hat"] = np.nan  # an excluded run has no estimate
    outcomes = claims.claim_fig6(runs)
    assert outcomes["slope"].passed and outcomes["slope"].measured == pytest.approx(1.0)
    assert outcomes["slope"].detail == "4 runs; 1 excluded"
    assert outcomes["calibration"].passed
    assert outcomes["calibration"].measured == pytest.approx(-np.log10(0.8))
    assert outcomes["calibration"].detail.startswith("λ̂/(ηp/4): median 0.80, range 0.80–0.80")
    assert claims.tex_escape(outcomes["calibration"].detail)
    # slope 1.24 passes, 1.26 fails (tolerance 0.25)
    runs["lambda_hat"] = theory**1.24
    assert claims.claim_fig6(runs)["slope"].passed
    runs["lambda_hat"] = theory**1.26
    assert not claims.claim_fig6(runs)["slope"].passed
    # calibration: a factor 10**0.49 passes, 10**0.51 fails (half a decade)
    runs["lambda_hat"] = theory * 10**0.49
    assert claims.claim_fig6(runs)["calibration"].passed
    runs["lambda_hat"] = theory * 10**0.51
    outcome = claims.claim_fig6(runs)["calibration"]
    assert not outcome.passed and outcome.measured == pytest.approx(0.51)


def test_claim_fig6_fails_without_two_included_runs_and_counts_the_excluded():
    runs = pd.DataFrame(
        {"lambda_theory": [1.0, 10.0, 100.0], "lambda_hat": [0.9, np.nan, np.nan],
         "excluded": [False, True, True]}
    )  # fmt: skip
    outcomes = claims.claim_fig6(runs)
    for outcome in outcomes.values():
        assert outcome.verdict == "FAIL" and math.isnan(outcome.measured)
        assert "1 included, 2 excluded" in outcome.detail


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
    outcomes = claims.claim_long_horizon(table)
    assert list(outcomes) == ["linear_eta0.01", "mlp_tanh"]
    assert all(o.passed for o in outcomes.values())
    assert outcomes["mlp_tanh"].measured == pytest.approx(0.5)
    assert outcomes["mlp_tanh"].detail == "digits, η = 0.01, step 3"
    assert outcomes["mlp_tanh"].dataset == "digits"
    table.loc[table.index[-1], "drift_ratio"] = 1.01  # only the last step counts
    moved = claims.claim_long_horizon(table)
    assert not moved["mlp_tanh"].passed and moved["linear_eta0.01"].passed


def test_not_applicable_rows_are_listed_and_neither_pass_nor_fail(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"x": [1.0], "preset": "smoke", "dataset": "digits"}).to_parquet(path)
    monkeypatch.setitem(claims.TABLES, "t", claims.Table(str(path), "rule_t"))
    claim = claims.Claim(
        "c",
        "Fig. 5",
        "facets",
        ("t",),
        lambda t: {"d1": claims.not_applicable("no dropout"), "d3": claims.at_least(0.9, 0.8)},
    )
    table = claims.evaluate_claims([claim])
    assert list(table["verdict"]) == ["n/a", "pass"]
    assert set(table["dataset"]) == {"digits"}
    latex = claims.claims_latex(table)
    assert r"\multicolumn{4}{@{}l}{\texttt{c.d1}}\\*" in latex
    assert r"\quad facets (d1) & -- & n/a & n/a\\[2pt]" in latex
    macros = claims.claims_macros(table)
    assert r"\@namedef{gmclaim@c.d1@verdict}{not applicable}" in macros
    assert r"\@namedef{gmclaim@c@tally}{1 of 1 passed, 1 not applicable}" in macros
    assert r"\@namedef{gmclaim@c@rows}{d1: -- (n/a); d3: 0.9 (pass)}" in macros
    assert r"\@namedef{gmclaim@c@dataset}{digits}" in macros
    assert claims.claims_text(table).endswith("1 passed, 0 failed, 1 not applicable")


def test_strict_exit_ignores_not_applicable_rows(tmp_path, monkeypatch, capsys):
    import argparse

    path = tmp_path / "t.parquet"
    pd.DataFrame({"x": [1.0], "preset": "smoke"}).to_parquet(path)
    monkeypatch.setitem(claims.TABLES, "t", claims.Table(str(path), "rule_t"))
    verdicts = {"d1": claims.not_applicable("none"), "d3": claims.at_least(0.9, 0.8)}
    claim = claims.Claim("c", "Fig. 5", "facets", ("t",), lambda t: dict(verdicts))
    monkeypatch.setattr(claims, "CLAIMS", [claim])
    args = argparse.Namespace(input=[], out=None, tex=None, macros=None, strict=True)
    assert claims.command(args) == 0
    verdicts["d3"] = claims.at_least(0.7, 0.8)
    assert claims.command(args) == 3
    assert "0 passed, 1 failed, 1 not applicable" in capsys.readouterr().out
