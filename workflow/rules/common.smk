# Config lookups shared by every rules file. No science here: the package does the work.
import json

from gradmatch.config import GLOBAL_KEYS

GENERATED = "data/generated"
# figure target name -> list of files; each rules file registers the figures it draws
FIGURE_TARGETS = {}


def section_json(section):
    """The config section of one analysis, as the JSON the CLI's --settings takes."""
    return json.dumps(config[section], sort_keys=True)


def globals_json():
    """The global keys (preset, device, dataset, wandb), as the JSON the CLI's --globals takes."""
    return json.dumps({key: config[key] for key in GLOBAL_KEYS}, sort_keys=True)


def figure_files(stem):
    """The PDF and PNG of one figure."""
    return [f"figures/{stem}.pdf", f"figures/{stem}.png"]


def all_figures():
    """Every registered figure file, for the `figures` target."""
    return [path for name in sorted(FIGURE_TARGETS) for path in FIGURE_TARGETS[name]]


def out_flags(tables):
    """The CLI's --out NAME=PATH flags for a multi-table analysis."""
    return " ".join(f"--out {name}={path}" for name, path in sorted(tables.items()))


def figure_pdfs():
    """Target name -> the figure's PDF, as seen from paper/ (where latexmk runs)."""
    return {
        name: f"../{next(path for path in files if path.endswith('.pdf'))}"
        for name, files in sorted(FIGURE_TARGETS.items())
    }
