# Figure 6 (paper H.5): implicit gradient regularization. One GPU job per hidden width trains
# every step size as stacked members and probes each selected checkpoint (Eq. 6); the chunk
# tables are concatenated and plotted locally. The long-horizon appendix figure is one GPU job.
IGR = f"{GENERATED}/igr"
IGR_TABLES = ("runs", "epochs")
IGR_SUMMARY = {name: f"{IGR}/{name}.parquet" for name in IGR_TABLES}
IGR_LONG_HORIZON = f"{IGR}/long_horizon_drift.parquet"
FIGURE_TARGETS["fig6"] = FIG6 = figure_files("fig6_igr")
FIGURE_TARGETS["fig6_long_horizon"] = FIG6_LONG = figure_files("figS_igr_long_horizon")
# chunk indices from the config list only (= igr.n_chunks(settings): one per width)
IGR_CHUNK_FILES = {
    table: expand(
        f"{IGR}/chunk_{{chunk}}_{table}.parquet",
        chunk=range(len(config["igr"]["widths"])),
    )
    for table in IGR_TABLES
}


localrules:
    aggregate_igr,
    plot_fig6,
    plot_fig6_long_horizon,


rule igr_chunk:
    input:
        MNIST_INPUTS,
    output:
        runs=f"{IGR}/chunk_{{chunk}}_runs.parquet",
        epochs=f"{IGR}/chunk_{{chunk}}_epochs.parquet",
    log:
        "data/logs/igr/chunk_{chunk}.log",
    wildcard_constraints:
        chunk=r"\d+",
    threads: 2
    resources:
        gpu=1,
        runtime=120,
        mem_mb=16000,
    params:
        settings=section_json("igr"),
        globals=globals_json(),
    shell:
        "gradmatch igr --settings {params.settings:q} --globals {params.globals:q} "
        "--chunk {wildcards.chunk} --out runs={output.runs:q} "
        "--out epochs={output.epochs:q} > {log:q} 2>&1"


rule aggregate_igr:
    input:
        **IGR_CHUNK_FILES,
    output:
        **IGR_SUMMARY,
    log:
        "data/logs/igr/aggregate.log",
    shell:
        "(gradmatch aggregate {input.runs:q} --out {output.runs:q} --sort-by width lr && "
        "gradmatch aggregate {input.epochs:q} --out {output.epochs:q} "
        "--sort-by width lr epoch) > {log:q} 2>&1"


rule igr_long_horizon:
    input:
        MNIST_INPUTS,
    output:
        IGR_LONG_HORIZON,
    log:
        "data/logs/igr/long_horizon.log",
    threads: 2
    resources:
        gpu=1,
        runtime=60,
        mem_mb=8000,
    params:
        settings=section_json("igr_long_horizon"),
        globals=globals_json(),
    shell:
        "gradmatch igr-long-horizon --settings {params.settings:q} "
        "--globals {params.globals:q} --out {output:q} > {log:q} 2>&1"


rule plot_fig6:
    input:
        runs=IGR_SUMMARY["runs"],
    output:
        pdf=report(
            FIG6[0],
            caption="../report/fig6.rst",
            category="Figures",
            subcategory="Figure 6",
        ),
        png=report(
            FIG6[1],
            caption="../report/fig6.rst",
            category="Figures",
            subcategory="Figure 6",
        ),
    log:
        "data/logs/igr/plot_fig6.log",
    shell:
        "gradmatch plot-fig6-igr --input runs={input.runs:q} "
        "--pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"


rule plot_fig6_long_horizon:
    input:
        drift=IGR_LONG_HORIZON,
    output:
        pdf=report(
            FIG6_LONG[0],
            caption="../report/figS_igr_long_horizon.rst",
            category="Figures",
            subcategory="Figure 6 (long horizon)",
        ),
        png=report(
            FIG6_LONG[1],
            caption="../report/figS_igr_long_horizon.rst",
            category="Figures",
            subcategory="Figure 6 (long horizon)",
        ),
    log:
        "data/logs/igr/plot_fig6_long_horizon.log",
    shell:
        "gradmatch plot-figS-igr-long-horizon --input drift={input.drift:q} "
        "--pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"
