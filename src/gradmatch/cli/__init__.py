"""The ``gradmatch`` command: one subcommand per analysis, per figure, and a few tools.

Analyses are the modules of :mod:`gradmatch.experiments` (``gradmatch ols-theory ...``), figures the
modules of :mod:`gradmatch.plots` named ``fig*`` (``gradmatch plot-fig4 ...``). Subcommands are
found without importing their modules, so ``gradmatch --help`` stays fast and one broken module
cannot break the others. The CLI holds no science: it parses, builds Settings, calls, writes.
"""

from __future__ import annotations

import argparse
import ast
import errno
import importlib
import inspect
import json
import os
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path

try:
    from gradmatch import config as config_lib
    from gradmatch import experiments, io, tracking
    from gradmatch.settings import WORKFLOW_KEYS
except ModuleNotFoundError as missing:  # a library-only install: pip install gradmatch
    if (missing.name or "gradmatch").split(".")[0] == "gradmatch":
        raise
    raise ImportError(
        f"the gradmatch command needs the workflow extra, and {missing.name!r} is not installed: "
        "pip install 'gradmatch[workflow]' (in a checkout: pip install -e '.[workflow]')"
    ) from None

PACKAGE_ROOT = Path(__file__).resolve().parents[1]

# Tools that are neither an analysis nor a figure: name -> (module, one-line help).
# Each module defines add_arguments(parser) and command(args) -> int.
TOOLS: dict[str, tuple[str, str]] = {
    "aggregate": ("gradmatch.cli.aggregate", "concatenate chunk tables into one summary"),
    "check-config": ("gradmatch.cli.check_config", "validate a config file; print it resolved"),
    "schema": ("gradmatch.cli.schema", "print the JSON schema of a config file"),
    "claims": ("gradmatch.report.claims", "check the paper's claims against the parquet tables"),
    "wandb-export": ("gradmatch.report.wandb_export", "export W&B runs to parquet"),
    "wandb-sync": ("gradmatch.tracking", "upload offline W&B runs not uploaded yet (wandb sync)"),
    "tex-fragments": ("gradmatch.report.tex_fragments", "write the report's LaTeX settings"),
    "build-paper": ("gradmatch.report.build_paper", "build paper/main.pdf with latexmk"),
    "download-mnist": ("gradmatch.cli.download_mnist", "fetch MNIST, verify its SHA-256"),
    "doctor": ("gradmatch.cli.doctor", "check Python, torch/CUDA, snakemake, TeX and the site"),
    "verify-mnist": ("gradmatch.cli.verify_mnist", "check a folder of MNIST files (mnist.dir)"),
    "provenance": ("gradmatch.report.provenance", "write the report's provenance appendix"),
    "cost": ("gradmatch.cli.cost", "time the training jobs, project their minutes and runtimes"),
}


def _summary(module_file: Path) -> str:
    doc = ast.get_docstring(ast.parse(module_file.read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _discover(subpackage: str, prefix: str) -> dict[str, tuple[str, str]]:
    folder = PACKAGE_ROOT / subpackage
    found = {}
    for info in pkgutil.iter_modules([str(folder)]):
        if info.name.startswith("_") or info.ispkg:
            continue
        if subpackage == "plots" and not info.name.startswith("fig"):
            continue
        command = prefix + info.name.replace("_", "-")
        summary = _summary(folder / f"{info.name}.py")
        found[command] = (f"gradmatch.{subpackage}.{info.name}", summary)
    return found


def analyses() -> dict[str, tuple[str, str]]:
    """Subcommand name -> (experiment module, summary)."""
    return _discover("experiments", "")


def figures() -> dict[str, tuple[str, str]]:
    """Subcommand name -> (plot module, summary)."""
    return _discover("plots", "plot-")


def _parse_named(pairs: list[str], flag: str) -> dict[str, str]:
    return dict(io.name_value_pairs(pairs, flag))


def _json_arg(text: str | None, flag: str) -> dict:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise SystemExit(f"gradmatch: {flag} is not valid JSON ({error})") from error
    if not isinstance(value, dict):
        raise SystemExit(f"gradmatch: {flag} must be a JSON object")
    return value


def _add_analysis_parser(sub, name: str, summary: str) -> None:
    parser = sub.add_parser(name, help=summary, description=summary)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--settings", help="the config section as a JSON object")
    source.add_argument("--configfile", help="read the section from this YAML preset instead")
    parser.add_argument(
        "--globals", help="global keys (preset, device, ...) and workflow paths (mnist_dir) as JSON"
    )
    parser.add_argument("--chunk", type=int, help="index of the chunk to run (chunked analyses)")
    parser.add_argument(
        "--state",
        help="resumable state file of this job (training chunks): saved every checkpoint_minutes "
        "and on SIGTERM/SIGUSR1 (then exit 75), resumed by a rerun, removed after success",
    )
    parser.add_argument(
        "--out",
        action="append",
        required=True,
        help="output parquet: PATH for one table, or NAME=PATH for each table of a multi-table run",
    )
    parser.set_defaults(handler=_run_analysis, target=name)


def _add_figure_parser(sub, name: str, summary: str) -> None:
    parser = sub.add_parser(name, help=summary, description=summary)
    parser.add_argument("--input", action="append", default=[], help="NAME=PATH of a parquet table")
    parser.add_argument(
        "--table",
        action="append",
        default=[],
        help="NAME=ANALYSIS.TABLE: check input NAME against that table's declaration",
    )
    parser.add_argument("--pdf", required=True, help="output PDF path")
    parser.add_argument("--png", required=True, help="output PNG path")
    parser.set_defaults(handler=_draw_figure, target=name)


def _settings_from_args(section: str, args) -> object:
    """The section's Settings by the one config rule (``gradmatch.config``): the file or the
    ``--settings`` JSON overlays the Settings defaults; ``--globals`` sets top-level keys.

    W&B tracking (the global ``wandb``) comes from the file or ``--globals`` when given there,
    else from ``$GRADMATCH_WANDB``, which the workflow exports so that tracking stays out of the
    rules' params (:mod:`gradmatch.tracking`)."""
    if args.configfile:
        config = config_lib.load_yaml(args.configfile)
    else:
        config = {section: _json_arg(args.settings, "--settings")}
    globals_ = _json_arg(args.globals, "--globals")
    workflow_values = {key: globals_.pop(key) for key in WORKFLOW_KEYS if key in globals_}
    config.update(globals_)
    if "wandb" not in config:
        exported = tracking.from_environment()
        if exported is not None:
            config["wandb"] = exported
    return config_lib.section_settings(config, section, **workflow_values)


def _write_outputs(
    result, outs: list[str], target: str, declared: dict, provenance: dict | None = None
) -> None:
    """Write each table to its ``--out`` after checking it against the analysis's TABLES, with
    ``provenance`` in its metadata (:func:`gradmatch.io.write_parquet`).

    A single-table analysis takes ``--out PATH`` or ``--out NAME=PATH``; a multi-table one
    ``--out NAME=PATH`` for each of its tables.
    """
    if not isinstance(result, dict):
        (name,) = declared  # a single-table analysis declares one table
        result = {name: result}
        if len(outs) == 1 and "=" not in outs[0]:
            outs = [f"{name}={outs[0]}"]
    paths = _parse_named(outs, "--out")
    if set(paths) != set(result) or set(result) != set(declared):
        raise SystemExit(
            f"gradmatch {target}: writes tables {sorted(declared)}; --out named {sorted(paths)}"
        )
    for name, frame in result.items():
        declared[name].check(frame, f"gradmatch {target}: table {name!r}")
    for name, frame in result.items():
        io.write_parquet(frame, paths[name], provenance=provenance)


def _run_analysis(args) -> int:
    module_name = analyses()[args.target][0]
    module = importlib.import_module(module_name)
    settings = _settings_from_args(module_name.rsplit(".", 1)[1], args)
    kwargs = {}
    if args.chunk is not None:
        if "chunk" not in inspect.signature(module.run).parameters:
            raise SystemExit(f"gradmatch {args.target}: this analysis is not chunked; drop --chunk")
        kwargs["chunk"] = args.chunk
    device = _require_device(settings, args.target)
    origin = _provenance(module, settings, args.chunk, device)
    if args.state is None:
        result = module.run(settings, **kwargs)
        _write_outputs(result, args.out, args.target, module.TABLES, origin)
        return 0
    return _run_resumable(args, module, settings, device, kwargs, origin)


def _provenance(module, settings, chunk: int | None, device: str) -> dict:
    """The provenance record of this run's tables (:mod:`gradmatch.provenance`)."""
    from gradmatch import provenance

    name = module.__name__.rsplit(".", 1)[1]
    return provenance.record(settings, analysis=name, chunk=chunk, device=device)


def _run_resumable(args, module, settings, device: str, kwargs: dict, origin: dict) -> int:
    """Run with a :class:`gradmatch.train.checkpoint.Checkpoint` at ``--state``: resume from it,
    exit 75 after a signal-triggered save, remove it once the outputs are written."""
    from gradmatch.train import checkpoint

    if "checkpoint" not in inspect.signature(module.run).parameters:
        raise SystemExit(f"gradmatch {args.target}: this analysis does not resume; drop --state")
    job = checkpoint.Checkpoint(
        args.state,
        analysis=module.__name__.rsplit(".", 1)[1],
        chunk=args.chunk,
        settings_json=config_lib.settings_record(settings),
        device=device,
        minutes=_checkpoint_minutes(args),
    )
    try:
        with job:
            result = module.run(settings, checkpoint=job, **kwargs)
            _write_outputs(result, args.out, args.target, module.TABLES, origin)
    except checkpoint.Preempted as stop:
        print(f"gradmatch {args.target}: {stop}", file=sys.stderr)
        return checkpoint.EXIT_PREEMPTED
    job.remove()
    return 0


def _checkpoint_minutes(args) -> float:
    """The global ``checkpoint_minutes``: from the file or ``--globals`` when given there, else
    ``$GRADMATCH_CHECKPOINT_MINUTES`` (exported by the workflow, out of the rules' params), else
    the default of :class:`gradmatch.settings.Globals`."""
    from gradmatch.settings import CHECKPOINT_ENV_VAR, Globals

    given = _json_arg(args.globals, "--globals")
    if args.configfile:
        given = {**config_lib.load_yaml(args.configfile), **given}
    value = given.get("checkpoint_minutes", os.environ.get(CHECKPOINT_ENV_VAR))
    if value is None:
        return Globals().checkpoint_minutes
    try:
        return Globals(checkpoint_minutes=value).checkpoint_minutes
    except ValueError as error:
        source = "checkpoint_minutes" if "checkpoint_minutes" in given else CHECKPOINT_ENV_VAR
        message = f"gradmatch {args.target}: {source}={value!r} is not valid: {error}"
        raise SystemExit(message) from None


def _require_device(settings, target: str) -> str:
    """The resolved device of ``settings`` (``cpu`` when it has none); stop at once, before any
    data is read, when it asks for CUDA and none is visible."""
    requested = getattr(settings, "device", None)
    if requested is None:
        return "cpu"
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            f"gradmatch {target}: error: no CUDA device. The config asks for device 'cuda' (the "
            "global key `device`; config/paper.yaml sets it), but torch.cuda.is_available() is "
            f"False here (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda or 'none'}, CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). To run on CPU set `device: cpu` "
            "(or `device: auto`, CUDA when present) at the top of the config or pass --globals "
            '\'{"device": "cpu"}\'; to use a GPU, run on a GPU node (snakemake --profile '
            "slurm)."
        )
    from gradmatch.train.devices import resolve_device

    return str(resolve_device(requested))


def _draw_figure(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    module = importlib.import_module(figures()[args.target][0])
    paths = _parse_named(args.input, "--input")
    missing = sorted(set(module.INPUTS) - set(paths))
    extra = sorted(set(paths) - set(module.INPUTS))
    if missing or extra:
        raise SystemExit(
            f"gradmatch {args.target}: needs --input for {list(module.INPUTS)}; "
            f"missing {missing}, unexpected {extra}"
        )
    tables = {name: io.read_parquet(path) for name, path in paths.items()}
    for name, table_id in _parse_named(args.table, "--table").items():
        if name not in tables:
            raise SystemExit(f"gradmatch {args.target}: --table {name}=... has no --input {name}")
        analysis, _, table = table_id.partition(".")
        experiments.module(analysis).TABLES[table].check(tables[name], paths[name])
    figure = module.draw(tables)
    io.save_figure(figure, args.pdf)
    io.save_figure(figure, args.png, dpi=200)
    plt.close(figure)
    return 0


def _tool_handler(module_name: str) -> Callable:
    def handler(args) -> int:
        return importlib.import_module(module_name).command(args)

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradmatch",
        description="Estimate implicit regularization by gradient matching: run one analysis "
        "(writes parquet), draw one figure (reads parquet only), or use a tool.",
    )
    sub = parser.add_subparsers(title="subcommands", metavar="SUBCOMMAND")
    for name, (_, summary) in sorted(analyses().items()):
        _add_analysis_parser(sub, name, summary)
    for name, (_, summary) in sorted(figures().items()):
        _add_figure_parser(sub, name, summary)
    for name, (module_name, summary) in sorted(TOOLS.items()):
        tool = sub.add_parser(name, help=summary, description=summary)
        importlib.import_module(module_name).add_arguments(tool)
        tool.set_defaults(handler=_tool_handler(module_name), target=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (config_lib.ConfigError, FileNotFoundError, ValueError) as error:
        print(f"gradmatch {args.target}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(
            f"gradmatch {args.target}: error: the disk is full ({error}); free space on the "
            "disk that holds the outputs, then rerun",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
