"""How each optimizer's state reads as a preconditioner, for the monitor.

A view takes a sample of the state after a step (fp32 tensors keyed by
torch's state names), the plan's scalars of that step and its config, and
returns a :class:`Preconditioner`. Denominators come from
:mod:`adamlab.math` (with ``eps = 0`` for the root alone) and every scalar
from the record's plan, so nothing here restates an update. SGD has no
preconditioner, so it has no view.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import math as M


@dataclass
class Preconditioner:
    #: the raw second-moment state (exp_avg_sq, sum, square_avg, exp_inf): where it is exactly 0
    v: torch.Tensor
    #: the term eps is added to in the denominator (sqrt(vhat) for Adam); None where there is none (Adamax)
    root: torch.Tensor | None
    eps: float | None
    #: the factor the step multiplies its direction by (the stored first moment, else the gradient):
    #: lr / (1 - beta1^t) / (sqrt(vhat) + eps) for Adam, so that the update is effective * exp_avg
    effective: torch.Tensor
    #: AMSGrad's running max of v
    vmax: torch.Tensor | None = None


def _adam(st, s, cfg) -> Preconditioner:
    v = st["exp_avg_sq"]
    used = st["max_exp_avg_sq"] if cfg.amsgrad else v
    root = M.adam_denominator(used, s.bias_correction2_sqrt, 0.0)
    effective = s.step_size / M.adam_denominator(used, s.bias_correction2_sqrt, s.eps)
    return Preconditioner(v, root, s.eps, effective, st["max_exp_avg_sq"] if cfg.amsgrad else None)


def _radam(st, s, cfg) -> Preconditioner:
    v = st["exp_avg_sq"]
    root = M.root_denominator(v, 0.0)  # torch's RAdam adds eps to sqrt(v), not to sqrt(vhat)
    if cfg.rectified:
        effective = s.lr * s.rect * s.bias_correction2_sqrt / (M.root_denominator(v, s.eps) * s.bias_correction1)
    else:  # the momentum step: lr / (1 - beta1^t) on every coordinate
        effective = torch.ones_like(v) * (s.lr / s.bias_correction1)
    return Preconditioner(v, root, s.eps, effective)


def _nadam(st, s, cfg) -> Preconditioner:
    v = st["exp_avg_sq"]
    root = M.nadam_denominator(v, s.bias_correction2, 0.0)
    # the factor on m; NAdam's step adds a second term, grad_coeff * g / denom
    return Preconditioner(v, root, s.eps, -s.momentum_coeff / M.nadam_denominator(v, s.bias_correction2, s.eps))


def _adamax(st, s, cfg) -> Preconditioner:
    u = st["exp_inf"]  # eps enters inside the max, as |g| + eps
    return Preconditioner(u, None, None, s.step_size / u)


def _adagrad(st, s, cfg) -> Preconditioner:
    acc = st["sum"]
    effective = s.step_size / M.root_denominator(acc, s.eps)
    return Preconditioner(acc, M.root_denominator(acc, 0.0), s.eps, effective)


def _rmsprop(st, s, cfg) -> Preconditioner:
    v = st["square_avg"]
    if cfg.centered:
        root = M.rmsprop_centered_denominator(v, st["grad_avg"], 0.0)
        denom = M.rmsprop_centered_denominator(v, st["grad_avg"], s.eps)
    else:
        root, denom = M.root_denominator(v, 0.0), M.root_denominator(v, s.eps)
    return Preconditioner(v, root, s.eps, s.lr / denom)


@dataclass(frozen=True)
class View:
    read: object  # (state sample, scalars, config) -> Preconditioner
    names: object  # config -> the state names ``read`` needs
    eps_added: bool = True  # eps is added to a root (not Adamax)


VIEWS = {
    "adam": View(_adam, lambda cfg: ("exp_avg_sq", "max_exp_avg_sq") if cfg.amsgrad else ("exp_avg_sq",)),
    "radam": View(_radam, lambda cfg: ("exp_avg_sq",)),
    "nadam": View(_nadam, lambda cfg: ("exp_avg_sq",)),
    "adamax": View(_adamax, lambda cfg: ("exp_inf",), eps_added=False),
    "adagrad": View(_adagrad, lambda cfg: ("sum",)),
    "rmsprop": View(_rmsprop, lambda cfg: ("square_avg", "grad_avg") if cfg.centered else ("square_avg",)),
}


def view_of(optimizer) -> View | None:
    """The view of an adamlab optimizer with a preconditioner; None for SGD and for torch.optim's classes."""
    record = getattr(optimizer, "algorithm", None)
    return VIEWS.get(getattr(record, "name", None))
