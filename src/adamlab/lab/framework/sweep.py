"""Learning-rate sweeps that bracket their optimum: the best value is never left at an edge of the grid.

If a sweep's best lr is the smallest or the largest tried, its grid grows by
one point on that side (at the grid's own ratio) and that point is run, until
the best lies inside or ``max_extensions`` points have been added. Several
sweeps advance together, so each round's runs can share one worker pool. The
result says which case it is, so the report can show that the optimum is
interior.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Sweep:
    values: list[float]  # every lr tried, ascending
    scores: dict[float, float]  # higher is better
    extended: list[float] = field(default_factory=list)  # the values added beyond the initial grid

    @property
    def best(self) -> float:
        return max(self.values, key=lambda v: self.scores[v])

    @property
    def interior(self) -> bool:
        """The best value has a worse neighbour on each side."""
        i = self.values.index(self.best)
        return 0 < i < len(self.values) - 1

    def next_value(self) -> float:
        """One grid step beyond the edge where the best value sits."""
        ratio = self.values[1] / self.values[0]
        low = self.values.index(self.best) == 0
        return float(f"{self.values[0] / ratio if low else self.values[-1] * ratio:.3g}")  # 3e-2, not 0.0300..06


def bracket(grids: dict[str, list[float]], evaluate: Callable[[dict[str, list[float]]], dict[str, dict]],
            max_extensions: int = 3) -> dict[str, Sweep]:
    """Sweep each named log-spaced grid, extending each until its best value is inside.

    A one-point grid has no ratio to extend by: it is run as it is.

    ``evaluate({name: [values]})`` runs the asked values and returns
    ``{name: {value: score}}``.
    """
    for name, grid in grids.items():
        if not grid:
            raise ValueError(f"sweep {name!r} has no grid points")
    first = evaluate({name: sorted(map(float, grid)) for name, grid in grids.items()})
    sweeps = {name: Sweep(sorted(map(float, grid)), dict(first[name])) for name, grid in grids.items()}
    while True:
        ask = {name: [s.next_value()] for name, s in sweeps.items()
               if not s.interior and len(s.values) > 1 and len(s.extended) < max_extensions}
        if not ask:
            return sweeps
        for name, scores in evaluate(ask).items():
            s = sweeps[name]
            s.scores.update(scores)
            s.values = sorted(s.values + ask[name])
            s.extended += ask[name]
