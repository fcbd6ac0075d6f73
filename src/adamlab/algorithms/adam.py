"""Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), AMSGrad as a flag (Reddi et al. 2018)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import math as M
from ..validation import check_fused_flags, check_low_precision, check_tensor_hyperparameters
from . import options as O
from .base import Algorithm, Config, Plan, Preconditioner, decay_mode, decay_scalars, decayed_gradient


def decayed_moments(cfg: Config, p, g, st, s):
    """Decay, then both EMAs of Adam (Kingma & Ba 2015, Alg. 1): (p, g, m, v), shared by its variants."""
    p, g = decayed_gradient(cfg, p, g, s)
    return p, g, M.first_moment(st["exp_avg"], g, s.beta1), M.second_moment(st["exp_avg_sq"], g, s.beta2)


@dataclass(frozen=True)
class AdamConfig(Config):
    amsgrad: bool = False

    def state_names(self):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def rule(self, p, g, st, s):
        p, _, m, v = decayed_moments(self, p, g, st, s)
        new = {"exp_avg": m, "exp_avg_sq": v}
        if self.amsgrad:
            v = new["max_exp_avg_sq"] = M.amsgrad_max(st["max_exp_avg_sq"], v)
        p = M.preconditioned_step(p, m, M.adam_denominator(v, s.bias_correction2_sqrt, s.eps), s.step_size)
        return p, new

    def preconditioner_state(self):
        return ("exp_avg_sq", "max_exp_avg_sq") if self.amsgrad else ("exp_avg_sq",)

    def preconditioner(self, st, s):
        used = st["max_exp_avg_sq"] if self.amsgrad else st["exp_avg_sq"]
        effective = s.step_size / M.adam_denominator(used, s.bias_correction2_sqrt, s.eps)
        root = M.adam_denominator(used, s.bias_correction2_sqrt, 0.0)
        return Preconditioner(st["exp_avg_sq"], root, s.eps, effective, st.get("max_exp_avg_sq"))


def plan(group, counters, fresh) -> Plan:
    step = counters["step"]
    beta1, beta2 = group["betas"]
    if group["bias_correction"]:
        bc1, bc2 = M.bias_correction(beta1, step), M.bias_correction(beta2, step)
    else:
        bc1 = bc2 = 1.0
    mode = decay_mode(group)
    scalars = dict(
        beta1=beta1,
        beta2=beta2,
        eps=group["eps"],
        step_size=group["lr"] / bc1,
        bias_correction2_sqrt=bc2**0.5,
        **decay_scalars(group, mode),
    )
    return Plan(AdamConfig(group["maximize"], mode, amsgrad=group["amsgrad"]), scalars)


ADAM = Algorithm(
    "adam",
    options=O.positional(O.lr(1e-3), O.PAIRED_BETAS, O.eps(1e-8), O.weight_decay(), O.AMSGRAD)
    + (
        O.FOREACH,
        O.MAXIMIZE,
        O.CAPTURABLE,
        O.DIFFERENTIABLE,
        O.FUSED,
        O.DECOUPLED_WEIGHT_DECAY,
        O.BIAS_CORRECTION,
        O.DECAY_SCALE,
        O.BACKEND,
        O.COUNT_PRIMING,
        *O.SAFETY,
    )
    + O.LOW_PRECISION,
    plan=plan,
    nonnegative_state=("exp_avg_sq", "max_exp_avg_sq"),
    group_checks=(check_fused_flags, check_tensor_hyperparameters, check_low_precision),
)
