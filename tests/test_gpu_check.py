"""benchmarks/gpu_check.py runs its CPU-runnable parts (Triton's interpreter, tiny sizes) end to end.

So the first run on a GPU measures instead of debugging: every section's code runs here except the
CUDA-only calls (do_bench, memory statistics, graph capture), and its exactness section must find the
kernel equal to the C loop bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_runs_in_cpu_mode(tmp_path):
    out = tmp_path / "gpu_check.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--cpu", "--json", str(out)], capture_output=True, text=True,
                         env={**os.environ, "TRITON_INTERPRET": "1"}, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    exact = results["exact_vs_c"]
    assert {r["variant"] for r in exact} == {"plain", "capturable", "amp"}
    assert {r["dtype"] for r in exact} == {"float64", "float32", "float16", "bfloat16"}
    assert all(r["bits_differ"] == 0 for r in exact)
    assert results["vs_torch_fused"]["max_rel_diff"] <= 1e-5
    rows = results["throughput"]
    assert {(r["case"], r["contender"]) for r in rows} == {
        (case, name) for case in "abcd" for name in ("adamlab", "torch-fused", "torch-foreach")}
    assert all(r["ms"] > 0 and r["bytes_per_param"] in (14, 22, 28) for r in rows)
    assert len(results["block_sweep"]) == 2 and results["cuda_graph"] == "skipped"
    assert "goals" in results
