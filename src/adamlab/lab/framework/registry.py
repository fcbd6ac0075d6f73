"""Find claims by id and load them; a listed claim package that is not installed is skipped with a warning."""

from __future__ import annotations

import importlib
import warnings

from .. import claims
from .claim import Claim


class MissingClaimWarning(UserWarning):
    """A claim listed in adamlab.lab.claims.PACKAGES is not installed."""


def known_ids() -> list[str]:
    return list(claims.PACKAGES)


def check_ids(ids: list[str] | None) -> list[str]:
    """The requested ids, upper-cased and in report order (all if None); ValueError names any unknown one."""
    if not ids:
        return known_ids()
    wanted = {i.strip().upper() for i in ids if i.strip()}
    unknown = sorted(wanted - set(claims.PACKAGES))
    if unknown:
        raise ValueError(f"unknown claim ids: {', '.join(unknown)} (known: {', '.join(claims.PACKAGES)})")
    return [i for i in claims.PACKAGES if i in wanted]


def load(claim_id: str) -> Claim | None:
    """The CLAIM of one claim package, or None (with a warning) if the package is absent."""
    full = f"{claims.__name__}.{claims.PACKAGES[claim_id]}"
    try:
        module = importlib.import_module(full)
    except ModuleNotFoundError as e:
        if e.name != full:  # the package exists but one of its imports is missing: a real error
            raise
        warnings.warn(f"claim {claim_id} ({full}) is not installed; skipping it", MissingClaimWarning, stacklevel=2)
        return None
    claim = getattr(module, "CLAIM", None)
    if not isinstance(claim, Claim):
        raise TypeError(f"{full} must define CLAIM = Claim(...), found {claim!r}")
    return claim


def select(ids: list[str] | None = None) -> list[Claim]:
    """The claims with these ids (case-insensitive), in report order; all if None."""
    return [c for c in map(load, check_ids(ids)) if c is not None]
