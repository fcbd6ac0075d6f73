"""What every claim experiment receives and returns.

A claim module under :mod:`adamlab.lab.claims` defines ``CLAIM = Claim(...)``.
``run(ctx)`` does the work and returns metrics and figures; ``judge(metrics)``
turns metrics into a verdict, separately, so tests can check that the verdict
flips when a metric crosses its criterion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class Context:
    """Where and how big to run: passed to each claim's ``run``."""

    out_dir: Path
    quick: bool = False
    seed: int = 0
    #: ``progress(description, total)`` returns an ``advance()`` callable
    progress: Callable[[str, int], Callable[[], None]] = lambda description, total: (lambda: None)

    def figure_path(self, name: str) -> Path:
        """A path under out_dir/figures for a figure file (``name`` includes the extension)."""
        path = self.out_dir / "figures" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class Outcome:
    """What ``run`` returns: the numbers, the figures, and tables for the page."""

    metrics: dict[str, Any]
    figures: list[Path] = field(default_factory=list)
    #: each table: {"caption": str, "columns": [...], "rows": [[...], ...]}
    tables: list[dict] = field(default_factory=list)
    notes: str = ""


@dataclass(frozen=True)
class Claim:
    id: str  # "C1" .. "C6"
    title: str
    citation: str
    statement: str  # the claim in the project's own words
    setup: str  # what is run, on what data
    criterion: str  # the pass rule, in words
    run: Callable[[Context], Outcome]
    #: True (reproduced), False (not reproduced), or None where the run was too small to decide
    judge: Callable[[dict], bool | None]
