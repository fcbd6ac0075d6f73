"""ruff, with the project's settings (pyproject.toml), finds nothing: CI runs it through this test."""

import shutil
import subprocess
from pathlib import Path


def test_ruff_check_passes():
    ruff = shutil.which("ruff")
    assert ruff, "ruff is in the dev extra: pip install -e '.[dev]'"
    done = subprocess.run([ruff, "check", "."], cwd=Path(__file__).parents[1], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
