"""Timing: every contender steps the same tensors, alternating within each repeat; medians are reported.

The first step of each contender (kernel build, state allocation) is timed
apart and left out, so a noisy shared machine moves all contenders alike.
Contenders report their median step; the ceiling its fastest, since it is
the most the memory system was seen to deliver.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from .cases import BYTES_PER_PARAM, VARIANTS, Case, contenders
from .ceiling import stream_bandwidth
from .timing import in_turn


def time_case(case: Case, variant_name: str, repeats: int, advance=lambda: None) -> dict:
    variant = VARIANTS[variant_name]
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen).to(variant.dtype).requires_grad_() for s in case.shapes]
    for p in params:
        p.grad = (torch.randn(p.shape, generator=gen) * 1e-2).to(variant.dtype)
    steppers = contenders(variant, params)
    first = {}
    for name, s in steppers.items():  # warm-up: state allocation, kernel build
        t = time.perf_counter()
        s.step()
        first[name] = time.perf_counter() - t
    times = in_turn({name: s.step for name, s in steppers.items()}, repeats, advance)
    n = sum(p.numel() for p in params)
    ceiling = n / min(times.pop("ceiling")) / 1e6  # the fastest the memory delivered that traffic in this run
    mps = {name: n / statistics.median(ts) / 1e6 for name, ts in times.items()}
    return {
        "case": case.key, "label": case.label, "variant": variant_name, "params": n, "tensors": len(params),
        "bytes_per_param": BYTES_PER_PARAM[variant_name],
        "mparams_per_s": mps,
        "ratio_vs_torch_fused": mps["adamlab"] / mps["torch-fused"],
        "ceiling_mparams_per_s": ceiling,
        "adamlab_fraction_of_ceiling": mps["adamlab"] / ceiling,
        "first_step_s": first,
    }


# torch.optim.Optimizer's constructor imports torch._dynamo (seconds, for torch as well),
# so the optimizer is built before the clock starts: the time is adamlab's own.
FIRST_STEP = (
    "import time, torch, adamlab\n"
    "p = torch.randn(1000, requires_grad=True); p.grad = torch.randn(1000)\n"
    "opt = adamlab.AdamW([p], amsgrad=True, weight_decay=0.05)\n"
    "t = time.perf_counter(); opt.step(); print(time.perf_counter() - t)\n"
)


def first_step_times() -> dict:
    """The first step in a fresh process: cold (empty kernel cache), then warm (built before)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "ADAMLAB_CACHE_DIR": cache}

        def once() -> float:
            run = subprocess.run([sys.executable, "-c", FIRST_STEP], env=env, capture_output=True, text=True,
                                 check=True)
            return float(run.stdout)

        return {"cold_s": once(), "warm_s": once()}


def measure(cases: list[Case], variants: list[str], repeats: int, quick: bool, progress=None) -> dict:
    """Every (case, variant) row, the machine's streaming bandwidth, and the first-step times."""
    rows = []
    for case in cases:
        for name in variants:
            advance = progress(f"case {case.key} / {name}", repeats) if progress else (lambda: None)
            rows.append(time_case(case, name, repeats, advance))
    over = [r for r in rows if r["adamlab_fraction_of_ceiling"] > 1]
    return {
        "quick": quick, "repeats": repeats, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "bandwidth_gb_per_s": {k: v / 1e9 for k, v in stream_bandwidth().items()},
        "cases": {c.key: c.label for c in cases},
        "results": rows,
        "rows_over_ceiling": [f"{r['case']}/{r['variant']}" for r in over],
        "first_step": None if quick else first_step_times(),  # two fresh processes: seconds quick runs skip
    }
