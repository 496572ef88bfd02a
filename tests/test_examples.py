"""The examples under examples/ run as the README says and print what theory predicts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DIGITS = "examples/digits_cnn_implicit_penalty.py"
NUMBER = r"[-+]?\d+\.\d+e[-+]\d+"
LAYERS = ("conv1", "conv2", "fc1", "fc2")


def _rows(output: str, part: str, n_numbers: int) -> dict[str, list[float]]:
    """Layer name → the numbers of its table row ``  partN NAME x [lo, hi] ...``."""
    rows = {}
    for line in output.splitlines():
        if line.strip().startswith(f"{part} "):
            name = line.split()[1]
            rows[name] = [float(value) for value in re.findall(NUMBER, line)]
            assert len(rows[name]) == n_numbers, line
    return rows


@pytest.fixture(scope="module")
def digits_output() -> str:
    """stdout of the README's command (trains three small CNNs: ~30 s of one CPU core)."""
    command = f"python {DIGITS}"
    assert command in (REPO / "README.md").read_text(), f"README no longer shows `{command}`"
    result = subprocess.run(
        [sys.executable, DIGITS], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_digits_example_names_its_data_and_reports_every_layer(digits_output):
    assert "scikit-learn's bundled 8×8 digits" in digits_output
    part1 = _rows(digits_output, "part1", 3)
    assert tuple(part1) == LAYERS
    for name, (value, low, high) in part1.items():
        assert low < value < high, f"{name}: λ̂ {value} outside its interval [{low}, {high}]"


@pytest.mark.slow
def test_adam_with_l2_recovers_the_nominal_ridge_in_every_layer(digits_output):
    """Adam + (wd/2)‖θ‖²: a fixed point has ∇L + wd·θ = 0, so λ̂ = wd/2 per layer (R = λΣθ²)."""
    nominal = float(re.search(rf"nominal λ = ({NUMBER})", digits_output).group(1))
    part2 = _rows(digits_output, "part2", 6)
    assert tuple(part2) == LAYERS
    for name, (value, *_) in part2.items():
        assert abs(value / nominal - 1) < 0.03, f"{name}: Adam+L2 λ̂ {value} vs nominal {nominal}"


@pytest.mark.slow
def test_adamw_leaves_a_different_layer_dependent_penalty(digits_output):
    """AdamW: −∇L ≈ wd·(√v̂+ε)⊙θ, a preconditioned ridge: λ̂ ≪ wd/2 and unequal across layers."""
    part2 = _rows(digits_output, "part2", 6)
    for name, (_, l2_low, l2_high, _, w_low, w_high) in part2.items():
        assert w_high < l2_low, (
            f"{name}: AdamW [{w_low}, {w_high}] vs Adam+L2 [{l2_low}, {l2_high}]"
        )
    adamw = {name: row[3:] for name, row in part2.items()}
    separated = [
        (a, b) for a in adamw for b in adamw if adamw[a][1] > adamw[b][2]
    ]  # layer a's interval lies wholly above layer b's
    assert separated, f"AdamW's per-layer λ̂ intervals all overlap: {adamw}"
