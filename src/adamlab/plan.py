"""Per-step scalars, computed once per group in Python double precision.

A plan maps a param group and a step count to the :class:`~adamlab.rules.Config`
and the scalar namespace that a rule consumes. Backends receive finished
numbers (step sizes, bias corrections, decay factors, r_t) and do elementwise
work only; torch computes these scalars the same way, in Python floats.
"""

from __future__ import annotations

from types import SimpleNamespace

from . import math as M
from .rules import Config


def decay_mode(group) -> str:
    """One place decides how weight decay enters: none, L2 (coupled) or decoupled."""
    if group["weight_decay"] == 0:
        return "none"
    return "decoupled" if group.get("decoupled_weight_decay", False) else "l2"


def base_lr(group) -> float:
    """gamma_0 of the schedule multiplier lr/gamma_0: the lr the group was built with.

    Kept under adamlab's own key, since torch's schedulers may rewrite
    ``initial_lr`` (OneCycleLR sets it to max_lr / div_factor). A checkpoint
    from torch has neither key of ours; its ``initial_lr`` is the next best.
    """
    return group.get("base_lr", group.get("initial_lr", group["lr"]))


def decay_scalars(group, mode: str) -> dict:
    """lambda for L2, or the decoupled shrink factor: torch's (lr) or the paper's (schedule)."""
    wd, lr = group["weight_decay"], group["lr"]
    if mode == "l2":
        return {"weight_decay": wd}
    if mode != "decoupled":
        return {}
    by_schedule = group.get("decay_scale", "lr") == "schedule"
    if by_schedule:
        if base_lr(group) == 0 and lr != 0:
            raise ValueError(
                'decay_scale="schedule" divides lr by the group\'s base_lr, which is 0 (the optimizer was '
                "built at lr 0): set group['base_lr'] to the lr the schedule multiplies, in (0, inf)"
            )
        factor = M.schedule_decay_factor(lr, base_lr(group), wd)
    else:
        factor = M.lr_decay_factor(lr, wd)
    if factor < 0:
        raise ValueError(
            f"decoupled decay factor {factor:.4g} < 0 would flip the weights' sign: weight_decay={wd} "
            f"times the {'schedule multiplier lr/base_lr' if by_schedule else 'lr'} "
            "must stay in [0, 1]"
        )
    return {"decay_factor": factor}


def plan_adam(group, step: int):
    mode = decay_mode(group)
    beta1, beta2 = group["betas"]
    if group.get("bias_correction", True):
        bc1, bc2 = M.bias_correction(beta1, step), M.bias_correction(beta2, step)
    else:
        bc1 = bc2 = 1.0
    cfg = Config("adam", group["maximize"], mode, amsgrad=group["amsgrad"])
    scalars = dict(
        beta1=beta1,
        beta2=beta2,
        eps=group["eps"],
        step_size=group["lr"] / bc1,
        bias_correction2_sqrt=bc2**0.5,
        **decay_scalars(group, mode),
    )
    return cfg, scalars


def plan_radam(group, step: int):
    mode = decay_mode(group)
    beta1, beta2 = group["betas"]
    rectified = M.radam_rho(beta2, step) > group.get("rect_threshold", 5.0)
    cfg = Config("radam", group["maximize"], mode, rectified=rectified)
    scalars = dict(
        beta1=beta1,
        beta2=beta2,
        eps=group["eps"],
        lr=group["lr"],
        bias_correction1=M.bias_correction(beta1, step),
        bias_correction2_sqrt=M.bias_correction(beta2, step) ** 0.5,
        **decay_scalars(group, mode),
    )
    if rectified:
        scalars["rect"] = M.radam_rectification(beta2, step)
    return cfg, scalars


def plan_sgd(group, step: int):
    """step == 1 means the momentum buffer is new: torch then sets it to g, undamped."""
    mode = decay_mode(group)
    mu = group["momentum"]
    cfg = Config("sgd", group["maximize"], mode, momentum=mu != 0, nesterov=group["nesterov"])
    first = step == 1
    scalars = dict(
        lr=group["lr"],
        momentum=mu,
        momentum_keep=0.0 if first else mu,
        grad_weight=1.0 if first else 1 - group["dampening"],
        **decay_scalars(group, mode),
    )
    return cfg, scalars


def plan_rmsprop(group, step: int):
    mode = decay_mode(group)
    cfg = Config(
        "rmsprop", group["maximize"], mode, momentum=group["momentum"] > 0, centered=group["centered"]
    )
    scalars = dict(
        lr=group["lr"],
        alpha=group["alpha"],
        eps=group["eps"],
        momentum=group["momentum"],
        **decay_scalars(group, mode),
    )
    return cfg, scalars


PLANS = {"adam": plan_adam, "radam": plan_radam, "sgd": plan_sgd, "rmsprop": plan_rmsprop}


def make_plan(algorithm: str, group, step: int):
    """(Config, SimpleNamespace of floats) for one group at one step."""
    cfg, scalars = PLANS[algorithm](group, step)
    return cfg, SimpleNamespace(**{k: float(v) for k, v in scalars.items()})
