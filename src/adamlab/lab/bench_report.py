"""Terminal output of ``adamlab bench``: progress bars and the results table."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

CONTENDERS = ("adamlab", "torch-loop", "torch-foreach", "torch-fused")


@contextmanager
def progress_bars():
    """Yields ``factory(description, total) -> advance``, one bar per measured case.

    The bars redraw only between timed steps: rich's background refresh would
    otherwise take a core from the 2-thread kernels while they are being timed.
    """
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, auto_refresh=False) as bars:
        def factory(description, total):
            task = bars.add_task(description, total=total)

            def advance():
                bars.advance(task)
                bars.refresh()

            return advance

        yield factory


def print_report(report: dict, console: Console | None = None) -> None:
    console = console or Console()
    console.print(
        f"[bold]Streaming bandwidth[/] (>= 4x LLC): triad {report['bandwidth_gb_per_s']['triad']:.1f} GB/s, "
        f"Adam-shaped traffic {report['bandwidth_gb_per_s']['adam_traffic']:.1f} GB/s; "
        f"{report['threads']} threads, torch {report['torch']}"
    )
    table = Table(title="AdamW step throughput in Mparams/s (median; higher is better)")
    for col in ("case", "variant", "params", "tensors", "adamlab", "loop", "foreach", "fused", "vs fused",
                "ceiling", "of ceil."):
        table.add_column(col, justify="right", no_wrap=True)
    for r in report["results"]:
        mps = r["mparams_per_s"]
        table.add_row(
            r["case"], r["variant"], f"{r['params'] / 1e6:.1f}M", str(r["tensors"]),
            *(f"{mps[c]:.0f}" for c in CONTENDERS),
            f"{r['ratio_vs_torch_fused']:.2f}x",
            f"{r['ceiling_mparams_per_s']:.0f}",
            f"{100 * r['adamlab_fraction_of_ceiling']:.0f}%",
        )
    console.print(table)
    console.print("ceiling = the higher bandwidth / bytes per param (fp32 AdamW 28 B, AMSGrad 36 B, bf16 params 22 B); "
                  "no-bc is compared with torch's bias-corrected AdamW")
    fs = report["first_step"]
    console.print(f"First adamlab step in a fresh process: {fs['cold_s']:.2f} s cold (kernel built), "
                  f"{fs['warm_s']:.2f} s warm (cached build)")
    for key in sorted({r["case"] for r in report["results"]}):
        label = next(r["label"] for r in report["results"] if r["case"] == key)
        console.print(f"  case {key}: {label}")
