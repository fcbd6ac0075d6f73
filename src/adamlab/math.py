"""The equations, one small function each, named after the math.

Every function here is written with arithmetic operators plus a few primitives
(``sqrt``, ``absolute``, ``maximum``, ``lerp``, ``add_scaled``, ``add_product``), so the same code runs on
three kinds of value:

* Python floats (the per-step scalars computed by each record's plan,
  :mod:`adamlab.algorithms`),
* torch tensors (the readable reference path, :mod:`adamlab.backends.reference`),
* symbolic values (the fused paths, :mod:`adamlab.backends.trace`, which traces
  these functions into a small program that each printer turns into a kernel).

The operation order copies torch.optim's, including where torch's CPU
kernels fuse a multiply-add (``lerp``, ``add(alpha=)``, ``addcmul``), so trajectories agree
with torch's to the last bits. This module is the only place an update
equation is written.

In the ``Args:`` sections, *array* means a tensor or an elementwise symbolic
value, and *scalar* a Python float, a Tensor (differentiable or capturable
steps, torch.amp's scale) or a per-step symbolic value.
"""

from __future__ import annotations

import math as _m

import torch


def sqrt(x):
    """Square root of a float, a tensor or a symbolic value.

    Args:
        x (scalar or array): the radicand.
    """
    return _m.sqrt(x) if isinstance(x, (int, float)) else x.sqrt()


def absolute(x):
    """|x| of a tensor or symbolic value.

    Args:
        x (array): the value, elementwise.
    """
    return x.abs()


def maximum(a, b):
    """Elementwise maximum of two tensors or symbolic values (NaN propagates).

    Args:
        a (array): the first operand.
        b (array): the second operand.
    """
    return a.maximum(b)


def where(condition, a, b):
    """a where the per-param flag holds, else b: a branch a device step decides per param, not on the host.

    Args:
        condition (scalar): the flag (a bool Tensor, or a traced per-step value).
        a (array): the value where it holds.
        b (array): the value elsewhere.
    """
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.where(torch.as_tensor(condition).to(torch.bool), a, b)
    return condition.select(a, b)


def lerp(a, b, w):
    """a + w (b - a), rounded as torch.lerp rounds it (a fused multiply-add).

    Args:
        a (array): the start.
        b (array): the end.
        w (scalar): the weight of ``b``.
    """
    return torch.lerp(a, b, w) if isinstance(a, torch.Tensor) else a.lerp(b, w)


def add_scaled(x, y, alpha):
    """x + alpha y, rounded as torch's ``x.add(y, alpha=alpha)`` (a fused multiply-add).

    Args:
        x (array): the addend.
        y (array): the scaled term.
        alpha (scalar): the factor of ``y``; a Tensor (differentiable steps) is applied unfused.
    """
    if isinstance(x, torch.Tensor):
        # a Tensor alpha (differentiable steps) has no fused form in torch
        return x + alpha * y if isinstance(alpha, torch.Tensor) else torch.add(x, y, alpha=alpha)
    return x.add_scaled(y, alpha)


def add_product(x, a, b, value):
    """x + value a b, rounded as torch.addcmul rounds it (a fused multiply-add).

    Args:
        x (array): the addend.
        a (array): the first factor.
        b (array): the second factor.
        value (scalar): the factor of ``a b``; a Tensor (differentiable steps) is applied unfused.
    """
    if isinstance(x, torch.Tensor):
        return x + value * a * b if isinstance(value, torch.Tensor) else torch.addcmul(x, a, b, value=value)
    return x.add_product(a, b, value)


# ---------------------------------------------------------------- gradients


def unscale(g, grad_scale):
    """g / S: undo the loss scale S of mixed-precision training (Micikevicius et al. 2018).

    Args:
        g (array): the gradient of the scaled loss.
        grad_scale (scalar): S, the loss scale (torch.amp.GradScaler's ``grad_scale``).
    """
    return g / grad_scale


def signed_gradient(g, maximize):
    """g for minimisation, -g for ``maximize=True`` (negation is exact).

    Args:
        g (array): the gradient.
        maximize (bool): negate ``g`` to ascend the objective.
    """
    return -g if maximize else g


def coupled_decay(g, p, weight_decay):
    """L2 regularisation folded into the gradient: g + lambda*theta (Hanson & Pratt 1989).

    Args:
        g (array): the gradient.
        p (array): the param theta.
        weight_decay (scalar): lambda.
    """
    return add_scaled(g, p, weight_decay)


def decoupled_decay(p, decay_factor):
    """Decoupled weight decay, theta * (1 - eta*lambda) (Loshchilov & Hutter 2019, Alg. 2).

    Args:
        p (array): the param theta.
        decay_factor (scalar): 1 - eta lambda, from :func:`lr_decay_factor` or :func:`schedule_decay_factor`.
    """
    return p * decay_factor


def lr_decay_factor(lr, weight_decay):
    """1 - gamma_t lambda: torch's AdamW, where decay follows the lr and its schedule.

    Args:
        lr (scalar): gamma_t, the group's current lr.
        weight_decay (scalar): lambda.
    """
    return 1 - lr * weight_decay


def schedule_multiplier(lr, base_lr):
    """eta_t = gamma_t / gamma_0; 0 at lr 0, whatever gamma_0 is (a step at lr 0 moves nothing).

    Args:
        lr (scalar): gamma_t, the group's current lr.
        base_lr (scalar): gamma_0, the lr the schedule multiplies.
    """
    if isinstance(lr, torch.Tensor):  # a Tensor lr, maybe on a GPU: decided there, never read on the host
        return torch.where(lr == 0, 0.0, lr / base_lr)
    return 0.0 if lr == 0 else lr / base_lr


def schedule_decay_factor(lr, base_lr, weight_decay):
    """1 - eta_t lambda with eta_t = gamma_t / gamma_0, the schedule multiplier (Loshchilov & Hutter 2019, Alg. 2).

    Args:
        lr (scalar): gamma_t, the group's current lr; 0 gives exactly 1.0.
        base_lr (scalar): gamma_0, the lr the schedule multiplies (the group's lr at construction).
        weight_decay (scalar): lambda, the paper's (not multiplied by the lr).
    """
    return 1 - schedule_multiplier(lr, base_lr) * weight_decay


# ---------------------------------------------------------------- moments


def first_moment(m, g, beta1):
    """m_t = beta1 m + (1 - beta1) g, as a lerp towards g (Kingma & Ba 2015, Alg. 1).

    Args:
        m (array): m_{t-1} (zero before the first step).
        g (array): the gradient g_t.
        beta1 (scalar): the decay rate, in [0, 1) (RMSprop's ``alpha`` for its centred average).
    """
    return lerp(m, g, 1 - beta1)


def second_moment(v, g, beta2):
    """v_t = beta2 v + (1 - beta2) g^2 (Kingma & Ba 2015, Alg. 1; Tieleman & Hinton 2012).

    Args:
        v (array): v_{t-1} (zero before the first step).
        g (array): the gradient g_t.
        beta2 (scalar): the decay rate, in [0, 1) (RMSprop's ``alpha``).
    """
    return add_product(v * beta2, g, g, 1 - beta2)


def amsgrad_max(v_max, v):
    """vhat_t = max(vhat_{t-1}, v_t), on raw v as torch does (Reddi et al. 2018, Alg. 2).

    Args:
        v_max (array): vhat_{t-1}, the running max.
        v (array): v_t.
    """
    return maximum(v_max, v)


def infinity_norm(u, g, beta2, eps):
    """u_t = max(beta2 u, |g| + eps), Adamax's exponentially weighted inf-norm (Kingma & Ba 2015, sec. 7.1).

    Args:
        u (array): u_{t-1} (zero before the first step).
        g (array): the gradient g_t.
        beta2 (scalar): the decay rate, in [0, 1).
        eps (scalar): added to |g| inside the max, where torch adds it.
    """
    return maximum(u * beta2, absolute(g) + eps)


def accumulated_square(acc, g):
    """G_t = G + g^2, Adagrad's sum of squared gradients (Duchi et al. 2011).

    Args:
        acc (array): G_{t-1} (``initial_accumulator_value`` before the first step).
        g (array): the gradient g_t.
    """
    return add_product(acc, g, g, 1.0)


def momentum_buffer(buf, g, momentum, grad_weight):
    """b_t = mu b + (1 - dampening) g (Polyak 1964; Sutskever et al. 2013).

    Args:
        buf (array): b_{t-1}.
        g (array): the gradient (RMSprop: g / denom).
        momentum (scalar): mu, the weight of ``buf`` (0 on SGD's first step, so that b_1 = g as in torch).
        grad_weight (scalar): 1 - dampening (1 on SGD's first step, and for RMSprop).
    """
    return add_scaled(buf * momentum, g, grad_weight)


def nesterov_direction(g, buf, momentum):
    """g + mu b_t, the Nesterov look-ahead in torch's form (Sutskever et al. 2013).

    Args:
        g (array): the gradient.
        buf (array): b_t, the momentum buffer after this step's update.
        momentum (scalar): mu.
    """
    return add_scaled(g, buf, momentum)


# ---------------------------------------------------------------- scalars


def bias_correction(beta, step):
    """1 - beta^t, the debiasing factor of an EMA started at 0 (Kingma & Ba 2015, sec. 3).

    Args:
        beta (float): the EMA's decay rate, in [0, 1).
        step (int or float): t, counting the current step (1 on the first).
    """
    return 1 - beta**step


def radam_rho_inf(beta2):
    """rho_inf = 2/(1 - beta2) - 1, the SMA length limit (Liu et al. 2020, eq. 5).

    Args:
        beta2 (float): the second moment's decay rate, in (0, 1).
    """
    return 2 / (1 - beta2) - 1


def radam_rho(beta2, step):
    """rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t) (Liu et al. 2020, Alg. 2).

    Args:
        beta2 (float): the second moment's decay rate, in (0, 1).
        step (int or float): t >= 1, counting the current step.
    """
    return radam_rho_inf(beta2) - 2 * step * beta2**step / bias_correction(beta2, step)


def radam_rectification(beta2, step):
    """r_t = sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t)) (Liu et al. 2020, eq. 7).

    Args:
        beta2 (float): the second moment's decay rate, in (0, 1).
        step (int or float): t >= 1; meaningful only where rho_t > 4 (RAdam asks past ``rect_threshold``).
    """
    rho_inf, rho_t = radam_rho_inf(beta2), radam_rho(beta2, step)
    return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


def nadam_momentum(beta1, step, momentum_decay):
    """mu_t = beta1 (1 - 0.5 * 0.96^(t psi)), the momentum schedule of NAdam (Dozat 2016).

    Args:
        beta1 (float): the first moment's decay rate.
        step (int or float): t (the plan also asks for t + 1).
        momentum_decay (float): psi (torch's default 4e-3).
    """
    return beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))


def adagrad_lr(lr, step, lr_decay):
    """lr / (1 + (t - 1) lr_decay), Adagrad's decayed step size (torch's form).

    Args:
        lr (scalar): the base lr.
        step (int or float): t >= 1, counting the current step.
        lr_decay (float): the decay of the step size per step, >= 0.
    """
    return lr / (1 + (step - 1) * lr_decay)


# ---------------------------------------------------------------- updates


def adam_denominator(v, bias_correction2_sqrt, eps):
    """sqrt(vhat) + eps, with eps outside the root as torch and the paper place it.

    Args:
        v (array): v_t (vhat_t with amsgrad).
        bias_correction2_sqrt (scalar): sqrt(1 - beta2^t) (1 without bias correction).
        eps (scalar): added after the root.
    """
    return sqrt(v) / bias_correction2_sqrt + eps


def preconditioned_step(p, m, denom, step_size):
    """theta - alpha m / denom: Adam's step with alpha = lr/(1 - beta1^t) (Kingma & Ba 2015, Alg. 1).

    Args:
        p (array): the param theta.
        m (array): the direction: m_t (Adam, Adamax), g (RMSprop, Adagrad).
        denom (array): the preconditioner, e.g. from :func:`adam_denominator`.
        step_size (scalar): lr / (1 - beta1^t) for Adam and Adamax, lr for RMSprop, :func:`adagrad_lr` for Adagrad.
    """
    return p - step_size * m / denom


def add_quotient(x, a, b, value):
    """x + value a / b, rounded as torch.addcdiv rounds it: ((value a) / b), then the sum.

    Args:
        x (array): the addend.
        a (array): the numerator.
        b (array): the denominator.
        value (scalar): the factor of ``a``.
    """
    return x + value * a / b


def nadam_denominator(v, bias_correction2, eps):
    """sqrt(v / (1 - beta2^t)) + eps, NAdam's order of operations (Dozat 2016).

    Args:
        v (array): v_t.
        bias_correction2 (scalar): 1 - beta2^t.
        eps (scalar): added after the root.
    """
    return sqrt(v / bias_correction2) + eps


def nadam_step(p, g, m, denom, grad_coeff, momentum_coeff):
    """theta + c_g g/denom + c_m m/denom: the Nesterov-style blend of g and m (Dozat 2016, Alg. 2).

    Args:
        p (array): the param theta.
        g (array): the gradient g_t.
        m (array): m_t.
        denom (array): from :func:`nadam_denominator`.
        grad_coeff (scalar): c_g = -lr (1 - mu_t) / (1 - prod_{i<=t} mu_i).
        momentum_coeff (scalar): c_m = -lr mu_{t+1} / (1 - prod_{i<=t+1} mu_i).
    """
    return add_quotient(add_quotient(p, g, denom, grad_coeff), m, denom, momentum_coeff)


def radam_adaptive_step(p, m, v, lr, bias_correction1, bias_correction2_sqrt, eps, rect):
    """theta - lr r_t mhat sqrt(1-beta2^t)/(sqrt(v)+eps), torch's eps placement (Liu et al. 2020, Alg. 2).

    Args:
        p (array): the param theta.
        m (array): m_t.
        v (array): v_t.
        lr (scalar): the group's lr.
        bias_correction1 (scalar): 1 - beta1^t.
        bias_correction2_sqrt (scalar): sqrt(1 - beta2^t).
        eps (scalar): added to sqrt(v).
        rect (scalar): r_t, from :func:`radam_rectification`.
    """
    return p - (m / bias_correction1) * lr * (bias_correction2_sqrt / (sqrt(v) + eps)) * rect


def radam_momentum_step(p, m, lr, bias_correction1):
    """theta - lr mhat: RAdam's un-rectified momentum step while rho_t is small (Liu et al. 2020).

    Args:
        p (array): the param theta.
        m (array): m_t.
        lr (scalar): the group's lr.
        bias_correction1 (scalar): 1 - beta1^t.
    """
    return p - (m / bias_correction1) * lr


def root_denominator(v, eps):
    """sqrt(v) + eps: RMSprop's (Tieleman & Hinton 2012) and Adagrad's (Duchi et al. 2011) denominator.

    Args:
        v (array): RMSprop's v_t, Adagrad's G_t (or RAdam's v_t).
        eps (scalar): added after the root.
    """
    return sqrt(v) + eps


def rmsprop_centered_denominator(v, g_avg, eps):
    """sqrt(v - gbar^2) + eps, the centred variant (Graves 2013, eq. 38).

    Args:
        v (array): v_t, the average of g^2.
        g_avg (array): gbar_t, the average of g.
        eps (scalar): added after the root.
    """
    return sqrt(add_product(v, g_avg, g_avg, -1.0)) + eps


def sgd_step(p, direction, lr):
    """theta - lr d (Robbins & Monro 1951).

    Args:
        p (array): the param theta.
        direction (array): d: g, the momentum buffer or :func:`nesterov_direction`.
        lr (scalar): the group's lr.
    """
    return add_scaled(p, direction, -lr)
