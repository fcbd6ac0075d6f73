"""The FSDP2 tests' harness: a training script run once in one process and once on 2 gloo ranks."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

SCRIPTS = Path(__file__).parent / "scripts"


def single_and_sharded(script: str, cases: list[str], out: Path) -> dict:
    """{"single": ..., "sharded": ...}: what ``scripts/<script>`` saved for each case, run both ways."""
    for mode in ("single", "sharded"):
        subprocess.run([sys.executable, str(SCRIPTS / script), str(out), mode, *cases], check=True, timeout=600)
    return {mode: torch.load(out / f"{mode}.pt", weights_only=True) for mode in ("single", "sharded")}
