"""RAdam: Adam with the variance of its adaptive lr rectified (Liu et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import math as M
from .. import validation as V
from . import options as O
from .adam import decayed_moments
from .base import Algorithm, Config, Option, Plan, Preconditioner, decay_mode, decay_scalars


@dataclass(frozen=True)
class RAdamConfig(Config):
    #: this step uses the rectified adaptive update (rho_t > threshold); None: each param's plan scalar
    #: ``rectified`` decides, for a device step whose step counts are never read on the host
    rectified: bool | None = False

    def state_names(self):
        return ("exp_avg", "exp_avg_sq")

    def rule(self, p, g, st, s):
        p, _, m, v = decayed_moments(self, p, g, st, s)
        adaptive = self.rectified is not False
        momentum = self.rectified is not True
        if adaptive:
            new_p = M.radam_adaptive_step(p, m, v, s.lr, s.bias_correction1, s.bias_correction2_sqrt, s.eps, s.rect)
        if momentum:
            plain = M.radam_momentum_step(p, m, s.lr, s.bias_correction1)
            new_p = M.where(s.rectified, new_p, plain) if adaptive else plain
        return new_p, {"exp_avg": m, "exp_avg_sq": v}

    def preconditioner_state(self):
        return ("exp_avg_sq",)

    def preconditioner(self, st, s):
        v = st["exp_avg_sq"]
        root = M.root_denominator(v, 0.0)  # torch's RAdam adds eps to sqrt(v), not to sqrt(vhat)
        if self.rectified:
            effective = s.lr * s.rect * s.bias_correction2_sqrt / (M.root_denominator(v, s.eps) * s.bias_correction1)
        else:  # the momentum step: lr / (1 - beta1^t) on every coordinate
            effective = torch.full_like(v, s.lr / s.bias_correction1)
        return Preconditioner(v, root, s.eps, effective)


def plan(group, counters, fresh) -> Plan:
    step = counters["step"]
    beta1, beta2 = group["betas"]
    above = M.radam_rho(beta2, step) > group["rect_threshold"]
    per_param = isinstance(above, torch.Tensor)  # a device step: counters are tensors, one per param
    rectified = None if per_param else bool(above)
    mode = decay_mode(group)
    scalars = dict(
        beta1=beta1,
        beta2=beta2,
        eps=group["eps"],
        lr=group["lr"],
        bias_correction1=M.bias_correction(beta1, step),
        bias_correction2_sqrt=M.bias_correction(beta2, step) ** 0.5,
        **decay_scalars(group, mode),
    )
    if per_param:  # r_t is NaN where rho_t <= 4; those params take the momentum step
        scalars["rectified"] = above
        scalars["rect"] = torch.where(above, M.radam_rectification(beta2, step), 0.0)
    elif rectified:
        scalars["rect"] = M.radam_rectification(beta2, step)
    return Plan(RAdamConfig(group["maximize"], mode, rectified=rectified), scalars)


RECT_THRESHOLD = Option(
    "rect_threshold",
    5.0,
    "The rho_t above which the rectified adaptive step is used: torch and the official code use 5 "
    "(strict >); the paper writes 4 (beyond torch).",
    V.check_real,
    beyond_torch=True,
)

RADAM = Algorithm(
    "radam",
    options=O.positional(O.lr(1e-3), O.BETAS, O.eps(1e-8), O.weight_decay(), O.DECOUPLED_WEIGHT_DECAY)
    + (O.FOREACH, O.MAXIMIZE, O.CAPTURABLE, O.DIFFERENTIABLE)
    + O.beyond_torch(O.FUSED)
    + (RECT_THRESHOLD, O.DECAY_SCALE, O.BACKEND, O.COUNT_PRIMING, *O.SAFETY)
    + O.LOW_PRECISION,
    plan=plan,
    nonnegative_state=("exp_avg_sq",),
    group_checks=(V.check_fused_flags, V.check_low_precision),
)
