"""How every bench section times: contenders in turn within each repeat, so a noisy machine slows them alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def in_turn(steps: dict[str, Callable[[], object]], repeats: int, advance=lambda: None) -> dict[str, list[float]]:
    """Seconds of each call, per contender; in every repeat each contender runs once, in the given order."""
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t)
        advance()
    return times


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    return statistics.median(in_turn({"fn": fn}, repeats)["fn"])
