# The reproduction report: claims table, LaTeX fragments (settings, provenance of the tables),
# paper/main.pdf; and the W&B export.
# All local: they read parquet and figures and run in seconds (the export needs the network).
import shlex

from gradmatch.report.claims import required_tables


localrules:
    claims,
    paper_fragments,
    paper_pdf,
    provenance_fragment,
    wandb_export,
    wandb_sync,


rule claims:
    input:
        **{table: table_path(table) for table in required_tables()},
    output:
        table=f"{GENERATED}/claims.parquet",
        tex=f"{PAPER_GENERATED}/claims.tex",
        macros=f"{PAPER_GENERATED}/claims-macros.tex",
    log:
        f"{LOGS}/report/claims.log",
    params:
        inputs=lambda wildcards, input: " ".join(
            f"--input {name}={path}" for name, path in input.items()
        ),
    shell:
        "gradmatch claims {params.inputs} --out {output.table:q} --tex {output.tex:q} "
        "--macros {output.macros:q} > {log:q} 2>&1"


rule paper_fragments:
    output:
        f"{PAPER_GENERATED}/settings.tex",
    log:
        f"{LOGS}/report/paper_fragments.log",
    params:
        # the report quotes no device or W&B setting: switching W&B rebuilds nothing, and
        # switching the device rebuilds the report only through the tables it changes
        config=json.dumps(
            {
                key: value
                for key, value in config.items()
                if key not in ("device", "wandb")
            },
            sort_keys=True,
            default=str,
        ),
        figures=" ".join(
            f"--figure {figure}=../{figure_files(figure)['pdf']}" for figure in FIGURES
        ),
        titles=" ".join(
            f"--title {figure}={json.dumps(entry['title'])}"
            for figure, entry in FIGURES.items()
        ),
    shell:
        "gradmatch tex-fragments --config {params.config:q} {params.figures} "
        "{params.titles} --out {output:q} > {log:q} 2>&1"


rule provenance_fragment:
    input:
        **{table: table_path(table) for table in report_tables()},
    output:
        f"{PAPER_GENERATED}/provenance.tex",
    log:
        f"{LOGS}/report/provenance_fragment.log",
    params:
        inputs=lambda wildcards, input: " ".join(
            f"--input {name}={path}" for name, path in input.items()
        ),
    shell:
        "gradmatch provenance {params.inputs} --tex {output:q} > {log:q} 2>&1"


rule paper_pdf:
    input:
        tex="paper/main.tex",
        settings=f"{PAPER_GENERATED}/settings.tex",
        claims=f"{PAPER_GENERATED}/claims.tex",
        macros=f"{PAPER_GENERATED}/claims-macros.tex",
        provenance=f"{PAPER_GENERATED}/provenance.tex",
        figures=all_figure_files(),
    output:
        report("paper/main.pdf", caption="../report/paper.rst", category="Report"),
    log:
        f"{LOGS}/report/paper_pdf.log",
    shell:
        "gradmatch build-paper {input.tex:q} --pdf {output:q} > {log:q} 2>&1 "
        "|| (tail -n 20 {log:q} >&2; exit 1)"


rule wandb_export:
    output:
        f"{GENERATED}/wandb_runs.parquet",
    log:
        f"{LOGS}/report/wandb_export.log",
    params:
        project=config["wandb"]["project"] or "",
        entity=config["wandb"]["entity"] or "",
    shell:
        "gradmatch wandb-export --project {params.project:q} --entity {params.entity:q} "
        "--out {output:q} > {log:q} 2>&1 || (tail -n 5 {log:q} >&2; exit 1)"


# Upload the runs that jobs wrote offline (wandb.mode: offline, or $WANDB_MODE=offline on compute
# nodes without internet): run it where there is network, e.g. on the login node. No output
# file: it runs whenever asked, and uploads only the folders not marked synced yet.
rule wandb_sync:
    log:
        f"{LOGS}/report/wandb_sync.log",
    params:
        folder=f"{GENERATED}/wandb",
        # the project and entity only when the config names them (else each run's own)
        names=" ".join(
            f"--{key} {shlex.quote(config['wandb'][key])}"
            for key in ("project", "entity")
            if config["wandb"][key]
        ),
    shell:
        "gradmatch wandb-sync --dir {params.folder:q} {params.names} > {log:q} 2>&1 "
        "|| (tail -n 5 {log:q} >&2; exit 1)"
