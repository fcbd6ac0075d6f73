"""Adagrad: per-coordinate steps from the sum of squared gradients (Duchi et al. 2011), torch's form."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import math as M
from .. import validation as V
from . import options as O
from .base import Algorithm, Config, Option, Plan, Preconditioner, decay_mode, decay_scalars, decayed_gradient


@dataclass(frozen=True)
class AdagradConfig(Config):
    def state_names(self):
        return ("sum",)

    def rule(self, p, g, st, s):
        p, g = decayed_gradient(self, p, g, s)
        acc = M.accumulated_square(st["sum"], g)
        return M.preconditioned_step(p, g, M.root_denominator(acc, s.eps), s.step_size), {"sum": acc}

    def preconditioner_state(self):
        return ("sum",)

    def preconditioner(self, st, s):
        acc = st["sum"]
        effective = s.step_size / M.root_denominator(acc, s.eps)
        return Preconditioner(acc, M.root_denominator(acc, 0.0), s.eps, effective)


def plan(group, counters, fresh) -> Plan:
    mode = decay_mode(group)
    scalars = dict(
        eps=group["eps"],
        step_size=M.adagrad_lr(group["lr"], counters["step"], group["lr_decay"]),
        **decay_scalars(group, mode),
    )
    return Plan(AdagradConfig(group["maximize"], mode), scalars)


def sparse_check(group) -> None:
    if group["weight_decay"] != 0:
        raise RuntimeError("weight_decay option is not compatible with sparse gradients")


def sparse_step(p, g, state, group, counters) -> None:
    """torch's sparse Adagrad: the sum and the param change only where the gradient has entries."""
    g = M.signed_gradient(g, group["maximize"]).coalesce()  # the update is non-linear: indices must be unique
    indices, values = g._indices(), g._values()

    def like_grad(v):
        return torch.sparse_coo_tensor(indices, v, g.shape)

    state["sum"].add_(like_grad(values.pow(2)))
    std = state["sum"].sparse_mask(g)._values().sqrt_().add_(group["eps"])
    p.add_(like_grad(values / std), alpha=-M.adagrad_lr(group["lr"], counters["step"], group["lr_decay"]))


ADAGRAD = Algorithm(
    "adagrad",
    options=O.positional(
        O.lr(1e-2),
        Option("lr_decay", 0.0, "Decay of the step size: lr / (1 + (t - 1) lr_decay).", V.check_nonnegative),
        O.weight_decay(doc="L2 weight decay lambda, added to the gradient."),
        Option(
            "initial_accumulator_value",
            0.0,
            "Starting value of the sum of squared gradients.",
            V.check_nonnegative,
        ),
        O.eps(1e-10),
        O.FOREACH,
    )
    + (O.MAXIMIZE, O.DIFFERENTIABLE, O.FUSED, O.BACKEND, O.COUNT_PRIMING, *O.SAFETY)
    + O.LOW_PRECISION,
    plan=plan,
    nonnegative_state=("sum",),
    group_checks=(V.check_fused_flags, V.check_low_precision),
    sparse_step=sparse_step,
    sparse_check=sparse_check,
    state_fill={"sum": "initial_accumulator_value"},
    eager_state=True,
)
