# One plot rule and one target per entry of the figure table (workflow/figures.yaml). Plot
# rules are local: they read parquet only and draw in seconds.
for figure, entry in FIGURES.items():
    files = figure_files(figure)

    rule:
        name:
            f"plot_{figure}"
        localrule: True
        input:
            **figure_inputs(figure),
        output:
            **{
                ext: report(
                    path,
                    caption=f"../report/{figure}.rst",
                    category="Figures",
                    subcategory=entry["title"],
                )
                for ext, path in files.items()
            },
        log:
            f"{LOGS}/plots/{figure}.log",
        params:
            command=f"plot-{figure}",
            inputs=lambda wildcards, input: " ".join(
                f"--input {name}={path}" for name, path in input.items()
            ),
        shell:
            "gradmatch {params.command} {params.inputs} "
            "--pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"

    rule:
        name:
            figure
        input:
            list(files.values()),
