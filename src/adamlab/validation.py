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


# torch's words for each check, so a message matches torch's and then names the allowed range
TORCH_WORDS = {"lr": "Invalid learning rate", "eps": "Invalid epsilon value"}


def _invalid(name: str, value, allowed: str) -> ValueError:
    if name.startswith("betas["):
        words = f"Invalid beta parameter at index {name[6]}"
    else:
        words = TORCH_WORDS.get(name, f"Invalid {name} value")
    return ValueError(f"{words}: {value} ({name} must be in {allowed})")


def check_nonnegative(name: str, value) -> None:
    """lr, eps, weight_decay, momentum, ...: allowed range [0, inf)."""
    if real_number(name, value) < 0:
        raise _invalid(name, value, "[0, inf)")


def check_unit_interval(name: str, value) -> None:
    """An EMA coefficient (beta1, beta2, alpha): allowed range [0, 1)."""
    if not 0.0 <= real_number(name, value) < 1.0:
        raise _invalid(name, value, "[0, 1)")


def check_real(name: str, value) -> None:
    real_number(name, value)


def check_betas(name: str, betas) -> None:
    """A pair (beta1, beta2) in [0, 1)^2, numbers or 1-element tensors in any mix (torch's RAdam, NAdam, Adamax)."""
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (beta1, beta2), got {betas!r}") from None
    check_unit_interval(f"{name}[0]", beta1)
    check_unit_interval(f"{name}[1]", beta2)


def check_paired_betas(name: str, betas) -> None:
    """As :func:`check_betas`, and both Python floats or both tensors: torch's Adam and AdamW refuse (0, 0.9)."""
    check_betas(name, betas)
    floats = all(isinstance(b, float) for b in betas)
    if not (floats or all(isinstance(b, torch.Tensor) for b in betas)):
        raise ValueError(f"{name} must be either both floats or both Tensors, got {betas!r}")


def check_bool(name: str, value) -> None:
    if not isinstance(value, (bool, int)) or isinstance(value, float):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def check_optional_bool(name: str, value) -> None:
    if value is not None:
        check_bool(name, value)


def check_seed(name: str, value) -> None:
    """A random seed: an integer in [0, 2^32)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if not 0 <= value < 2**32:
        raise ValueError(f"{name} must be in [0, 2^32), got {value}")


def check_low_precision(group: dict) -> None:
    """Low-precision state and bf16 rounding run the host-planned, non-differentiable steps only."""
    if group.get("state_precision") is None and group.get("param_update", "nearest") == "nearest":
        return
    if group.get("differentiable"):
        raise ValueError("differentiable=True needs state_precision=None and param_update='nearest': "
                         "quantized state and stochastic rounding are not differentiable")
    if group.get("capturable"):
        raise ValueError("capturable=True needs state_precision=None and param_update='nearest': "
                         "low-precision state is not yet stepped on the device")


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
            "Nesterov momentum requires a momentum and zero dampening: nesterov=True needs momentum in "
            f"(0, inf) and dampening == 0, got momentum={group['momentum']}, dampening={group['dampening']}"
        )


def check_tensor_hyperparameters(group: dict) -> None:
    """torch refuses Tensor lr or betas with foreach=True unless capturable (its foreach kernels take floats)."""
    if not group.get("foreach") or group.get("capturable"):
        return
    if isinstance(group.get("lr"), torch.Tensor):
        raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
    for i, beta in enumerate(group.get("betas", ())):
        if isinstance(beta, torch.Tensor):
            raise ValueError(f"betas[{i}] as a Tensor is not supported for capturable=False and foreach=True")


def check_fused_flags(group: dict) -> None:
    """torch's refusals for combining fused with foreach or differentiable."""
    if group.get("fused") and group.get("differentiable"):
        raise RuntimeError("`fused` does not support `differentiable`")
    if group.get("fused") and group.get("foreach"):
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def check_optional_count(name: str, value) -> None:
    """None, or a whole number >= 1."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be None or an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"Invalid {name} value: {value} ({name} must be None or in [1, inf))")
