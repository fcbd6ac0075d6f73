"""Each optimizer as a short composition of :mod:`adamlab.math`.

A *rule* is the elementwise update of one algorithm. It takes the parameter,
the gradient, the state tensors and a namespace of per-step scalars, and
returns the new parameter and state. It never mutates: the reference kernel
runs it on tensors and copies the results back, the fused kernel traces it
into C. A *plan* turns a group's hyperparameters and step count into those
scalars, so no backend does any algebra of its own.

:class:`Config` holds what changes the shape of the computation (which state
exists, which branches run). Everything else is a scalar, so a schedule that
changes lr or betas every step never changes the config.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import math as M

DECAY_MODES = ("none", "l2", "decoupled")


@dataclass(frozen=True)
class Config:
    """The static shape of one update: it selects the code, never the numbers."""

    algorithm: str  # "adam", "radam", "sgd" or "rmsprop"
    maximize: bool = False
    decay: str = "none"  # one of DECAY_MODES
    amsgrad: bool = False
    momentum: bool = False  # sgd and rmsprop keep a momentum_buffer
    nesterov: bool = False
    centered: bool = False
    rectified: bool = False  # radam: this step uses the rectified adaptive update

    @property
    def state_names(self) -> tuple[str, ...]:
        """torch's state keys for this config, in a fixed order."""
        return STATE_NAMES[self.algorithm](self)


STATE_NAMES = {
    "adam": lambda c: ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if c.amsgrad else ()),
    "radam": lambda c: ("exp_avg", "exp_avg_sq"),
    "sgd": lambda c: ("momentum_buffer",) if c.momentum else (),
    "rmsprop": lambda c: ("square_avg",)
    + (("momentum_buffer",) if c.momentum else ())
    + (("grad_avg",) if c.centered else ()),
}


def decayed_gradient(cfg: Config, p, g, s):
    """Apply maximize and the decay mode; returns (p, g) as the update sees them."""
    g = M.signed_gradient(g, cfg.maximize)
    if cfg.decay == "l2":
        g = M.coupled_decay(g, p, s.weight_decay)
    elif cfg.decay == "decoupled":
        p = M.decoupled_decay(p, s.decay_factor)
    return p, g


# ---------------------------------------------------------------- rules


def adam_rule(cfg: Config, p, g, st: dict, s):
    p, g = decayed_gradient(cfg, p, g, s)
    m = M.first_moment(st["exp_avg"], g, s.beta1)
    v = M.second_moment(st["exp_avg_sq"], g, s.beta2)
    new = {"exp_avg": m, "exp_avg_sq": v}
    if cfg.amsgrad:
        v = new["max_exp_avg_sq"] = M.amsgrad_max(st["max_exp_avg_sq"], v)
    p = M.preconditioned_step(p, m, M.adam_denominator(v, s.bias_correction2_sqrt, s.eps), s.step_size)
    return p, new


def radam_rule(cfg: Config, p, g, st: dict, s):
    p, g = decayed_gradient(cfg, p, g, s)
    m = M.first_moment(st["exp_avg"], g, s.beta1)
    v = M.second_moment(st["exp_avg_sq"], g, s.beta2)
    if cfg.rectified:
        p = M.radam_adaptive_step(
            p, m, v, s.lr, s.bias_correction1, s.bias_correction2_sqrt, s.eps, s.rect
        )
    else:
        p = M.radam_momentum_step(p, m, s.lr, s.bias_correction1)
    return p, {"exp_avg": m, "exp_avg_sq": v}


def sgd_rule(cfg: Config, p, g, st: dict, s):
    p, g = decayed_gradient(cfg, p, g, s)
    new = {}
    if cfg.momentum:
        buf = new["momentum_buffer"] = M.momentum_buffer(
            st["momentum_buffer"], g, s.momentum_keep, s.grad_weight
        )
        g = M.nesterov_direction(g, buf, s.momentum) if cfg.nesterov else buf
    return M.sgd_step(p, g, s.lr), new


def rmsprop_rule(cfg: Config, p, g, st: dict, s):
    p, g = decayed_gradient(cfg, p, g, s)
    v = M.second_moment(st["square_avg"], g, s.alpha)
    new = {"square_avg": v}
    if cfg.centered:
        g_avg = new["grad_avg"] = M.first_moment(st["grad_avg"], g, s.alpha)
        denom = M.rmsprop_centered_denominator(v, g_avg, s.eps)
    else:
        denom = M.rmsprop_denominator(v, s.eps)
    if cfg.momentum:
        buf = new["momentum_buffer"] = M.momentum_buffer(st["momentum_buffer"], g / denom, s.momentum, 1.0)
        return M.sgd_step(p, buf, s.lr), new
    return M.preconditioned_step(p, g, denom, s.lr), new


RULES = {"adam": adam_rule, "radam": radam_rule, "sgd": sgd_rule, "rmsprop": rmsprop_rule}
