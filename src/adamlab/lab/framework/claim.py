"""What every claim defines, receives and returns.

Each claim is a package under :mod:`adamlab.lab.claims` whose ``CLAIM`` is a
:class:`Claim`. The template every claim follows:

* its settings are a frozen dataclass with a ``FULL`` and a ``QUICK`` instance
  (named values, never positional tuples), and ``run`` picks one with
  ``ctx.pick(FULL, QUICK)``;
* the setup text is built from ``FULL`` and the quick-mode line from
  ``QUICK``, so the page describes exactly what ran;
* figures go through :func:`adamlab.lab.framework.figures.save`, each with a
  caption and alt text;
* the verdict comes from :class:`Part` judges over the metrics alone, so a
  test can flip a verdict by moving one metric across its criterion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FigureRef:
    """A saved figure and the words that go with it on the page."""

    path: Path
    caption: str  # one or two sentences: what it shows, what to look at
    alt: str  # the same for readers who cannot see the image


@dataclass
class Context:
    """Where and how big to run: passed to each claim's ``run``."""

    out_dir: Path
    quick: bool = False
    seed: int = 0
    #: ``progress(description, total)`` returns an ``advance()`` callable
    progress: Callable[[str, int], Callable[[], None]] = lambda description, total: (lambda: None)
    #: every figure file written through this context, so a later run can remove them
    written: list[Path] = field(default_factory=list)

    def pick(self, full, quick):
        """The quick or the full settings, as this run asks."""
        return quick if self.quick else full

    def figure_path(self, name: str) -> Path:
        """A path under out_dir/figures for a figure file (``name`` includes the extension)."""
        path = self.out_dir / "figures" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.written.append(path)
        return path


@dataclass
class Outcome:
    """What ``run`` returns: the numbers, the figures, and tables for the page."""

    metrics: dict[str, Any]
    figures: list[FigureRef] = field(default_factory=list)
    #: each table: {"caption": str, "columns": [...], "rows": [[...], ...]}
    tables: list[dict] = field(default_factory=list)
    notes: str = ""


@dataclass(frozen=True)
class Part:
    """One separately judged piece of a claim (C5: the constructed problem, and the CNN on digits)."""

    key: str
    title: str
    criterion: str  # the pass rule, in words, built from the constants the judge uses
    #: metrics -> True, False, None (too small a run to test) or verdicts.UNDECIDED
    judge: Callable[[dict], Any]
    #: metrics -> one plain sentence of what was measured; a reversed effect is said as such
    headline: Callable[[dict], str]


@dataclass(frozen=True)
class Claim:
    id: str  # "C1" .. "C7"
    title: str
    citation: str
    statement: str  # the claim in the project's own words
    setup: str  # what the full run does, on what data
    quick_setup: str  # one line: how --quick differs
    parts: tuple[Part, ...]
    run: Callable[[Context], Outcome]
