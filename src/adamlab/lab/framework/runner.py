"""Run the claims, show progress, time each one, and write the report.

A claim that does not reproduce is a finding, not a failure; a claim that
raises is recorded with its traceback, the others still run, and the caller
learns about it from the verdict "error". Every judge sees the metrics as
results.json stores them, so the committed file re-judges to the same verdicts.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
import time
import traceback
import warnings
from pathlib import Path

from . import registry, report
from .claim import Claim, Context
from .console import Console
from .report import ClaimResult, PartResult
from .values import as_stored
from .verdicts import ERROR, claim_verdict, part_verdict


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else whatever platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict:
    import matplotlib
    import numpy
    import torch

    import adamlab

    return {"python": platform.python_version(), "adamlab": adamlab.__version__, "torch": torch.__version__,
            "numpy": numpy.__version__, "matplotlib": matplotlib.__version__}


def load_average() -> float | None:
    """The 1-minute load average: how busy the (possibly shared) cores were, next to the wall time."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def environment(quick: bool, seed: int) -> dict:
    import torch

    return {
        **versions(),
        "cpu": cpu_model(),
        "cpu count": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "quick": quick,
        "seed": seed,
        "load average at start": load_average(),
        "command": " ".join(["adamlab", *sys.argv[1:]]) if sys.argv else "",
    }


def judge_parts(claim: Claim, metrics: dict) -> list[PartResult]:
    stored = as_stored(metrics)
    return [PartResult(p, part_verdict(p.judge(stored)), p.headline(stored)) for p in claim.parts]


def run_claim(claim: Claim, ctx: Context) -> ClaimResult:
    """Run and judge one claim; an exception becomes the verdict "error" with its traceback."""
    start = time.perf_counter()
    try:
        outcome = claim.run(ctx)
        parts = judge_parts(claim, outcome.metrics)
        verdict = claim_verdict([p.verdict for p in parts])
        return ClaimResult(claim, outcome, parts, verdict, time.perf_counter() - start, files=list(ctx.written))
    except Exception:  # a broken claim must not take the others down
        return ClaimResult(claim, None, [], ERROR, time.perf_counter() - start, traceback.format_exc(),
                           files=list(ctx.written))


def select_claims(only: list[str] | None, console: Console) -> list[Claim]:
    """The requested claims; a claim package that is missing is reported, not fatal."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", registry.MissingClaimWarning)
        claims = registry.select(only)
    for w in caught:
        if issubclass(w.category, registry.MissingClaimWarning):
            console.line(f"warning: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return claims


def reproduce(
    out_dir: Path | str = "adamlab-report",
    quick: bool = False,
    only: list[str] | None = None,
    seed: int = 0,
    console: Console | None = None,
) -> list[ClaimResult]:
    """Run the selected claims in order, write out_dir/index.html and results.json, print a summary."""
    console = console or Console(sys.stdout)
    out_dir = Path(out_dir)
    claims = select_claims(only, console)
    env = environment(quick, seed)
    started = time.perf_counter()
    results = []
    with console.progress() as progress:
        for claim in claims:
            results.append(progress.claim(claim, Context(out_dir, quick=quick, seed=seed), run_claim))
    env["wall time (s)"] = round(time.perf_counter() - started, 1)
    env["load average at end"] = load_average()
    env["finished"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    page, data = report.write(out_dir, results, env)
    console.summary(results, env, page, data)
    return results

