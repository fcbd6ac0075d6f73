"""RMSprop (Tieleman & Hinton 2012) and its centred variant (Graves 2013), torch's form."""

from __future__ import annotations

from dataclasses import dataclass

from .. import math as M
from .. import validation as V
from . import options as O
from .base import Algorithm, Config, Option, Plan, Preconditioner, decay_mode, decay_scalars, decayed_gradient


@dataclass(frozen=True)
class RMSpropConfig(Config):
    momentum: bool = False
    centered: bool = False

    def state_names(self):
        return ("square_avg",) + (("momentum_buffer",) if self.momentum else ()) + (
            ("grad_avg",) if self.centered else ()
        )

    def rule(self, p, g, st, s):
        p, g = decayed_gradient(self, p, g, s)
        v = M.second_moment(st["square_avg"], g, s.alpha)
        new = {"square_avg": v}
        if self.centered:
            g_avg = new["grad_avg"] = M.first_moment(st["grad_avg"], g, s.alpha)
            denom = M.rmsprop_centered_denominator(v, g_avg, s.eps)
        else:
            denom = M.root_denominator(v, s.eps)
        if self.momentum:
            buf = new["momentum_buffer"] = M.momentum_buffer(st["momentum_buffer"], g / denom, s.momentum, 1.0)
            return M.sgd_step(p, buf, s.lr), new
        return M.preconditioned_step(p, g, denom, s.lr), new

    def preconditioner_state(self):
        return ("square_avg", "grad_avg") if self.centered else ("square_avg",)

    def preconditioner(self, st, s):
        v = st["square_avg"]
        if self.centered:
            root = M.rmsprop_centered_denominator(v, st["grad_avg"], 0.0)
            denom = M.rmsprop_centered_denominator(v, st["grad_avg"], s.eps)
        else:
            root, denom = M.root_denominator(v, 0.0), M.root_denominator(v, s.eps)
        return Preconditioner(v, root, s.eps, s.lr / denom)


def plan(group, counters, fresh) -> Plan:
    mode = decay_mode(group)
    cfg = RMSpropConfig(group["maximize"], mode, momentum=group["momentum"] > 0, centered=group["centered"])
    scalars = dict(
        lr=group["lr"], alpha=group["alpha"], eps=group["eps"], momentum=group["momentum"],
        **decay_scalars(group, mode),
    )
    return Plan(cfg, scalars)


RMSPROP = Algorithm(
    "rmsprop",
    options=O.positional(
        O.lr(1e-2),
        Option("alpha", 0.99, "Smoothing constant of the squared-gradient EMA.", V.check_unit_interval),
        O.eps(1e-8),
        O.weight_decay(doc="L2 weight decay lambda, added to the gradient."),
        *O.late(
            Option("momentum", 0.0, "Momentum factor on the normalised step.", V.check_nonnegative),
            Option("centered", False, "Divide by an estimate of the variance, sqrt(v - gbar^2) (Graves 2013).",
                   V.check_bool),
        ),
        O.CAPTURABLE,
        O.FOREACH,
        O.MAXIMIZE,
        O.DIFFERENTIABLE,
    )
    + O.beyond_torch(O.FUSED)
    + (O.BACKEND, O.COUNT_PRIMING, *O.SAFETY)
    + O.LOW_PRECISION,
    plan=plan,
    nonnegative_state=("square_avg",),
    group_checks=(V.check_fused_flags, V.check_low_precision),
)
