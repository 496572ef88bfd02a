"""The README's library example runs as written and prints what its comment promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    section = README.read_text().split("## Using the estimator on your own model", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README: no python block under 'Using the estimator on your own model'"
    return blocks[0]


def test_readme_library_example_recovers_the_ridge_strength():
    result = subprocess.run(
        [sys.executable, "-c", _example()], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lambda_hat, residual_ratio, cosine = (float(v) for v in result.stdout.split()[-3:])
    assert abs(lambda_hat - 1e-2) < 1e-3
    assert residual_ratio < 0.1 and cosine > 0.99
