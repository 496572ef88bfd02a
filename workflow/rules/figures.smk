# One plot rule and one target per entry of the figure table (workflow/figures.yaml). Plot
# rules are local: they read parquet only and draw in seconds. The --report caption is
# workflow/report/<figure>.rst where that file exists.
for figure, entry in FIGURES.items():
    files = figure_files(figure)
    caption = figure_caption(figure)

    rule:
        name:
            f"plot_{figure}"
        input:
            **figure_inputs(figure),
        output:
            **{
                ext: report(
                    path,
                    caption=caption,
                    category="Figures",
                    subcategory=entry["title"],
                )
                for ext, path in files.items()
            },
        log:
            f"{LOGS}/plots/{figure}.log",
        localrule: True
        params:
            command=f"plot-{figure}",
            inputs=lambda wildcards, input: " ".join(
                f"--input {name}={path}" for name, path in input.items()
            ),
            tables=" ".join(
                f"--table {name}={table}" for name, table in entry["inputs"].items()
            ),
        shell:
            "gradmatch {params.command} {params.inputs} {params.tables} "
            "--pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"

    rule:
        name:
            figure
        input:
            list(files.values()),
