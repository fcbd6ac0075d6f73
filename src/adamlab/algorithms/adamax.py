"""Adamax: Adam with the infinity norm in place of the second moment (Kingma & Ba 2015, sec. 7.1)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import math as M
from .. import validation as V
from . import options as O
from .base import Algorithm, Config, Plan, Preconditioner, decay_mode, decay_scalars, decayed_gradient


@dataclass(frozen=True)
class AdamaxConfig(Config):
    def state_names(self):
        return ("exp_avg", "exp_inf")

    def rule(self, p, g, st, s):
        p, g = decayed_gradient(self, p, g, s)
        m = M.first_moment(st["exp_avg"], g, s.beta1)
        u = M.infinity_norm(st["exp_inf"], g, s.beta2, s.eps)
        return M.preconditioned_step(p, m, u, s.step_size), {"exp_avg": m, "exp_inf": u}

    def preconditioner_state(self):
        return ("exp_inf",)

    def preconditioner(self, st, s):
        u = st["exp_inf"]  # eps enters inside the max, as |g| + eps: there is no root it is added to
        return Preconditioner(u, None, None, s.step_size / u)

    def eps_added_to_root(self):
        return False


def plan(group, counters, fresh) -> Plan:
    beta1, beta2 = group["betas"]
    mode = decay_mode(group)
    scalars = dict(
        beta1=beta1,
        beta2=beta2,
        eps=group["eps"],
        step_size=group["lr"] / M.bias_correction(beta1, counters["step"]),
        **decay_scalars(group, mode),
    )
    return Plan(AdamaxConfig(group["maximize"], mode), scalars)


ADAMAX = Algorithm(
    "adamax",
    options=O.positional(
        O.lr(2e-3), O.BETAS, O.eps(1e-8), O.weight_decay(doc="L2 weight decay lambda, added to the gradient."),
        O.FOREACH,
    )
    + (O.MAXIMIZE, O.DIFFERENTIABLE, O.CAPTURABLE)
    + O.beyond_torch(O.FUSED)
    + (O.BACKEND, O.COUNT_PRIMING, *O.SAFETY)
    + O.LOW_PRECISION,
    plan=plan,
    nonnegative_state=("exp_inf",),
    group_checks=(V.check_fused_flags, V.check_low_precision),
)
