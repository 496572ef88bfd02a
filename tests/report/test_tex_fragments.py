"""LaTeX fragments of the report: a macro per config leaf, the figure files, titles and list."""

from __future__ import annotations

import pytest

from gradmatch.report import tex_fragments


def test_settings_fragment_defines_every_config_leaf_and_figure():
    config = {
        "preset": "smoke",
        "wandb": {"mode": "disabled", "project": None, "api_key": "s3cr3t"},
        "ols": {"n_samples": 1000, "noise_stds": [1.0, 10.0], "step_size": 0.01, "name": "a_b"},
    }
    text = tex_fragments.settings_tex(config, {"fig4": "../figures/fig4_ols.pdf"})
    assert r"\@namedef{gmsetting@preset}{smoke}" in text
    assert r"\@namedef{gmsetting@ols.noise_stds}{1, 10}" in text
    assert r"\@namedef{gmsetting@ols.step_size}{0.01}" in text
    assert r"\@namedef{gmsetting@ols.name}{a\_b}" in text
    assert r"\@namedef{gmsetting@wandb.project}{none}" in text
    assert r"\@namedef{gmfigurefile@fig4}{../figures/fig4_ols.pdf}" in text
    assert "s3cr3t" not in text
    assert r"\@namedef{gmsetting@wandb.api_key}{\textless{}redacted\textgreater{}}" in text
    with pytest.raises(ValueError, match="figure 'fig4' must be a .pdf"):
        tex_fragments.settings_tex(config, {"fig4": "../figures/fig4.png"})


def test_figure_list_follows_the_figure_table_order_with_titles():
    figures = {"fig2": "../figures/fig2.pdf", "figS1": "../figures/figS1.pdf"}
    text = tex_fragments.settings_tex({}, figures, {"figS1": "Figure S1 (drift_ratio)"})
    assert r"\def\allfigures{\do{fig2}\do{figS1}}" in text
    assert r"\@namedef{gmfiguretitle@figS1}{Figure S1 (drift\_ratio)}" in text
    assert r"\@namedef{gmfiguretitle@fig2}{fig2}" in text
