# One rule per analysis of gradmatch.experiments, generated from the package: its tables
# (TABLES), its resources (RESOURCES) and, for a chunked analysis (one that defines n_chunks),
# one job per chunk plus a local aggregate rule. Adding an analysis module adds its rules.
#
# A rule's params hold only what changes its tables: the resolved section and the global keys
# its Settings declares. W&B tracking (the global `wandb`) changes no table, so it is left out
# of the params and exported to every job as JSON in $GRADMATCH_WANDB instead (read by the CLI,
# see gradmatch.tracking); the shell command stays the same, so switching wandb.mode reruns
# nothing. The Snakefile is parsed again inside every cluster job, which sets it there too.
import os

# runtime: a training rule's is priced per job from its step counts and the committed calibration
# (gradmatch.cost.rule_runtime), and grows with the attempt on a retry.
from gradmatch import cost, tracking
from gradmatch import settings as settings_lib

os.environ[tracking.ENV_VAR] = json.dumps(config["wandb"], sort_keys=True)
# checkpoint_minutes (how often a chunk job saves its resumable state) changes no table either:
# exported the same way, in $GRADMATCH_CHECKPOINT_MINUTES. The state file itself is passed with
# --state (common.smk: chunk_state_path, a params function: the path is fixed per job, so
# it never triggers a rerun); a rerun after a time limit resumes from it.
os.environ[settings_lib.CHECKPOINT_ENV_VAR] = str(config["checkpoint_minutes"])

for analysis in ANALYSES:
    experiment = experiments.module(analysis)
    command = analysis.replace("_", "-")
    resources_ = experiment.RESOURCES
    tables = analysis_tables(analysis)
    if experiments.is_chunked(analysis):
        chunk_outputs = {table: chunk_table_path(analysis, table) for table in tables}
        n_chunks = experiments.chunk_count(analysis, analysis_settings(analysis))

        rule:
            name:
                f"{analysis}_chunk"
            input:
                mnist_inputs(analysis),
            output:
                **chunk_outputs,
            log:
                f"{LOGS}/{analysis}/chunk_{{chunk}}.log",
            wildcard_constraints:
                chunk=r"\d+",
            threads: resources_.threads
            resources:
                gpu=resources_.gpu,
                runtime=cost.rule_runtime(analysis, analysis_settings(analysis)),
                mem_mb=resources_.mem_mb,
            params:
                settings=settings_json(analysis),
                globals=globals_json(analysis),
                outs=out_flags(chunk_outputs),
                command=command,
                state=functools.partial(chunk_state_path, analysis),
            shell:
                "exec gradmatch {params.command} --settings {params.settings:q} "
                "--globals {params.globals:q} --chunk {wildcards.chunk} "
                "--state {params.state:q} {params.outs} > {log:q} 2>&1"

        rule:
            name:
                f"aggregate_{analysis}"
            input:
                **{
                    table: expand(path, chunk=range(n_chunks))
                    for table, path in chunk_outputs.items()
                },
            output:
                **{table: table_path(f"{analysis}.{table}") for table in tables},
            log:
                f"{LOGS}/{analysis}/aggregate.log",
            localrule: True
            params:
                analysis=analysis,
                inputs=lambda wildcards, input: " ".join(
                    f"--input {table}={path}"
                    for table in input.keys()
                    for path in input[table]
                ),
                outs=lambda wildcards, output: out_flags(dict(output.items())),
            shell:
                "gradmatch aggregate {params.analysis} {params.inputs} {params.outs} "
                "> {log:q} 2>&1"

    else:
        outputs = {table: table_path(f"{analysis}.{table}") for table in tables}

        rule:
            name:
                analysis
            input:
                mnist_inputs(analysis),
            output:
                **outputs,
            log:
                f"{LOGS}/{analysis}/{analysis}.log",
            threads: resources_.threads
            resources:
                gpu=resources_.gpu,
                runtime=cost.rule_runtime(analysis, analysis_settings(analysis)),
                mem_mb=resources_.mem_mb,
            params:
                settings=settings_json(analysis),
                globals=globals_json(analysis),
                outs=out_flags(outputs),
                command=command,
            shell:
                "exec gradmatch {params.command} --settings {params.settings:q} "
                "--globals {params.globals:q} {params.outs} > {log:q} 2>&1"
