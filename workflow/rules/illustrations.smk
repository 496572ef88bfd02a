# Figures 1 and 2 (paper Appendix H.1): two cheap illustrations, one CPU job each, then a plot.
# Tables land in data/generated/illustrations/<analysis>_<table>.parquet.
ILLUSTRATIONS = f"{GENERATED}/illustrations"
RIDGE = {
    name: f"{ILLUSTRATIONS}/ridge_stationarity_{name}.parquet"
    for name in ("curves", "points", "arrows")
}
FLOW = {
    name: f"{ILLUSTRATIONS}/sgd_vs_flow_{name}.parquet"
    for name in ("path", "sgd_steps", "markers", "loss_grid")
}
FIGURE_TARGETS["fig1"] = FIG1 = figure_files("fig1_ridge_stationarity")
FIGURE_TARGETS["fig2"] = FIG2 = figure_files("fig2_sgd_vs_flow")


localrules:
    plot_fig1,
    plot_fig2,


rule ridge_stationarity:
    output:
        **RIDGE,
    log:
        "data/logs/illustrations/ridge_stationarity.log",
    threads: 1
    resources:
        runtime=5,
        mem_mb=1000,
    params:
        settings=section_json("ridge_stationarity"),
        globals=globals_json(),
    shell:
        "gradmatch ridge-stationarity --settings {params.settings:q} "
        "--globals {params.globals:q} --out curves={output.curves:q} "
        "--out points={output.points:q} --out arrows={output.arrows:q} > {log:q} 2>&1"


rule sgd_vs_flow:
    output:
        **FLOW,
    log:
        "data/logs/illustrations/sgd_vs_flow.log",
    threads: 1
    resources:
        runtime=10,
        mem_mb=2000,
    params:
        settings=section_json("sgd_vs_flow"),
        globals=globals_json(),
    shell:
        "gradmatch sgd-vs-flow --settings {params.settings:q} "
        "--globals {params.globals:q} --out path={output.path:q} "
        "--out sgd_steps={output.sgd_steps:q} --out markers={output.markers:q} "
        "--out loss_grid={output.loss_grid:q} > {log:q} 2>&1"


rule plot_fig1:
    input:
        **RIDGE,
    output:
        pdf=report(
            FIG1[0],
            caption="../report/fig1.rst",
            category="Figures",
            subcategory="Figure 1",
        ),
        png=report(
            FIG1[1],
            caption="../report/fig1.rst",
            category="Figures",
            subcategory="Figure 1",
        ),
    log:
        "data/logs/illustrations/plot_fig1.log",
    shell:
        "gradmatch plot-fig1-ridge-stationarity --input curves={input.curves:q} "
        "--input points={input.points:q} --input arrows={input.arrows:q} "
        "--pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"


rule plot_fig2:
    input:
        **FLOW,
    output:
        pdf=report(
            FIG2[0],
            caption="../report/fig2.rst",
            category="Figures",
            subcategory="Figure 2",
        ),
        png=report(
            FIG2[1],
            caption="../report/fig2.rst",
            category="Figures",
            subcategory="Figure 2",
        ),
    log:
        "data/logs/illustrations/plot_fig2.log",
    shell:
        "gradmatch plot-fig2-sgd-vs-flow --input path={input.path:q} "
        "--input sgd_steps={input.sgd_steps:q} --input markers={input.markers:q} "
        "--input loss_grid={input.loss_grid:q} "
        "--pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"
