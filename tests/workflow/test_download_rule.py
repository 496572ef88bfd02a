"""The download_mnist rule: a local rule under the slurm profile, writing verified files."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gradmatch.data import mnist

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def fake_mirror(folder: Path) -> dict[str, str]:
    folder.mkdir()
    sums = {}
    for index, name in enumerate(sorted(mnist.SHA256)):
        data = gzip.compress(f"stand-in {index}".encode(), mtime=0)
        (folder / name).write_bytes(data)
        sums[name] = hashlib.sha256(data).hexdigest()
    return sums


@pytest.mark.slow
def test_download_rule_runs_locally_under_the_slurm_profile(tmp_path):
    """Run for real (no sbatch needed): the paper preset with a file:// mirror of stand-in files."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    sums = fake_mirror(tmp_path / "mirror")
    preset = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    preset.setdefault("mnist", {}).update(mirrors=[(tmp_path / "mirror").as_uri()], checksums=sums)
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(preset))
    target = "data/raw/mnist/t10k-labels-idx1-ubyte.gz"
    result = subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(tmp_path),
         "--profile", str(REPO / "workflow" / "profiles" / "slurm"),
         "--configfile", "override.yaml", "--", target],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "localrule download_mnist:" in log
    folder = tmp_path / "data" / "raw" / "mnist"
    assert {path.name: mnist.sha256_of(path) for path in folder.iterdir()} == sums


def dry_run(*args: str) -> str:
    result = subprocess.run(
        [SNAKEMAKE, "-n", "--cores", "1", *args], cwd=REPO, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "downloads"), [("paper", True), ("config", False)])
def test_dropout_chunks_need_the_download_only_with_mnist(preset, downloads):
    log = dry_run(
        "--force",  # the target's job even where this checkout has built it already
        "--configfile",
        f"config/{preset}.yaml",
        "--",
        "data/generated/dropout/chunks/members_0.parquet",
    )
    assert ("download_mnist" in log) is downloads
    assert "dropout_chunk" in log
    # the download's params leave mnist.dir out: setting it never reruns a finished download
    assert '"dir"' not in log


@pytest.mark.slow
def test_with_mnist_dir_the_jobs_read_that_folder_and_nothing_is_downloaded(tmp_path):
    """mnist.dir: the DAG verifies the folder once (verify_mnist) and has no download job."""
    own = tmp_path / "shared-mnist"
    own.mkdir()
    for stem in mnist.RAW_SHA256:  # small stand-ins under the dotted naming, gzipped
        dotted = stem.replace("-idx", ".idx")
        (own / f"{dotted}.gz").write_bytes(gzip.compress(stem.encode(), mtime=0))
    preset = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    preset.setdefault("mnist", {})["dir"] = str(own)
    (tmp_path / "own.yaml").write_text(yaml.safe_dump(preset))
    log = dry_run(
        "--configfile",
        str(tmp_path / "own.yaml"),
        "--",
        "data/generated/dropout/chunks/members_0.parquet",
    )
    assert "download_mnist" not in log
    assert "rule verify_mnist:" in log and "dropout_chunk" in log
    assert f"gradmatch verify-mnist --dir {own}" in log
    assert f'"mnist_dir": "{own}"' in log  # the jobs read MNIST in that folder
    assert str(own / "train-images.idx3-ubyte.gz") in log
