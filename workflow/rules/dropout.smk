# Figure 5 (paper Section 3, H.4): the implicit L2 penalty of dropout.
# One GPU job per (depth, width) chunk trains every rate × seed batched and matches the ridge
# family; chunks land in data/generated/dropout/chunk_<i>.parquet, aggregated to members.parquet.
# With dataset: mnist the chunks take the downloaded files as input (download_mnist runs first).
DROPOUT = f"{GENERATED}/dropout"
DROPOUT_CHUNKS = range(
    len(config["dropout"]["depths"]) * len(config["dropout"]["widths"])
)
FIGURE_TARGETS["fig5"] = FIG5 = figure_files("fig5_dropout")


localrules:
    aggregate_dropout,
    plot_fig5,


rule dropout_chunk:
    input:
        MNIST_INPUTS,
    output:
        f"{DROPOUT}/chunk_{{chunk}}.parquet",
    log:
        "data/logs/dropout/chunk_{chunk}.log",
    wildcard_constraints:
        chunk=r"\d+",
    threads: 1
    resources:
        gpu=1,
        runtime=240,
        mem_mb=16000,
    params:
        settings=section_json("dropout"),
        globals=globals_json(),
    shell:
        "gradmatch dropout --settings {params.settings:q} --globals {params.globals:q} "
        "--chunk {wildcards.chunk} --out {output:q} > {log:q} 2>&1"


rule aggregate_dropout:
    input:
        expand(f"{DROPOUT}/chunk_{{chunk}}.parquet", chunk=DROPOUT_CHUNKS),
    output:
        f"{DROPOUT}/members.parquet",
    log:
        "data/logs/dropout/aggregate.log",
    shell:
        "gradmatch aggregate {input:q} --out {output:q} "
        "--sort-by depth width dropout_rate seed > {log:q} 2>&1"


rule plot_fig5:
    input:
        members=f"{DROPOUT}/members.parquet",
    output:
        pdf=report(
            FIG5[0],
            caption="../report/fig5.rst",
            category="Figures",
            subcategory="Figure 5",
        ),
        png=report(
            FIG5[1],
            caption="../report/fig5.rst",
            category="Figures",
            subcategory="Figure 5",
        ),
    log:
        "data/logs/dropout/plot_fig5.log",
    shell:
        "gradmatch plot-fig5-dropout --input members={input.members:q} "
        "--pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"
