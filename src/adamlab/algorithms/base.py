"""What an optimizer record is, and the pieces every record shares.

A record (:class:`Algorithm`) is the one place that knows an optimizer:

* its options, in torch's order, with defaults, checks and docs
  (the optimizer class's signature and ``Args:`` are built from them);
* its :class:`Config` subclass: the static shape of one update (which state
  exists, which branches run), its state names and its *rule*, the
  elementwise update written with :mod:`adamlab.math`;
* its *plan*: a group's hyperparameters and a param's counters turned into
  the per-step scalars the rule consumes.

A rule never mutates: the reference backend runs it on tensors, the fused
backends trace it into a program (:mod:`adamlab.backends.trace`). Backends
know nothing about optimizers.

What this covers: updates that are elementwise given per-step scalars. An
update that needs a reduction over a tensor (LAMB's trust ratio, Adafactor's
factored moments) needs a per-tensor scalar computed before the elementwise
pass; that would be a second plan stage over the bucket's tensors, run
before dispatch, feeding per-tensor scalars to the same kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import math as M

DECAY_MODES = ("none", "l2", "decoupled")


@dataclass(frozen=True)
class Option:
    """One constructor argument: torch's name and default, its check, its documentation."""

    name: str
    default: Any
    doc: str
    check: Callable[[str, Any], None] | None = None
    positional: bool = False  # positional-or-keyword in torch's signature; else keyword-only
    beyond_torch: bool = False  # torch's class of this algorithm has no such argument
    late: bool = False  # torch added it later: older checkpoints lack it and loading fills the default


@dataclass
class Preconditioner:
    """How a step's state reads as a per-coordinate step size (what adamlab.Monitor reports)."""

    #: the raw second-moment state (exp_avg_sq, sum, square_avg, exp_inf): where it is exactly 0
    v: Any
    #: the term eps is added to in the denominator (sqrt(vhat) for Adam); None where there is none (Adamax)
    root: Any
    eps: Any
    #: the factor the step multiplies its direction by (the first moment, else the gradient):
    #: lr / (1 - beta1^t) / (sqrt(vhat) + eps) for Adam, so that the update is effective * exp_avg
    effective: Any
    #: AMSGrad's running max of v
    vmax: Any = None


@dataclass(frozen=True)
class Config:
    """The static shape of one update: it selects the code, never the numbers.

    Everything that varies from step to step is a scalar of the plan, so a
    schedule that changes lr or betas every step never changes the config.
    """

    maximize: bool = False
    decay: str = "none"  # one of DECAY_MODES
    unscale: bool = False  # AMP: gradients arrive multiplied by grad_scale and are written back unscaled

    def state_names(self) -> tuple[str, ...]:
        """torch's state keys for this config, in a fixed order."""
        return ()

    def rule(self, p, g, state: dict, s):
        """(new param, {state name: new value}); ``s`` holds the plan's scalars."""
        raise NotImplementedError

    #: the state names :meth:`preconditioner` reads; () where the update has no preconditioner (SGD)
    def preconditioner_state(self) -> tuple[str, ...]:
        return ()

    def preconditioner(self, st: dict, s) -> Preconditioner | None:
        """The state after a step, read as per-coordinate step sizes, from the same math as the rule."""
        return None

    def eps_added_to_root(self) -> bool:
        """Whether eps is added to a root in the denominator (not so in Adamax, where it enters the max)."""
        return bool(self.preconditioner_state())


@dataclass(frozen=True)
class Plan:
    """What a plan returns for one bucket of params at one step."""

    config: Config
    scalars: dict[str, Any]
    #: new values of per-param scalar state other than 'step' (NAdam's mu_product)
    counters: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Algorithm:
    """One optimizer, in one place. See the module docstring."""

    name: str
    options: tuple[Option, ...]
    plan: Callable[[dict, dict], Plan]
    #: per-param 0-d state the plan reads, torch's keys ('step' first); () for none
    counters: tuple[str, ...] = ("step",)
    #: initial values of those counters
    counter_start: dict[str, float] = field(default_factory=lambda: {"step": 0.0})
    #: cross-option checks on a whole group (each raises ValueError)
    group_checks: tuple[Callable[[dict], None], ...] = ()
    #: (p, sparse grad, state, group, counters) -> None, for algorithms torch lets take sparse gradients
    sparse_step: Callable | None = None
    #: (group) -> None, raising what torch refuses with a sparse gradient
    sparse_check: Callable | None = None
    #: initial value of each state array (state name -> group key), where torch does not start at 0
    state_fill: dict[str, str] = field(default_factory=dict)
    #: torch creates this algorithm's state at construction (Adagrad), not at the first step
    eager_state: bool = False
    #: state arrays that are never negative (second moments): 8-bit state keeps them in an unsigned code
    nonnegative_state: tuple[str, ...] = ()

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}

    def filled_on_load(self) -> tuple[str, ...]:
        """Options a saved group may lack: torch's later additions and adamlab's own."""
        return tuple(o.name for o in self.options if o.late or o.beyond_torch)

    def beyond_torch(self) -> dict[str, Any]:
        """Options torch's class lacks, with their defaults: hidden from state dicts while at them."""
        return {o.name: o.default for o in self.options if o.beyond_torch}

    def check(self, group: dict) -> None:
        """Validate every option present in a (defaults-merged) group; raises naming the option."""
        for option in self.options:
            if option.check is not None and option.name in group:
                option.check(option.name, group[option.name])
        for check in self.group_checks:
            check(group)


def apply_update(cfg: Config, p, g, state: dict, s):
    """The full elementwise update a backend runs: AMP unscaling, then the record's rule.

    Returns (new param, new state, new grad or None): with ``cfg.unscale`` the
    unscaled gradient is written back, as torch's fused optimizers do.
    """
    new_grad = None
    if cfg.unscale:
        g = new_grad = M.unscale(g, s.grad_scale)
    new_p, new_state = cfg.rule(p, g, state, s)
    return new_p, new_state, new_grad


# ---------------------------------------------------------------- weight decay, shared by the records


def decay_mode(group) -> str:
    """One place decides how weight decay enters: none, L2 (coupled) or decoupled."""
    if _is_zero(group["weight_decay"]):
        return "none"
    return "decoupled" if group.get("decoupled_weight_decay", False) else "l2"


def _is_zero(x) -> bool:
    return bool(x == 0)


def _on_host(x) -> bool:
    """Whether reading x costs no wait for a device (a number, or a CPU tensor)."""
    return not isinstance(x, torch.Tensor) or x.device.type == "cpu"


def _checkable(x) -> bool:
    """Whether a check may read x now: not a device Tensor (it would wait for the device), nor a Tensor in a
    traced step (it would break the graph; init_group checks the same plan untraced when the graph is traced).
    """
    return _on_host(x) and not (isinstance(x, torch.Tensor) and torch.compiler.is_compiling())


def base_lr(group):
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
        if _is_zero(base_lr(group)) and _checkable(lr) and not _is_zero(lr):
            raise ValueError(
                'decay_scale="schedule" divides lr by the group\'s base_lr, which is 0 (the optimizer was '
                "built at lr 0): set group['base_lr'] to the lr the schedule multiplies, in (0, inf)"
            )
        factor = M.schedule_decay_factor(lr, base_lr(group), wd)
    else:
        factor = M.lr_decay_factor(lr, wd)
    if _checkable(factor) and bool(factor < 0):
        raise ValueError(
            f"decoupled decay factor {float(factor):.4g} < 0 would flip the weights' sign: weight_decay={wd} "
            f"times the {'schedule multiplier lr/base_lr' if by_schedule else 'lr'} "
            "must stay in [0, 1]"
        )
    return {"decay_factor": factor}


def decayed_gradient(cfg: Config, p, g, s):
    """Apply maximize and the decay mode; returns (p, g) as the update sees them."""
    g = M.signed_gradient(g, cfg.maximize)
    if cfg.decay == "l2":
        g = M.coupled_decay(g, p, s.weight_decay)
    elif cfg.decay == "decoupled":
        p = M.decoupled_decay(p, s.decay_factor)
    return p, g
