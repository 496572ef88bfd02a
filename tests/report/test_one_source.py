"""One number, one source: a value in a table reaches the figure, the claims row and the report.

For each figure that annotates a number the claims check, one value is changed in the table and
the change must appear, as the same string, in the figure's text artists, in the claims table
(``measured``) and in the report's LaTeX fragment (``claims-macros.tex``).
"""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from gradmatch import io  # noqa: E402
from gradmatch.plots import fig5 as plot_fig5  # noqa: E402
from gradmatch.plots import fig6 as plot_fig6  # noqa: E402
from gradmatch.plots import figS1 as plot_figS1  # noqa: E402
from gradmatch.report.claims import claims_macros, evaluate_claims, fig5, fig6, figS1  # noqa: E402
from gradmatch.report.claims.latex import format_measured  # noqa: E402


def figure_text(figure) -> str:
    """Every string the figure draws: titles, labels, legend entries, annotations."""
    return "\n".join(t.get_text() for t in figure.findobj(Text) if t.get_text())


def three_views(claims, table_id: str, frame: pd.DataFrame, plot, name: str, tmp_path):
    """(figure text, claims table, macros text) from one table written to parquet."""
    path = tmp_path / f"{name}.parquet"
    io.write_parquet(frame, path)
    figure = plot.draw({name: io.read_parquet(path)})
    text = figure_text(figure)
    plt.close(figure)
    table = evaluate_claims(claims, paths={table_id: str(path)}, check=False)
    return text, table.set_index("claim_id"), claims_macros(table)


def members() -> pd.DataFrame:
    rows = []
    for depth, width, rate, seed in itertools.product((1, 2), (8,), (0.0, 0.2, 0.4), (1, 2)):
        rows.append(
            {"dataset": "digits", "preset": "smoke", "depth": depth, "width": width,
             "dropout_rate": rate, "seed": seed, "has_dropout": depth > 1 and rate > 0,
             "lambda_hat_lstsq": 1e-4 * (1 + rate) + 1e-6 * seed, "fit_loss_lstsq": 1e-6,
             "lambda_hat_adam": 1e-2, "spearman_rate_lambda_lstsq": 0.8124,
             "spearman_rate_lambda_adam": 0.5, "adam_converged": False,
             "fit_loss_excess_adam": 10.0}
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_fig5_rho_is_one_column_in_figure_claims_and_report(tmp_path):
    frame = members()
    for rho in (0.8124, 0.6431):
        frame.loc[frame["depth"] == 2, "spearman_rate_lambda_lstsq"] = rho
        text, table, macros = three_views(
            fig5.CLAIMS, "dropout.members", frame, plot_fig5, "members", tmp_path
        )
        row = table.loc["fig5.monotone.d2_w8_lstsq"]
        shown = format_measured(row["measured"], row["verdict"])
        assert shown == f"{rho:.4g}"
        assert f"Spearman ρ = {shown}" in text  # the facet title
        assert rf"\@namedef{{gmclaim@fig5.monotone.d2_w8_lstsq@measured}}{{{shown}}}" in macros
        assert f"d2\\_w8\\_lstsq: {shown} ({row['verdict']})" in macros  # the report's rows list
        # the networks behind the facet: the same count in the title and the claim's detail
        assert row["detail"] == "3 rates × 2 seeds" and f"networks: {row['detail']}" in text
        assert "depth 1 not shown: no dropout layer" in text
        assert table.loc["fig5.monotone.d1_w8_lstsq", "verdict"] == "n/a"
        # the Adam fit's convergence, counted from the table's adam_converged column
        assert r"d2\_w8\_adam: 3 rates \ensuremath{\times} 2 seeds; median" in macros
        assert "converged 0/6, median objective excess 10" in macros
    assert table.loc["fig5.monotone.d2_w8_lstsq", "verdict"] == "FAIL"


def drift() -> pd.DataFrame:
    rows = []
    for case, data in (("linear_eta0.01", "synthetic"), ("mlp_tanh", "digits")):
        for step in range(4):
            original = 0.1 * step
            rows.append(
                {"case": case, "data": data, "lr": 0.01, "step": step, "time": 0.01 * step,
                 "drift_original": original, "drift_modified": 0.01 * step,
                 "drift_ratio": 0.1 if step else float("nan"), "preset": "smoke"}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_figS1_last_ratio_is_one_column_in_figure_claims_and_report(tmp_path):
    frame = drift()
    last = (frame["case"] == "mlp_tanh") & (frame["step"] == 3)
    for ratio in (0.1, 0.02345):
        frame.loc[last, "drift_ratio"] = ratio
        text, table, macros = three_views(
            figS1.CLAIMS, "igr_long_horizon.drift", frame, plot_figS1, "drift", tmp_path
        )
        row = table.loc["figS1.closer.mlp_tanh"]
        shown = format_measured(row["measured"], row["verdict"])
        assert shown == f"{ratio:.4g}"
        assert f"MLP tanh η=0.01: ratio {shown} at step 3" in text  # the legend of (b)
        assert rf"\@namedef{{gmclaim@figS1.closer.mlp_tanh@measured}}{{{shown}}}" in macros
    assert "(2 trajectories)" in text


def runs(excluded: int) -> pd.DataFrame:
    rows = []
    for index, (p, lr) in enumerate(itertools.product((100, 400), (0.01, 0.1))):
        out = index < excluded
        rows.append(
            {"n_params": p, "lr": lr, "excluded": out, "min_train_accuracy": 0.9,
             "r_ig": 1.0, "lambda_hat": float("nan") if out else lr * p / 4,
             "lambda_theory": lr * p / 4, "test_accuracy": 0.9, "preset": "smoke",
             "dataset": "digits"}
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_fig6_run_counts_are_one_column_in_figure_claims_and_report(tmp_path):
    for excluded in (0, 1):
        text, table, macros = three_views(
            fig6.CLAIMS, "igr.runs", runs(excluded), plot_fig6, "runs", tmp_path
        )
        kept = 4 - excluded
        assert f"{kept} of 4 runs shown; {excluded} excluded" in text
        detail = table.loc["fig6.calibration", "detail"]
        assert detail.endswith(f"{kept} included, {excluded} excluded")
        assert f"{kept} included, {excluded} excluded}}" in macros
