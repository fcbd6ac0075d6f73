"""The equations, one small function each, named after the math.

Every function here is written with arithmetic operators plus ``sqrt`` and
``maximum`` only, so the same code runs on three kinds of value:

* Python floats (the per-step scalars in :mod:`adamlab.plan`),
* torch tensors (the readable reference path, :mod:`adamlab.kernels.reference`),
* symbolic values (the fused path, :mod:`adamlab.kernels.codegen`, which traces
  these functions into one C loop).

The operation order copies torch.optim's, so trajectories agree with it to the
last few bits. This module is the only place an update equation is written.
"""

from __future__ import annotations

import math as _m


def sqrt(x):
    """Square root of a float, a tensor or a symbolic value."""
    return _m.sqrt(x) if isinstance(x, (int, float)) else x.sqrt()


def maximum(a, b):
    """Elementwise maximum of two tensors or symbolic values."""
    return a.maximum(b)


# ---------------------------------------------------------------- gradients


def signed_gradient(g, maximize):
    """g for minimisation, -g for ``maximize=True`` (negation is exact)."""
    return -g if maximize else g


def coupled_decay(g, p, weight_decay):
    """L2 regularisation folded into the gradient: g + lambda*theta (Hanson & Pratt 1989)."""
    return g + weight_decay * p


def decoupled_decay(p, decay_factor):
    """Decoupled weight decay, theta * (1 - eta*lambda) (Loshchilov & Hutter 2019, Alg. 2)."""
    return p * decay_factor


def lr_decay_factor(lr, weight_decay):
    """1 - gamma_t lambda: torch's AdamW, where decay follows the lr and its schedule."""
    return 1 - lr * weight_decay


def schedule_decay_factor(lr, initial_lr, weight_decay):
    """1 - eta_t lambda with eta_t = gamma_t / gamma_0, the schedule multiplier (Loshchilov & Hutter 2019, Alg. 2)."""
    return 1 - (lr / initial_lr) * weight_decay


# ---------------------------------------------------------------- moments


def first_moment(m, g, beta1):
    """m_t = beta1 m + (1 - beta1) g, written as torch's lerp (Kingma & Ba 2015, Alg. 1)."""
    return m + (1 - beta1) * (g - m)


def second_moment(v, g, beta2):
    """v_t = beta2 v + (1 - beta2) g^2 (Kingma & Ba 2015, Alg. 1; Tieleman & Hinton 2012)."""
    return v * beta2 + (1 - beta2) * g * g


def amsgrad_max(v_max, v):
    """vhat_t = max(vhat_{t-1}, v_t), on raw v as torch does (Reddi et al. 2018, Alg. 2)."""
    return maximum(v_max, v)


def momentum_buffer(buf, g, momentum, grad_weight):
    """b_t = mu b + (1 - dampening) g (Polyak 1964; Sutskever et al. 2013)."""
    return buf * momentum + grad_weight * g


def nesterov_direction(g, buf, momentum):
    """g + mu b_t, the Nesterov look-ahead in torch's form (Sutskever et al. 2013)."""
    return g + momentum * buf


# ---------------------------------------------------------------- scalars


def bias_correction(beta, step):
    """1 - beta^t, the debiasing factor of an EMA started at 0 (Kingma & Ba 2015, sec. 3)."""
    return 1 - beta**step


def radam_rho_inf(beta2):
    """rho_inf = 2/(1 - beta2) - 1, the SMA length limit (Liu et al. 2020, eq. 5)."""
    return 2 / (1 - beta2) - 1


def radam_rho(beta2, step):
    """rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t) (Liu et al. 2020, Alg. 2)."""
    return radam_rho_inf(beta2) - 2 * step * beta2**step / bias_correction(beta2, step)


def radam_rectification(beta2, step):
    """r_t = sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t)) (Liu et al. 2020, eq. 7)."""
    rho_inf, rho_t = radam_rho_inf(beta2), radam_rho(beta2, step)
    return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


# ---------------------------------------------------------------- updates


def adam_denominator(v, bias_correction2_sqrt, eps):
    """sqrt(vhat) + eps, with eps outside the root as torch and the paper place it."""
    return sqrt(v) / bias_correction2_sqrt + eps


def adam_step(p, m, denom, step_size):
    """theta - alpha_t m / denom, with alpha_t = lr / (1 - beta1^t) (Kingma & Ba 2015, Alg. 1)."""
    return p - step_size * (m / denom)


def radam_adaptive_step(p, m, v, lr, bias_correction1, bias_correction2_sqrt, eps, rect):
    """theta - lr r_t mhat sqrt(1-beta2^t)/(sqrt(v)+eps), torch's eps placement (Liu et al. 2020, Alg. 2)."""
    return p - (m / bias_correction1) * lr * (bias_correction2_sqrt / (sqrt(v) + eps)) * rect


def radam_momentum_step(p, m, lr, bias_correction1):
    """theta - lr mhat: RAdam's un-rectified momentum step while rho_t is small (Liu et al. 2020)."""
    return p - (m / bias_correction1) * lr


def rmsprop_denominator(v, eps):
    """sqrt(v) + eps (Tieleman & Hinton 2012)."""
    return sqrt(v) + eps


def rmsprop_centered_denominator(v, g_avg, eps):
    """sqrt(v - gbar^2) + eps, the centred variant (Graves 2013, eq. 38)."""
    return sqrt(v + -1.0 * g_avg * g_avg) + eps


def sgd_step(p, direction, lr):
    """theta - lr d (Robbins & Monro 1951)."""
    return p - lr * direction
