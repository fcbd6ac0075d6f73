"""SGD with (Nesterov) momentum, the baseline Adam is measured against (Robbins & Monro 1951; Polyak 1964)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch

from .. import math as M
from .. import validation as V
from . import options as O
from .base import Algorithm, Config, Option, Plan, decay_mode, decay_scalars, decayed_gradient


@dataclass(frozen=True)
class SGDConfig(Config):
    momentum: bool = False
    nesterov: bool = False

    def state_names(self):
        return ("momentum_buffer",) if self.momentum else ()

    def rule(self, p, g, st, s):
        p, g = decayed_gradient(self, p, g, s)
        new = {}
        if self.momentum:
            buf = new["momentum_buffer"] = M.momentum_buffer(st["momentum_buffer"], g, s.momentum_keep, s.grad_weight)
            g = M.nesterov_direction(g, buf, s.momentum) if self.nesterov else buf
        return M.sgd_step(p, g, s.lr), new


def plan(group, counters, fresh) -> Plan:
    """A fresh param has no momentum buffer yet: torch then sets it to g, undamped."""
    mode = decay_mode(group)
    mu = group["momentum"]
    scalars = dict(
        lr=group["lr"],
        momentum=mu,
        momentum_keep=0.0 if fresh else mu,
        grad_weight=1.0 if fresh else 1 - group["dampening"],
        **decay_scalars(group, mode),
    )
    return Plan(SGDConfig(group["maximize"], mode, momentum=mu != 0, nesterov=group["nesterov"]), scalars)


def sparse_step(p, g, state, group, counters) -> None:
    """torch's SGD on a sparse gradient: the rule itself in torch ops, with a sparse momentum buffer."""
    step = plan(group, counters, fresh=not state)
    if step.config.momentum and not state:  # starts empty; the fresh plan makes it exactly g
        empty = torch.empty((p.dim(), 0), dtype=torch.long, device=p.device)
        state["momentum_buffer"] = torch.sparse_coo_tensor(empty, torch.empty(0, dtype=p.dtype), p.shape)
    new_p, new_state = step.config.rule(p, g, state, SimpleNamespace(**step.scalars))
    state.update(new_state)
    p.copy_(new_p)


SGD = Algorithm(
    "sgd",
    options=O.positional(
        O.lr(1e-3),
        Option("momentum", 0.0, "Momentum factor mu (Polyak 1964).", V.check_nonnegative),
        Option("dampening", 0.0, "Dampening of the gradient in the momentum buffer: (1 - dampening) g.",
               V.check_nonnegative),
        O.weight_decay(),
        *O.late(Option("nesterov", False, "Nesterov momentum (Sutskever et al. 2013), torch's form.", V.check_bool)),
    )
    + (O.MAXIMIZE, O.FOREACH, O.DIFFERENTIABLE, O.FUSED)
    + O.beyond_torch(O.DECOUPLED_WEIGHT_DECAY)
    + (O.BACKEND, O.COUNT_PRIMING, *O.SAFETY, O.STATE_PRECISION),
    plan=plan,
    counters=(),
    counter_start={},
    group_checks=(V.check_nesterov, V.check_fused_flags, V.check_low_precision),
    sparse_step=sparse_step,
)
