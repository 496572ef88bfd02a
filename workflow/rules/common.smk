# Everything the workflow owns: paths, the figure table, and lookups into the package.
# No science here; the package does the work. Every output path is built by a function below.
import functools
import json
import sys
from pathlib import Path

import yaml

from gradmatch import config as gm_config
from gradmatch import experiments
from gradmatch.data import mnist as gm_mnist
from gradmatch.data.mnist import SHA256 as MNIST_SHA256
from gradmatch.report.claims import required_tables

# Every config file given (--configfile, or config/config.yaml) is read again by the package's
# loader, which rejects a key or section given twice (Snakemake's keeps the last one). Then the
# resolved config (every default filled in) replaces the overlay that was read, so that rules
# and report captions see every key. Any bad key stops the run here, before a job starts, with
# the one-line message of gradmatch.config (the same as `gradmatch check-config FILE`).
try:
    for configfile_path in workflow.configfiles:
        gm_config.load_yaml(configfile_path)
    config.update(gm_config.resolve(config))
except gm_config.ConfigError as error:
    sys.exit(f"error: {error}")

GENERATED = "data/generated"
LOGS = "data/logs"
STATE = "data/state"
FIGURE_DIR = "figures"
MNIST_DIR = "data/raw/mnist"
# a folder the site already keeps MNIST in (config key mnist.dir): read there, never downloaded,
# verified once by the rule verify_mnist, whose record lies outside that folder
MNIST_SOURCE = config["mnist"]["dir"]
MNIST_STAMP = "data/raw/mnist_verified.json"
PAPER_GENERATED = "paper/generated"
WORKFLOW_DIR = Path(workflow.basedir)
FIGURES = yaml.safe_load((WORKFLOW_DIR / "figures.yaml").read_text())
ANALYSES = experiments.names()


def table_path(table_id):
    """``<analysis>.<table>`` -> the parquet file of that table."""
    analysis, _, table = table_id.partition(".")
    if analysis not in ANALYSES or table not in experiments.module(analysis).TABLES:
        raise ValueError(f"workflow: no table {table_id!r} (figure table or claims)")
    return f"{GENERATED}/{analysis}/{table}.parquet"


def chunk_table_path(analysis, table):
    """One chunk's part of a chunked analysis's table (``{chunk}`` left as a wildcard)."""
    return f"{GENERATED}/{analysis}/chunks/{table}_{{chunk}}.parquet"


def chunk_state_path(analysis, wildcards):
    """The resumable state of one chunk job (gradmatch.train.checkpoint), a params function
    (``functools.partial(chunk_state_path, analysis)``). Not an output: Snakemake deletes a
    failed job's outputs, and this file must outlive a job stopped at its time limit; the job
    removes it on success."""
    return f"{STATE}/{analysis}/chunk_{wildcards.chunk}.pt"


def analysis_tables(analysis):
    """The table names of one analysis (its TABLES declaration)."""
    return list(experiments.module(analysis).TABLES)


@functools.cache
def analysis_settings(analysis):
    """The Settings of one analysis under this config, MNIST folder filled in (built once per
    analysis: the config is fixed once the workflow is parsed)."""
    return gm_config.section_settings(config, analysis, mnist_dir=mnist_folder())


def settings_json(analysis):
    """The resolved section, as the JSON the CLI's --settings takes."""
    return json.dumps(config[analysis], sort_keys=True)


def globals_json(analysis):
    """Only the global keys this analysis's Settings declares (so that, e.g., switching the
    device reruns only the rules that use one), plus the MNIST folder where it reads MNIST.
    Never `wandb`: tracking changes no table and reaches the jobs through $GRADMATCH_WANDB
    (rules/analyses.smk), so switching it reruns nothing.
    """
    fields = type(analysis_settings(analysis)).model_fields
    chosen = {
        key: config[key]
        for key in gm_config.GLOBAL_KEYS
        if key in fields and key != "wandb"
    }
    if mnist_inputs(analysis):
        chosen["mnist_dir"] = mnist_folder()
    return json.dumps(chosen, sort_keys=True)


def mnist_files():
    return [f"{MNIST_DIR}/{name}" for name in sorted(MNIST_SHA256)]


def mnist_folder():
    """Where the jobs read MNIST: the site's folder (mnist.dir), else the download folder."""
    return MNIST_SOURCE or MNIST_DIR


def mnist_inputs(analysis):
    """When this analysis reads MNIST under this config: the downloaded files, or, with
    mnist.dir set, the record of its one verification (so no download job is scheduled).
    """
    settings = analysis_settings(analysis)
    if getattr(settings, "dataset", None) != "mnist":
        return []
    return [MNIST_STAMP] if MNIST_SOURCE else mnist_files()


def mnist_source_files(wildcards):
    """The four files as they lie in mnist.dir (either naming, gzipped or plain); asked only
    when an analysis reads MNIST, so a wrong folder under dataset: digits stops nothing.
    """
    if not MNIST_SOURCE:
        raise ValueError(
            f"{MNIST_STAMP} records the check of the folder of config key mnist.dir, which "
            "is not set; set mnist.dir, or let the workflow download MNIST (download_mnist)"
        )
    return list(gm_mnist.locate_all(MNIST_SOURCE).values())


def out_flags(paths):
    """The CLI's --out NAME=PATH flags."""
    return " ".join(f"--out {name}={path}" for name, path in sorted(paths.items()))


def figure_files(figure):
    """The PDF and PNG of one figure."""
    return {ext: f"{FIGURE_DIR}/{figure}.{ext}" for ext in ("pdf", "png")}


def all_figure_files():
    return [path for figure in FIGURES for path in figure_files(figure).values()]


def figure_inputs(figure):
    """Plot input name -> parquet path, from the figure table."""
    return {
        name: table_path(table) for name, table in FIGURES[figure]["inputs"].items()
    }


def figure_caption(figure):
    """The figure's --report caption file (relative to the rules folder), or None."""
    return (
        f"../report/{figure}.rst"
        if (WORKFLOW_DIR / "report" / f"{figure}.rst").is_file()
        else None
    )


def report_tables():
    """The table ids behind the report: the claims' inputs and every figure's."""
    figure_tables = {
        table for entry in FIGURES.values() for table in entry["inputs"].values()
    }
    return sorted(set(required_tables()) | figure_tables)
