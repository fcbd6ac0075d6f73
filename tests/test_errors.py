"""Bad input is refused with an error that says what is wrong, and changes nothing.

Like torch's OptimizerInfo error inputs: one table of (class, arguments,
expected words in the message), checked through the constructor and through
add_param_group.
"""

from __future__ import annotations

import re

import pytest
import torch
from cases import ALL_CASES, assert_same_snapshot, params, snapshot

import adamlab

NONNEGATIVE = r"\[0, inf\)"
UNIT_INTERVAL = r"\[0, 1\)"
ADAMS = ("Adam", "AdamW", "RAdam")


def _bad(optimizer, kwargs, *words):
    return pytest.param(optimizer, kwargs, words, id=f"{optimizer}-{'-'.join(f'{k}={v}' for k, v in kwargs.items())}")


BAD_INPUTS = [
    *[_bad(o, {"lr": -1e-3}, "lr", NONNEGATIVE) for o in (*ADAMS, "SGD", "RMSprop")],
    *[_bad(o, {"weight_decay": -0.1}, "weight_decay", NONNEGATIVE) for o in (*ADAMS, "SGD", "RMSprop")],
    *[_bad(o, {"eps": -1e-8}, "eps", NONNEGATIVE) for o in (*ADAMS, "RMSprop")],
    *[_bad(o, {"betas": (1.0, 0.999)}, "betas", UNIT_INTERVAL) for o in ADAMS],
    *[_bad(o, {"betas": (0.9, 1.0)}, "betas", UNIT_INTERVAL) for o in ADAMS],
    *[_bad(o, {"betas": (-0.1, 0.999)}, "betas", UNIT_INTERVAL) for o in ADAMS],
    _bad("Adam", {"betas": (0.9, 1.5)}, "betas", UNIT_INTERVAL),
    _bad("SGD", {"momentum": -0.5}, "momentum", NONNEGATIVE),
    _bad("SGD", {"dampening": -0.5}, "dampening", NONNEGATIVE),
    _bad("SGD", {"nesterov": True}, "nesterov", "momentum"),
    _bad("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov", "dampening"),
    _bad("RMSprop", {"alpha": 1.0}, "alpha", UNIT_INTERVAL),
    _bad("RMSprop", {"alpha": -0.1}, "alpha", UNIT_INTERVAL),
    _bad("RMSprop", {"momentum": -0.5}, "momentum", NONNEGATIVE),
    _bad("Adam", {"decay_scale": "steps"}, "decay_scale", "schedule"),
]


@pytest.mark.parametrize("optimizer, kwargs, words", BAD_INPUTS)
def test_constructor_refuses(optimizer, kwargs, words):
    with pytest.raises(ValueError) as info:
        getattr(adamlab, optimizer)([torch.zeros(3, requires_grad=True)], **kwargs)
    for word in words:
        assert re.search(word, str(info.value)), (word, str(info.value))


def test_adamw_takes_no_decoupled_weight_decay_argument():
    """As torch.optim.AdamW: the decay is always decoupled, and the keyword does not exist."""
    with pytest.raises(TypeError, match="decoupled_weight_decay"):
        adamlab.AdamW([torch.zeros(3, requires_grad=True)], decoupled_weight_decay=False)


@pytest.mark.parametrize("optimizer, kwargs, words", BAD_INPUTS)
def test_add_param_group_refuses(optimizer, kwargs, words):
    opt = getattr(adamlab, optimizer)([torch.zeros(3, requires_grad=True)])
    before = snapshot(opt)
    with pytest.raises(ValueError, match=words[0]):
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)], **kwargs})
    assert_same_snapshot(snapshot(opt), before)


@pytest.mark.parametrize("case", params([c for c in ALL_CASES if not c.info.sparse]))
def test_sparse_gradient_is_refused_and_changes_nothing(case):
    dense = torch.randn(4, 3, requires_grad=True)
    emb = torch.nn.Embedding(6, 3, sparse=True)
    # the sparse param sits in the second group, so checking late would already have stepped the first
    opt = case.make([{"params": [dense]}, {"params": list(emb.parameters())}])
    dense.grad = torch.randn(4, 3)
    emb.weight.grad = torch.randn(6, 3)
    opt.step()  # state exists now

    dense.grad = torch.randn(4, 3)
    emb.weight.grad = None
    emb(torch.tensor([0, 2])).sum().backward()
    assert emb.weight.grad.is_sparse
    before = snapshot(opt), [dense.detach().clone(), emb.weight.detach().clone()]
    with pytest.raises((RuntimeError, ValueError), match="(?i)sparse"):
        opt.step()
    assert_same_snapshot(snapshot(opt), before[0])
    assert torch.equal(dense, before[1][0]) and torch.equal(emb.weight, before[1][1])
