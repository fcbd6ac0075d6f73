"""Checks shared by the lab's claim tests: every outcome must be a well-formed report entry."""

from __future__ import annotations

import json
import math

from adamlab.lab.report import plain

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def leaves(value):
    """Every scalar in a nested dict/list of metrics."""
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)
    else:
        yield value


def assert_well_formed(outcome, finite: bool = True) -> None:
    """Metrics become strict JSON in results.json and, unless a non-finite value is the finding
    (``finite=False``), are finite; every figure is a real PNG file."""
    json.dumps(plain(outcome.metrics), allow_nan=False)
    if finite:
        numbers = [x for x in leaves(outcome.metrics) if isinstance(x, (int, float)) and not isinstance(x, bool)]
        assert all(math.isfinite(x) for x in numbers)
    assert outcome.figures
    for path in outcome.figures:
        assert path.read_bytes().startswith(PNG_MAGIC)
