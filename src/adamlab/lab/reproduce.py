"""Run the claims, show progress, time each one, and write the report.

A claim that does not reproduce is a finding, not a failure; a claim that
raises is recorded with its traceback, the others still run, and the caller
learns about it from the verdict "error".
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

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from . import claims as registry
from . import report
from .core import Claim, Context
from .report import ERROR, NOT_REPRODUCED, NOT_TESTED, REPRODUCED, ClaimResult

VERDICT_STYLE = {REPRODUCED: "green", NOT_REPRODUCED: "yellow", NOT_TESTED: "dim", ERROR: "bold red"}
# judge() says True or False, or None where the settings run are too small to decide
VERDICTS = {True: REPRODUCED, False: NOT_REPRODUCED, None: NOT_TESTED}


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
    import numpy
    import torch

    import adamlab

    out = {"python": platform.python_version(), "adamlab": adamlab.__version__, "torch": torch.__version__}
    out["numpy"] = numpy.__version__
    try:
        import matplotlib

        out["matplotlib"] = matplotlib.__version__
    except ImportError:
        pass
    return out


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
        "command": " ".join(["adamlab", *sys.argv[1:]]) if sys.argv else "",
    }


def make_progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def run_claim(claim: Claim, ctx: Context) -> ClaimResult:
    """Run and judge one claim; an exception becomes the verdict "error" with its traceback."""
    start = time.perf_counter()
    try:
        outcome = claim.run(ctx)
        verdict = VERDICTS[claim.judge(outcome.metrics)]
        return ClaimResult(claim, outcome, verdict, time.perf_counter() - start)
    except Exception:  # a broken claim must not take the others down
        return ClaimResult(claim, None, ERROR, time.perf_counter() - start, traceback.format_exc())


def select_claims(only: list[str] | None, console: Console) -> list[Claim]:
    """The requested claims; a claim module that is missing is reported, not fatal."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", registry.MissingClaimWarning)
        claims = registry.select(only)
    for w in caught:
        if issubclass(w.category, registry.MissingClaimWarning):
            console.print(f"[yellow]warning:[/] {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return claims


def run_with_progress(claim: Claim, progress: Progress, ctx: Context) -> ClaimResult:
    """Run one claim under a spinner, with a bar per training run that disappears when the claim ends."""
    top = progress.add_task(f"[bold]{claim.id}[/] {claim.title}", total=None)
    runs = []

    def track(description: str, total: int):
        task = progress.add_task(f"  {description}", total=total)
        runs.append(task)
        return lambda: progress.advance(task)

    ctx.progress = track
    result = run_claim(claim, ctx)
    for task in runs:
        progress.remove_task(task)
    style = VERDICT_STYLE[result.verdict]
    description = f"[bold]{claim.id}[/] {claim.title}: [{style}]{result.verdict}[/] ({result.seconds:.1f} s)"
    progress.update(top, total=1, completed=1, description=description)
    return result


def reproduce(
    out_dir: Path | str = "adamlab-report",
    quick: bool = False,
    only: list[str] | None = None,
    seed: int = 0,
    console: Console | None = None,
) -> list[ClaimResult]:
    """Run the selected claims in order, write out_dir/index.html and results.json, print a summary."""
    console = console or Console()
    out_dir = Path(out_dir)
    claims = select_claims(only, console)
    env = environment(quick, seed)
    started = time.perf_counter()
    results = []
    with make_progress(console) as progress:
        for claim in claims:
            results.append(run_with_progress(claim, progress, Context(out_dir, quick=quick, seed=seed)))
    env["wall time (s)"] = round(time.perf_counter() - started, 1)
    env["finished"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    page, data = report.write(out_dir, results, env)
    print_summary(console, results, env, page, data)
    return results


def print_summary(console: Console, results: list[ClaimResult], env: dict, page: Path, data: Path) -> None:
    table = Table(title=f"adamlab reproduce ({'quick' if env['quick'] else 'full'}, seed {env['seed']})")
    table.add_column("claim")
    table.add_column("title")
    table.add_column("verdict")
    table.add_column("time (s)", justify="right")
    for r in results:
        style = VERDICT_STYLE[r.verdict]
        table.add_row(r.claim.id, r.claim.title, f"[{style}]{r.verdict}[/]", f"{r.seconds:.1f}")
    console.print(table)
    for r in results:
        if r.verdict == ERROR:
            console.print(f"[bold red]{r.claim.id} raised:[/]\n{r.error}")
    console.print(f"Total {env['wall time (s)']} s. Report: {page}  Data: {data}")
