"""NAdam: Adam with Nesterov momentum and a momentum schedule (Dozat 2016), torch's form."""

from __future__ import annotations

from dataclasses import dataclass

from .. import math as M
from .. import validation as V
from . import options as O
from .adam import decayed_moments
from .base import Algorithm, Config, Option, Plan, Preconditioner, decay_mode, decay_scalars


@dataclass(frozen=True)
class NAdamConfig(Config):
    def state_names(self):
        return ("exp_avg", "exp_avg_sq")

    def rule(self, p, g, st, s):
        p, g, m, v = decayed_moments(self, p, g, st, s)
        denom = M.nadam_denominator(v, s.bias_correction2, s.eps)
        p = M.nadam_step(p, g, m, denom, s.grad_coeff, s.momentum_coeff)
        return p, {"exp_avg": m, "exp_avg_sq": v}

    def preconditioner_state(self):
        return ("exp_avg_sq",)

    def preconditioner(self, st, s):
        v = st["exp_avg_sq"]  # the factor on m; NAdam's step adds grad_coeff * g / denom beside it
        effective = -s.momentum_coeff / M.nadam_denominator(v, s.bias_correction2, s.eps)
        return Preconditioner(v, M.nadam_denominator(v, s.bias_correction2, 0.0), s.eps, effective)


def plan(group, counters, fresh) -> Plan:
    step, lr, psi = counters["step"], group["lr"], group["momentum_decay"]
    beta1, beta2 = group["betas"]
    mu, mu_next = M.nadam_momentum(beta1, step, psi), M.nadam_momentum(beta1, step + 1, psi)
    # torch keeps the running product of mu in the step counters' dtype and multiplies there
    mu_product = counters.round(counters["mu_product"] * counters.round(mu))
    mode = decay_mode(group)
    scalars = dict(
        beta1=beta1,
        beta2=beta2,
        eps=group["eps"],
        bias_correction2=M.bias_correction(beta2, step),
        grad_coeff=-lr * (1.0 - mu) / (1.0 - mu_product),
        momentum_coeff=(-lr * mu_next) / (1.0 - mu_product * mu_next),
        **decay_scalars(group, mode),
    )
    return Plan(NAdamConfig(group["maximize"], mode), scalars, counters={"mu_product": mu_product})


MOMENTUM_DECAY = Option(
    "momentum_decay", 4e-3, "psi of the momentum schedule mu_t = beta1 (1 - 0.5 * 0.96^(t psi)).", V.check_nonnegative
)

NADAM = Algorithm(
    "nadam",
    options=O.positional(
        O.lr(2e-3), O.BETAS, O.eps(1e-8), O.weight_decay(), MOMENTUM_DECAY, O.DECOUPLED_WEIGHT_DECAY
    )
    + (O.FOREACH, O.MAXIMIZE, O.CAPTURABLE, O.DIFFERENTIABLE)
    + O.beyond_torch(O.FUSED)
    + (O.DECAY_SCALE, O.BACKEND, O.COUNT_PRIMING, *O.SAFETY)
    + O.LOW_PRECISION,
    plan=plan,
    nonnegative_state=("exp_avg_sq",),
    counters=("step", "mu_product"),
    counter_start={"step": 0.0, "mu_product": 1.0},
    group_checks=(V.check_fused_flags, V.check_low_precision),
)
