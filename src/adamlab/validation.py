"""Argument checks, one function per rule.

Each raises ValueError naming the argument, its allowed range and the value
received, before anything is changed.
"""

from __future__ import annotations

import math


def _number(name: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if math.isnan(x):
        raise ValueError(f"{name} must not be NaN")
    return x


def check_nonnegative(name: str, value) -> None:
    """lr, eps, weight_decay, momentum, dampening: allowed range [0, inf)."""
    if _number(name, value) < 0:
        raise ValueError(f"{name} must be in [0, inf), got {value}")


def check_unit_interval(name: str, value) -> None:
    """An EMA coefficient (beta1, beta2, alpha): allowed range [0, 1)."""
    x = _number(name, value)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


def check_betas(betas) -> None:
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    check_unit_interval("betas[0]", beta1)
    check_unit_interval("betas[1]", beta2)


def check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def check_nesterov(nesterov: bool, momentum, dampening) -> None:
    """Nesterov momentum needs momentum > 0 and dampening == 0 (torch's rule)."""
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"nesterov=True requires momentum in (0, inf) and dampening == 0, "
            f"got momentum={momentum}, dampening={dampening}"
        )


GROUP_CHECKS = {
    "lr": lambda v: check_nonnegative("lr", v),
    "eps": lambda v: check_nonnegative("eps", v),
    "weight_decay": lambda v: check_nonnegative("weight_decay", v),
    "momentum": lambda v: check_nonnegative("momentum", v),
    "dampening": lambda v: check_nonnegative("dampening", v),
    "betas": check_betas,
    "alpha": lambda v: check_unit_interval("alpha", v),
    "decay_scale": lambda v: check_choice("decay_scale", v, ("lr", "schedule")),
    "rect_threshold": lambda v: _number("rect_threshold", v),
}


def check_group(group: dict) -> None:
    """Validate every known hyperparameter of a (defaults-merged) param group."""
    for key, check in GROUP_CHECKS.items():
        if key in group:
            check(group[key])

    if "nesterov" in group:
        check_nesterov(group["nesterov"], group.get("momentum", 0), group.get("dampening", 0))
