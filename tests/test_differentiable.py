"""differentiable=True: the step is a differentiable function of params, state and Tensor hyperparameters.

Checked with torch.autograd.gradcheck (finite differences are the oracle),
as torch checks its own optimizers.
"""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

import adamlab


def rand(*shape, grad=True):
    return torch.rand(*shape, dtype=torch.float64, requires_grad=grad)


def one_step(p, grad, state, cls, kwargs, *state_values):
    """The step as a function: params and state in, params and the state that carries gradients out."""
    p = p.clone()
    p.grad = grad
    opt = cls([p], differentiable=True, **kwargs)
    opt.state[p].update({k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()})
    opt.step()
    return (p,) + tuple(v for v in opt.state[p].values() if torch.is_tensor(v) and v.requires_grad)


STEP10 = {"step": torch.tensor(10.0, dtype=torch.float64)}
STATES = {
    "Adam": ({"amsgrad": True}, ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")),
    "AdamW": ({"amsgrad": True, "weight_decay": 0.1}, ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")),
    "RAdam": ({"weight_decay": 0.1, "decoupled_weight_decay": True}, ("exp_avg", "exp_avg_sq")),
    "NAdam": ({"decoupled_weight_decay": True, "weight_decay": 0.1}, ("exp_avg", "exp_avg_sq")),
    "Adamax": ({"weight_decay": 0.1}, ("exp_avg", "exp_inf")),
    "Adagrad": ({"weight_decay": 0.1, "lr_decay": 0.01}, ("sum",)),
    "RMSprop": ({"maximize": True, "momentum": 0.9, "centered": True, "weight_decay": 0.1},
                ("square_avg", "momentum_buffer", "grad_avg")),
    "SGD": ({"momentum": 0.9, "nesterov": True}, ("momentum_buffer",)),
}


@pytest.mark.parametrize("name", sorted(STATES))
def test_one_step_passes_gradcheck(name):
    kwargs, keys = STATES[name]
    state = {} if name == "SGD" else dict(STEP10)
    state.update({k: rand(10) * (1e-2 if k == "grad_avg" else 1) for k in keys})  # centred: v - gbar^2 > 0
    if name == "NAdam":
        state["mu_product"] = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    cls = getattr(adamlab, name)
    assert gradcheck(one_step, (rand(10), rand(10), state, cls, {"lr": 0.9, **kwargs}, *state.values()))


def two_steps_loss(params, grad, cls, lr, weight_decay, beta1, beta2, extra):
    """A loss after two steps, as a function of the hyperparameters (meta-learning)."""
    params = params.clone()
    params.grad = grad
    kwargs = dict(extra, lr=lr, weight_decay=weight_decay)
    if beta1 is not None:
        kwargs["betas"] = (beta1, beta2)
    opt = cls([params], differentiable=True, **kwargs)
    x, y = torch.tensor([1.0], dtype=torch.float64), torch.tensor([2.0], dtype=torch.float64)
    for _ in range(2):
        loss = torch.nn.functional.mse_loss(x * params.sum(), y)
        loss.backward(inputs=(params,), create_graph=True)
        opt.step()
        opt.zero_grad()
    return loss


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
@pytest.mark.parametrize("name, extra", [("Adam", {}), ("AdamW", {}), ("NAdam", {}), ("SGD", {"momentum": 0.9}),
                                         ("RMSprop", {"momentum": 0.5})])
def test_hyperparameters_get_gradients(name, extra):
    lr, wd = torch.tensor(1e-3, dtype=torch.float64, requires_grad=True), torch.tensor(0.5, dtype=torch.float64,
                                                                                     requires_grad=True)
    betas = (rand(()).detach().mul(0.1).add(0.85).requires_grad_(), torch.tensor(0.999, dtype=torch.float64,
                                                                                 requires_grad=True))
    if name in ("SGD", "RMSprop"):
        betas = (None, None)
    cls = getattr(adamlab, name)
    inputs = (rand(10), rand(10), cls, lr, wd, *betas, extra)
    assert gradcheck(two_steps_loss, inputs)
    loss = two_steps_loss(*inputs)
    loss.backward()
    assert lr.grad is not None and wd.grad is not None


def test_a_plain_step_records_nothing():
    p = torch.nn.Parameter(torch.ones(4))
    opt = adamlab.Adam([p])
    p.grad = torch.ones(4)
    opt.step()
    assert p.grad_fn is None and opt.state[p]["exp_avg"].grad_fn is None
