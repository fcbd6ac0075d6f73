"""Ma & Yarats' (2021) untuned warmup: a warmup length read off beta2.

Adam's second moment averages over about 1/(1-beta2) steps, and is unreliable
until it has; the linear rule warms up over 2/(1-beta2) steps, so that
omega_t = min(1, (1-beta2) t / 2) for step t = 1, 2, ...
"""

from __future__ import annotations

import math

from .pieces import check_steps

UNTUNED = "untuned"


def check_beta2(beta2) -> float:
    try:
        b2 = float(beta2)
    except (TypeError, ValueError):
        b2 = math.nan
    if not 0.0 < b2 < 1.0:  # also refuses NaN
        raise ValueError(f"beta2 must be in (0, 1), got {beta2!r}")
    return b2


def untuned_warmup_steps(beta2: float) -> int:
    """2/(1-beta2) rounded to an int: 2000 for beta2 = 0.999, 200 for 0.99.

    Rounded rather than truncated: 2/(1-0.999) is 1999.99... in floating point.
    The untuned linear warmup of Ma & Yarats (2021).

    Args:
        beta2 (float): Adam's second-moment decay rate, in (0, 1).

    Returns:
        int: the warmup length in optimizer steps.
    """
    return round(2.0 / (1.0 - check_beta2(beta2)))


def beta2_of(optimizer) -> float:
    """betas[1] of an Adam-family optimizer, refused if its param groups disagree.

    Args:
        optimizer (torch.optim.Optimizer): one with ``betas`` in every param group (adamlab's or torch's).

    Returns:
        float: the groups' common beta2.
    """
    groups = getattr(optimizer, "param_groups", None)
    if not groups or any("betas" not in g for g in groups):
        raise ValueError(
            "optimizer must have 'betas' in every param group (an Adam-family optimizer), "
            f"got {type(optimizer).__name__}"
        )
    values = sorted({float(g["betas"][1]) for g in groups})
    if len(values) > 1:
        raise ValueError(f"optimizer's param groups disagree on betas[1] ({values}); pass beta2= explicitly")
    return values[0]


def pick_beta2(optimizer=None, beta2=None) -> float:
    """beta2 from exactly one of ``optimizer`` and ``beta2``."""
    if (optimizer is None) == (beta2 is None):
        raise ValueError("the untuned rule needs exactly one of optimizer= or beta2=")
    return check_beta2(beta2_of(optimizer) if optimizer is not None else beta2)


def resolve_warmup(warmup_steps, optimizer=None, beta2=None) -> int:
    """An int warmup length: ``warmup_steps`` itself, or the untuned rule's for ``"untuned"``."""
    if isinstance(warmup_steps, str):
        if warmup_steps != UNTUNED:
            raise ValueError(f"warmup_steps must be an integer in [0, inf) or 'untuned', got {warmup_steps!r}")
        return untuned_warmup_steps(pick_beta2(optimizer, beta2))
    if optimizer is not None or beta2 is not None:
        raise ValueError("optimizer= and beta2= are read only when warmup_steps='untuned'")
    return check_steps("warmup_steps", warmup_steps)
