"""The wheel: a library install needs only torch, numpy, scipy (and tqdm); the workflow extra
brings the `gradmatch` command, whose `schema` and `check-config` work from the installed wheel.

Offline and without downloading torch again: each fresh venv (no system site packages) sees,
through one ``.pth`` line, a folder of links to exactly the distributions a requirement set
needs, taken from this environment; ``pip install --no-index`` of the wheel then succeeds only
if its declared dependencies are satisfied by that set, and installs nothing else.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_ONLY = ("snakemake", "pandas", "pydantic", "matplotlib", "yaml", "pyarrow", "wandb")


def _run(command: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, env=environment, **kwargs
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the repository's pyproject, README, LICENSE and src."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
    dist = source / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["-w", str(dist), "."],
        cwd=source,
    )
    (built,) = dist.glob("gradmatch-*.whl")
    return built


def _wheel_requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
    return metadata.get_all("Requires-Dist") or []


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(wheel: Path, extras: set[str]) -> dict[str, importlib.metadata.Distribution]:
    """Every installed distribution that gradmatch[extras] needs here, recursively."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [("gradmatch", frozenset(extras))]
    expanded: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (_key(name), wanted) in expanded:
            continue
        expanded.add((_key(name), wanted))
        if _key(name) == "gradmatch":
            requirements = _wheel_requirements(wheel)
        else:
            found[_key(name)] = importlib.metadata.distribution(name)
            requirements = found[_key(name)].requires or []
        for text in requirements:
            requirement = Requirement(text)
            markers = [{"extra": extra} for extra in {"", *wanted}]
            if requirement.marker is None or any(requirement.marker.evaluate(m) for m in markers):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return found


def _venv(root: Path, wheel: Path, extras: set[str]) -> Path:
    """A fresh venv seeing only the distributions of gradmatch[extras], with the wheel in it."""
    links = root / "dependencies"
    links.mkdir(parents=True)
    for distribution in _closure(wheel, extras).values():
        for file in distribution.files or []:
            top = Path(str(file)).parts[0]
            skip = top in ("..", "__pycache__") or top.endswith(".pth")
            if not skip and not (links / top).exists():
                (links / top).symlink_to(Path(distribution.locate_file(top)))
    _run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], cwd=root)
    python = root / "venv" / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root)
    (Path(site.stdout.strip()) / "_dependencies.pth").write_text(f"{links}\n")
    target = f"{wheel}[{','.join(sorted(extras))}]" if extras else str(wheel)
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", target],
        root,
    )
    return python


LIBRARY_USE = """
import importlib.util, json, sys
import numpy as np
import torch
import gradmatch
from gradmatch import Ridge, flat_parameters, loss_gradient, match_gradients

torch.manual_seed(0)
model = torch.nn.Linear(3, 1).double()
X, y = torch.randn(64, 3, dtype=torch.float64), torch.randn(64, dtype=torch.float64)
lam = 0.3  # a ridge endpoint: the minimiser of L(θ) + lam·‖θ‖², so −∇L(θ̂) = 2·lam·θ̂
optimizer = torch.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe", max_iter=500)
def closure():
    optimizer.zero_grad()
    penalty = sum((p ** 2).sum() for p in model.parameters())
    value = torch.nn.functional.mse_loss(model(X)[:, 0], y) + lam * penalty
    value.backward()
    return value
optimizer.step(closure)
fit = match_gradients(Ridge(), flat_parameters(model), loss_gradient(model, "mse", X, y).numpy())
print(json.dumps({
    "file": gradmatch.__file__,
    "lambda_hat": fit.params["lambda"],
    "imported": sorted({m.split(".")[0] for m in sys.modules}),
    "installed": {m: importlib.util.find_spec(m) is not None for m in %r},
}))
"""


@pytest.mark.slow
def test_a_library_install_needs_only_torch_numpy_scipy(wheel, tmp_path):
    python = _venv(tmp_path, wheel, set())
    result = _run([str(python), "-c", LIBRARY_USE % (WORKFLOW_ONLY,)], cwd=tmp_path)
    report = json.loads(result.stdout)
    assert report["file"].startswith(str(tmp_path / "venv")), report["file"]
    assert report["lambda_hat"] == pytest.approx(0.3, rel=1e-6)
    assert report["installed"] == {name: False for name in WORKFLOW_ONLY}
    assert not set(report["imported"]) & set(WORKFLOW_ONLY)
    command = subprocess.run(
        [str(python.parent / "gradmatch"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert command.returncode != 0
    assert "the gradmatch command needs the workflow extra" in command.stderr
    assert "pip install 'gradmatch[workflow]'" in command.stderr


@pytest.mark.slow
def test_the_workflow_extra_runs_schema_and_check_config_from_the_wheel(wheel, tmp_path):
    python = _venv(tmp_path, wheel, {"workflow"})
    command = str(python.parent / "gradmatch")
    elsewhere = tmp_path / "elsewhere"  # no source tree around: everything comes from the wheel
    elsewhere.mkdir()
    shutil.copy(ROOT / "config" / "smoke.yaml", elsewhere / "smoke.yaml")
    schema = json.loads(_run([command, "schema"], cwd=elsewhere).stdout)
    from gradmatch import config as config_lib

    assert schema == json.loads(json.dumps(config_lib.json_schema()))
    checked = _run([command, "check-config", "smoke.yaml"], cwd=elsewhere)
    assert "smoke.yaml" in checked.stdout + checked.stderr
    (elsewhere / "bad.yaml").write_text("elastic_net: {no_such_key: 1}\n")
    bad = subprocess.run(
        [command, "check-config", "bad.yaml"], cwd=elsewhere, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "unknown config key 'elastic_net.no_such_key'" in bad.stderr


def test_an_older_python_is_told_the_version_and_the_fix(tmp_path):
    code = "import sys; sys.version_info = (3, 10, 14, 'final', 0); import gradmatch"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode != 0
    assert "gradmatch needs Python >= 3.11" in result.stderr
    assert "python3.11 -m venv" in result.stderr
