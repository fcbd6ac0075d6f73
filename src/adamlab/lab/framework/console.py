"""What ``adamlab reproduce`` prints: live progress bars on a terminal, plain lines anywhere else.

Output that is not a terminal (a pipe, a file, CI) gets no colour codes and
no redrawn bars, and nothing in it is cut to a width: every line is printed
in full.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

from .verdicts import ERROR


class Console:
    def __init__(self, stream=None, live: bool | None = None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live

    def line(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    @contextmanager
    def progress(self):
        if self.live:
            with _Bars(self.stream) as bars:
                yield bars
        else:
            yield _Lines(self)

    def summary(self, results, env: dict, page, data) -> None:
        for line in summary_lines(results, env):
            self.line(line)
        for r in results:
            if r.verdict == ERROR:
                self.line(f"{r.claim.id} raised:\n{r.error}")
        self.line(f"Total {env['wall time (s)']} s. Report: {page}  Data: {data}")


def summary_lines(results, env: dict) -> list[str]:
    """The summary as plain text: one row per claim, then its parts indented beneath."""
    mode = "quick" if env.get("quick") else "full"
    rows = [("claim", "verdict", "time (s)", "title")]
    rows += [(r.claim.id, r.verdict, f"{r.seconds:.1f}", r.claim.title) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"adamlab reproduce ({mode} settings, seed {env.get('seed')})"]
    for i, row in enumerate(rows):
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}")
        if i:
            indent = " " * (widths[0] + 2)
            lines += [f"{indent}- {p.part.title}: {p.verdict}" for p in results[i - 1].parts]
    return lines


class _Lines:
    """Progress for a pipe or file: one line as each claim starts and ends."""

    def __init__(self, console: Console):
        self.console = console

    def claim(self, claim, ctx, run):
        """``run(claim, ctx)``, announced before and after."""
        self.console.line(f"{claim.id} {claim.title}: running")
        result = run(claim, ctx)
        self.console.line(f"{claim.id}: {result.verdict} ({result.seconds:.1f} s)")
        return result


class _Bars:
    """rich progress bars: a spinner per claim, a bar per training run that goes when the claim ends."""

    def __init__(self, stream):
        from rich.console import Console as RichConsole
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bars = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=RichConsole(file=stream), transient=False)

    def __enter__(self):
        self.bars.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bars.__exit__(*exc)

    def claim(self, claim, ctx, run):
        """``run(claim, ctx)`` under a spinner, with ``ctx.progress`` drawing a bar per training run."""
        from rich.markup import escape

        top = self.bars.add_task(f"{claim.id} {escape(claim.title)}", total=None)
        runs = []

        def track(description: str, total: int):
            task = self.bars.add_task(f"  {escape(description)}", total=total)
            runs.append(task)
            return lambda: self.bars.advance(task)

        ctx.progress = track
        result = run(claim, ctx)
        for task in runs:
            self.bars.remove_task(task)
        self.bars.update(top, total=1, completed=1,
                         description=f"{claim.id} {escape(claim.title)}: {result.verdict} ({result.seconds:.1f} s)")
        return result
