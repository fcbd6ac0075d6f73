"""The registry of claims, in report order.

Each module defines ``CLAIM`` (see :mod:`adamlab.lab.core`). A module that
does not exist yet is skipped with a warning rather than failing the run.
"""

from __future__ import annotations

import importlib
import warnings

from ..core import Claim

MODULES = (
    "c1_bias_correction",
    "c2_adamw",
    "c3_warmup",
    "c4_amsgrad",
    "c5_generalisation",
    "c6_half_precision",
    "c7_low_precision.claim",
)


class MissingClaimWarning(UserWarning):
    """A claim module listed in MODULES is not installed."""


def load(name: str) -> Claim | None:
    """The CLAIM of module ``name``, or None (with a warning) if the module is absent."""
    full = f"{__name__}.{name}"
    try:
        module = importlib.import_module(full)
    except ModuleNotFoundError as e:
        if e.name != full:  # the module exists but one of its imports is missing: a real error
            raise
        warnings.warn(f"claim module {name} not found; skipping it", MissingClaimWarning, stacklevel=2)
        return None
    claim = getattr(module, "CLAIM", None)
    if not isinstance(claim, Claim):
        raise TypeError(f"claim module {name} must define CLAIM = Claim(...), found {claim!r}")
    return claim


def all_claims() -> list[Claim]:
    """Every available claim, in report order."""
    return [claim for claim in map(load, MODULES) if claim is not None]


def select(ids: list[str] | None = None) -> list[Claim]:
    """The claims whose ids (case-insensitive, e.g. "c1") are in ``ids``; all if None."""
    claims = all_claims()
    if not ids:
        return claims
    wanted = {i.strip().upper() for i in ids if i.strip()}
    known = {c.id.upper() for c in claims}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(
            f"unknown or unavailable claim ids: {', '.join(unknown)} (available: {', '.join(sorted(known))})"
        )
    return [c for c in claims if c.id.upper() in wanted]
