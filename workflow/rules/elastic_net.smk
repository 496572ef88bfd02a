# Figure 3 (paper Section 3, H.2): elastic-net recovery. The (λ1, λ2, seed) grid is cut into
# chunks of `chunk_size` cells; each chunk trains its networks as one batched GPU job, then
# the chunk tables are concatenated and plotted locally.
import math

ELASTIC_NET = f"{GENERATED}/elastic_net"
ELASTIC_NET_SUMMARY = f"{ELASTIC_NET}/summary.parquet"
FIGURE_TARGETS["fig3"] = FIG3 = figure_files("fig3_elastic_net_recovery")


# chunk indices from the config lists only (= elastic_net.n_chunks(settings))
ELASTIC_NET_CHUNK_FILES = expand(
    f"{ELASTIC_NET}/chunk_{{chunk}}.parquet",
    chunk=range(
        math.ceil(
            len(config["elastic_net"]["lambda1_values"])
            * len(config["elastic_net"]["lambda2_values"])
            * len(config["elastic_net"]["seeds"])
            / config["elastic_net"]["chunk_size"]
        )
    ),
)


localrules:
    aggregate_elastic_net,
    plot_fig3,


rule elastic_net_chunk:
    output:
        f"{ELASTIC_NET}/chunk_{{chunk}}.parquet",
    log:
        "data/logs/elastic_net/chunk_{chunk}.log",
    wildcard_constraints:
        chunk=r"\d+",
    threads: 2
    resources:
        gpu=1,
        runtime=240,
        mem_mb=8000,
    params:
        settings=section_json("elastic_net"),
        globals=globals_json(),
    shell:
        "gradmatch elastic-net --settings {params.settings:q} --globals {params.globals:q} "
        "--chunk {wildcards.chunk} --out {output:q} > {log:q} 2>&1"


rule aggregate_elastic_net:
    input:
        ELASTIC_NET_CHUNK_FILES,
    output:
        ELASTIC_NET_SUMMARY,
    log:
        "data/logs/elastic_net/aggregate.log",
    shell:
        "gradmatch aggregate {input:q} --out {output:q} "
        "--sort-by lambda_true_l1 lambda_true_l2 seed > {log:q} 2>&1"


rule plot_fig3:
    input:
        summary=ELASTIC_NET_SUMMARY,
    output:
        pdf=report(
            FIG3[0],
            caption="../report/fig3.rst",
            category="Figures",
            subcategory="Figure 3",
        ),
        png=report(
            FIG3[1],
            caption="../report/fig3.rst",
            category="Figures",
            subcategory="Figure 3",
        ),
    log:
        "data/logs/elastic_net/plot_fig3.log",
    shell:
        "gradmatch plot-fig3-elastic-net-recovery --input summary={input.summary:q} "
        "--pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"
