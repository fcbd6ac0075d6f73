"""An independent float64 NumPy transcription of the update equations.

Written from the papers and torch.optim's documented conventions, not from
adamlab's source, so that it can disagree with it:

* Adam (Kingma & Ba 2015, Alg. 1): eps outside the root, sqrt(vhat) + eps.
* AMSGrad (Reddi et al. 2018), torch's variant: the running max is taken over
  raw v, then divided by the current 1 - beta2^t.
* RAdam (Liu et al. 2020, Alg. 2) with torch's eps placement
  sqrt(1 - beta2^t) / (sqrt(v) + eps); rectified when rho_t > threshold.
* SGD with momentum, torch's form: the first buffer is g, undamped.
* RMSprop (Tieleman & Hinton 2012), centred (Graves 2013), with momentum.
* NAdam (Dozat 2016) in torch's documented form: mu_t = beta1 (1 - 0.5 0.96^(t psi)),
  the running product of mu kept in float32 as torch keeps it (in the step counter's dtype).
* Adamax (Kingma & Ba 2015, sec. 7.1): u_t = max(beta2 u, |g| + eps), theta -= lr/(1-beta1^t) m/u.
* Adagrad (Duchi et al. 2011), torch's form: lr_t = lr / (1 + (t-1) lr_decay), sum starts at
  initial_accumulator_value.
* Weight decay: L2 adds wd*theta to g (after maximize negates g); decoupled
  multiplies theta by 1 - lr*wd ("lr" scale) or by 1 - (lr/lr0)*wd
  ("schedule" scale, Loshchilov & Hutter 2019, Alg. 2), lr0 the initial lr.
"""

from __future__ import annotations

import numpy as np


class Reference:
    """Steps a list of float64 arrays in place; ``hyper`` is a param group's dict."""

    def __init__(self, algorithm: str, hyper: dict, initial_lr: float):
        self.update = UPDATES[algorithm]
        self.h = hyper
        self.initial_lr = initial_lr
        self.t = 0
        self.state: list[dict] = []

    def step(self, params: list[np.ndarray], grads: list[np.ndarray], lr: float) -> None:
        self.t += 1
        if not self.state:
            self.state = [{} for _ in params]
        for p, g, st in zip(params, grads, self.state):
            g = np.asarray(g, dtype=np.float64)
            g = -g if self.h.get("maximize", False) else g
            g = self.decay(p, g, lr)
            p[...] = self.update(p, g, st, self.h, lr, self.t)

    def decay(self, p: np.ndarray, g: np.ndarray, lr: float) -> np.ndarray:
        """L2 changes g; decoupled decay shrinks p in place. Returns g."""
        wd = self.h.get("weight_decay", 0.0)
        if wd == 0:
            return g
        if not self.h.get("decoupled_weight_decay", False):
            return g + wd * p
        if self.h.get("decay_scale", "lr") == "schedule":
            p *= 1.0 - (lr / self.initial_lr) * wd
        else:
            p *= 1.0 - lr * wd
        return g


def adam(p, g, st, h, lr, t):
    b1, b2 = h["betas"]
    m = st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    v = st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    if h.get("amsgrad", False):
        v = st["vmax"] = np.maximum(st.get("vmax", 0.0), v)
    if h.get("bias_correction", True):
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
    else:
        mhat, vhat = m, v
    return p - lr * mhat / (np.sqrt(vhat) + h["eps"])


def radam(p, g, st, h, lr, t):
    b1, b2 = h["betas"]
    m = st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    v = st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    mhat = m / (1 - b1**t)
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
    if rho > h.get("rect_threshold", 5.0):
        r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        adaptive = np.sqrt(1 - b2**t) / (np.sqrt(v) + h["eps"])
        return p - lr * r * mhat * adaptive
    return p - lr * mhat


def sgd(p, g, st, h, lr, t):
    mu = h.get("momentum", 0.0)
    if mu != 0:
        if "buf" not in st:
            st["buf"] = g.copy()
        else:
            st["buf"] = mu * st["buf"] + (1 - h.get("dampening", 0.0)) * g
        g = g + mu * st["buf"] if h.get("nesterov", False) else st["buf"]
    return p - lr * g


def rmsprop(p, g, st, h, lr, t):
    a = h["alpha"]
    v = st["v"] = a * st.get("v", 0.0) + (1 - a) * g * g
    if h.get("centered", False):
        gbar = st["gbar"] = a * st.get("gbar", 0.0) + (1 - a) * g
        v = v - gbar * gbar
    d = g / (np.sqrt(v) + h["eps"])
    mu = h.get("momentum", 0.0)
    if mu > 0:
        d = st["buf"] = mu * st.get("buf", 0.0) + d
    return p - lr * d


def nadam(p, g, st, h, lr, t):
    b1, b2 = h["betas"]
    psi = h["momentum_decay"]
    mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
    prod = st["mu_product"] = float(np.float32(st.get("mu_product", 1.0)) * np.float32(mu))
    m = st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    v = st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    denom = np.sqrt(v / (1 - b2**t)) + h["eps"]
    return p - lr * (1 - mu) / (1 - prod) * g / denom - lr * mu_next / (1 - prod * mu_next) * m / denom


def adamax(p, g, st, h, lr, t):
    b1, b2 = h["betas"]
    m = st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    u = st["u"] = np.maximum(b2 * st.get("u", 0.0), np.abs(g) + h["eps"])
    return p - lr / (1 - b1**t) * m / u


def adagrad(p, g, st, h, lr, t):
    total = st["sum"] = st.get("sum", h["initial_accumulator_value"]) + g * g
    return p - lr / (1 + (t - 1) * h["lr_decay"]) * g / (np.sqrt(total) + h["eps"])


UPDATES = {"adam": adam, "radam": radam, "sgd": sgd, "rmsprop": rmsprop, "nadam": nadam, "adamax": adamax,
           "adagrad": adagrad}
