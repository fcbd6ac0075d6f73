"""Argument checks: each raises naming the argument, its allowed range and the value received.

Types follow torch: a value of the wrong kind (a string lr) is a TypeError,
a number out of range a ValueError. Every check runs before anything changes.
"""

from __future__ import annotations

import math
import numbers

import torch


def real_number(name: str, value) -> float:
    """The value as a float, if it is a real number or a 1-element tensor."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {name} must be 1-element, got shape {tuple(value.shape)}")
        if value.is_complex():
            raise TypeError(f"{name} must be a real number, got a complex tensor")
        x = float(value.detach())
    elif isinstance(value, numbers.Real):
        x = float(value)
    else:
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    if math.isnan(x):
        raise ValueError(f"{name} must not be NaN")
    return x


def check_nonnegative(name: str, value) -> None:
    """lr, eps, weight_decay, momentum, ...: allowed range [0, inf)."""
    if real_number(name, value) < 0:
        raise ValueError(f"{name} must be in [0, inf), got {value}")


def check_unit_interval(name: str, value) -> None:
    """An EMA coefficient (beta1, beta2, alpha): allowed range [0, 1)."""
    if not 0.0 <= real_number(name, value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


def check_real(name: str, value) -> None:
    real_number(name, value)


def check_betas(name: str, betas) -> None:
    """A pair (beta1, beta2) in [0, 1)^2: both numbers or both 1-element tensors, as torch requires."""
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (beta1, beta2), got {betas!r}") from None
    if isinstance(beta1, torch.Tensor) != isinstance(beta2, torch.Tensor):
        raise ValueError(f"{name} must be either both floats or both Tensors, got {betas!r}")
    check_unit_interval(f"{name}[0]", beta1)
    check_unit_interval(f"{name}[1]", beta2)


def check_bool(name: str, value) -> None:
    if not isinstance(value, (bool, int)) or isinstance(value, float):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def check_optional_bool(name: str, value) -> None:
    if value is not None:
        check_bool(name, value)


def choice(*allowed):
    """A check that the value is one of ``allowed``."""

    def check(name: str, value) -> None:
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")

    return check


def check_nesterov(group: dict) -> None:
    """Nesterov momentum needs momentum > 0 and dampening == 0 (torch's rule)."""
    if group.get("nesterov") and (group["momentum"] <= 0 or group["dampening"] != 0):
        raise ValueError(
            "nesterov=True requires momentum in (0, inf) and dampening == 0, "
            f"got momentum={group['momentum']}, dampening={group['dampening']}"
        )


def check_fused_flags(group: dict) -> None:
    """torch's refusals for combining fused with foreach or differentiable."""
    if group.get("fused") and group.get("differentiable"):
        raise RuntimeError("`fused` does not support `differentiable`")
    if group.get("fused") and group.get("foreach"):
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
