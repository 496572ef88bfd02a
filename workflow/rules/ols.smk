# Figures 4 and 7 (paper H.3, Appendix F): early stopping in OLS. Six small CPU analyses, one job
# each, then two local plots. Tables land in data/generated/ols_early_stopping/ (Fig. 4) and
# data/generated/ols_bootstrap/ (Fig. 7) as <analysis>_<table>.parquet.
OLS_ES = f"{GENERATED}/ols_early_stopping"
OLS_BS = f"{GENERATED}/ols_bootstrap"
OLS_ENDPOINT = {
    name: f"{OLS_ES}/endpoint_{name}.parquet" for name in ("endpoint", "theory")
}
OLS_FIXED = {
    name: f"{OLS_ES}/fixed_stop_{name}.parquet" for name in ("estimate", "error")
}
OLS_VARIABLE = {
    name: f"{OLS_ES}/variable_stop_{name}.parquet" for name in ("endpoints", "distance")
}
OLS_TRACE = f"{OLS_ES}/ridge_trace.parquet"
OLS_BOOT = {
    name: f"{OLS_BS}/bootstrap_{name}.parquet"
    for name in ("theory", "estimates", "distance")
}
OLS_SIGMA = f"{OLS_BS}/sigma_sweep.parquet"
FIGURE_TARGETS["fig4"] = FIG4 = figure_files("fig4_ols_early_stopping")
FIGURE_TARGETS["fig7"] = FIG7 = figure_files("fig7_ols_bootstrap")


localrules:
    plot_fig4,
    plot_fig7,


rule ols_endpoint:
    output:
        **OLS_ENDPOINT,
    log:
        "data/logs/ols/ols_endpoint.log",
    threads: 1
    resources:
        runtime=10,
        mem_mb=1000,
    params:
        settings=section_json("ols_endpoint"),
        globals=globals_json(),
        outs=out_flags(OLS_ENDPOINT),
    shell:
        "gradmatch ols-endpoint --settings {params.settings:q} --globals {params.globals:q} "
        "{params.outs} > {log:q} 2>&1"


rule ols_fixed_stop:
    output:
        **OLS_FIXED,
    log:
        "data/logs/ols/ols_fixed_stop.log",
    threads: 1
    resources:
        runtime=10,
        mem_mb=1000,
    params:
        settings=section_json("ols_fixed_stop"),
        globals=globals_json(),
        outs=out_flags(OLS_FIXED),
    shell:
        "gradmatch ols-fixed-stop --settings {params.settings:q} --globals {params.globals:q} "
        "{params.outs} > {log:q} 2>&1"


rule ols_variable_stop:
    output:
        **OLS_VARIABLE,
    log:
        "data/logs/ols/ols_variable_stop.log",
    threads: 1
    resources:
        runtime=20,
        mem_mb=2000,
    params:
        settings=section_json("ols_variable_stop"),
        globals=globals_json(),
        outs=out_flags(OLS_VARIABLE),
    shell:
        "gradmatch ols-variable-stop --settings {params.settings:q} "
        "--globals {params.globals:q} {params.outs} > {log:q} 2>&1"


rule ols_ridge_trace:
    output:
        OLS_TRACE,
    log:
        "data/logs/ols/ols_ridge_trace.log",
    threads: 1
    resources:
        runtime=20,
        mem_mb=1000,
    params:
        settings=section_json("ols_ridge_trace"),
        globals=globals_json(),
    shell:
        "gradmatch ols-ridge-trace --settings {params.settings:q} --globals {params.globals:q} "
        "--out {output:q} > {log:q} 2>&1"


rule ols_bootstrap:
    output:
        **OLS_BOOT,
    log:
        "data/logs/ols/ols_bootstrap.log",
    threads: 1
    resources:
        runtime=10,
        mem_mb=1000,
    params:
        settings=section_json("ols_bootstrap"),
        globals=globals_json(),
        outs=out_flags(OLS_BOOT),
    shell:
        "gradmatch ols-bootstrap --settings {params.settings:q} --globals {params.globals:q} "
        "{params.outs} > {log:q} 2>&1"


rule ols_bootstrap_sigma:
    output:
        OLS_SIGMA,
    log:
        "data/logs/ols/ols_bootstrap_sigma.log",
    threads: 1
    resources:
        runtime=20,
        mem_mb=2000,
    params:
        settings=section_json("ols_bootstrap_sigma"),
        globals=globals_json(),
    shell:
        "gradmatch ols-bootstrap-sigma --settings {params.settings:q} "
        "--globals {params.globals:q} --out {output:q} > {log:q} 2>&1"


rule plot_fig4:
    input:
        endpoint=OLS_ENDPOINT["endpoint"],
        theory=OLS_ENDPOINT["theory"],
        fixed_estimate=OLS_FIXED["estimate"],
        variable_distance=OLS_VARIABLE["distance"],
        ridge_trace=OLS_TRACE,
    output:
        pdf=report(
            FIG4[0],
            caption="../report/fig4.rst",
            category="Figures",
            subcategory="Figure 4",
        ),
        png=report(
            FIG4[1],
            caption="../report/fig4.rst",
            category="Figures",
            subcategory="Figure 4",
        ),
    log:
        "data/logs/ols/plot_fig4.log",
    params:
        inputs=lambda wildcards, input: " ".join(
            f"--input {name}={path}" for name, path in input.items()
        ),
    shell:
        "gradmatch plot-fig4-ols-early-stopping {params.inputs} "
        "--pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"


rule plot_fig7:
    input:
        theory=OLS_BOOT["theory"],
        estimates=OLS_BOOT["estimates"],
        distance=OLS_BOOT["distance"],
        sigma_sweep=OLS_SIGMA,
    output:
        pdf=report(
            FIG7[0],
            caption="../report/fig7.rst",
            category="Figures",
            subcategory="Figure 7",
        ),
        png=report(
            FIG7[1],
            caption="../report/fig7.rst",
            category="Figures",
            subcategory="Figure 7",
        ),
    log:
        "data/logs/ols/plot_fig7.log",
    params:
        inputs=lambda wildcards, input: " ".join(
            f"--input {name}={path}" for name, path in input.items()
        ),
    shell:
        "gradmatch plot-fig7-ols-bootstrap {params.inputs} "
        "--pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"
