# The reproduction report: claims table, LaTeX fragments, paper/main.pdf; and the W&B export.
# All local: they read parquet/figures and run in seconds (the export needs network access).
import json

from gradmatch.report.claims import TABLES as CLAIM_TABLES

PAPER_GENERATED = "paper/generated"


localrules:
    claims,
    paper_fragments,
    paper_pdf,
    wandb_export,


rule claims:
    input:
        **{name: table.path for name, table in sorted(CLAIM_TABLES.items())},
    output:
        table=f"{GENERATED}/claims.parquet",
        tex=f"{PAPER_GENERATED}/claims.tex",
        macros=f"{PAPER_GENERATED}/claims-macros.tex",
    log:
        "data/logs/report/claims.log",
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
        "data/logs/report/paper_fragments.log",
    params:
        config=json.dumps(config, sort_keys=True, default=str),
        figures=" ".join(
            f"--figure {name}={path}" for name, path in figure_pdfs().items()
        ),
    shell:
        "gradmatch tex-fragments --config {params.config:q} {params.figures} "
        "--out {output:q} > {log:q} 2>&1"


rule paper_pdf:
    input:
        tex="paper/main.tex",
        settings=f"{PAPER_GENERATED}/settings.tex",
        claims=f"{PAPER_GENERATED}/claims.tex",
        macros=f"{PAPER_GENERATED}/claims-macros.tex",
        figures=all_figures(),
    output:
        report("paper/main.pdf", caption="../report/paper.rst", category="Report"),
    log:
        "data/logs/report/paper_pdf.log",
    shell:
        "gradmatch build-paper {input.tex:q} --pdf {output:q} > {log:q} 2>&1 "
        "|| (tail -n 20 {log:q} >&2; exit 1)"


rule wandb_export:
    output:
        f"{GENERATED}/wandb_runs.parquet",
    log:
        "data/logs/report/wandb_export.log",
    params:
        project=lambda wildcards: config["wandb"].get("project") or "",
        entity=lambda wildcards: config["wandb"].get("entity") or "",
    shell:
        "gradmatch wandb-export --project {params.project:q} --entity {params.entity:q} "
        "--out {output:q} > {log:q} 2>&1 || (tail -n 5 {log:q} >&2; exit 1)"
