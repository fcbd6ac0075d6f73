"""Metric values as JSON and as text: one conversion each way, used by the report and by the judges."""

from __future__ import annotations

import json
import math
from typing import Any

NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def plain(value: Any) -> Any:
    """A JSON-safe copy: non-finite floats become "inf", "-inf" or "nan" (strict JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy or torch scalar
        return plain(value.item())
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy array
        return plain(value.tolist())
    return value


def revive(value: Any) -> Any:
    """The inverse of :func:`plain` for numbers: "inf", "-inf" and "nan" become floats again."""
    if isinstance(value, str):
        return NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {k: revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [revive(v) for v in value]
    return value


def as_stored(metrics: dict) -> dict:
    """The metrics exactly as results.json will give them back: what every judge sees."""
    return revive(json.loads(json.dumps(plain(metrics), default=str)))


def fmt(value: Any) -> str:
    """A value as text for the page: 5 significant digits (enough to see fp16 rounding), lists inline."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.5g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    if hasattr(value, "item") and callable(value.item):
        return fmt(value.item())
    return str(value)


def flatten(metrics: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested metrics as (path, leaf) rows: {"a": {"b": 1}} -> [("a / b", 1)]."""
    rows = []
    for key, value in metrics.items():
        path = f"{prefix} / {key}" if prefix else str(key)
        rows.extend(flatten(value, path) if isinstance(value, dict) else [(path, value)])
    return rows
