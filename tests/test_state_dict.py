"""Checkpoints: interchangeable with torch.optim, loadable with weights_only, refused when they don't fit.

A run is interrupted after SAVE_AT steps, its optimizer state goes through
torch.save / torch.load(weights_only=True), and a fresh optimizer (the other
library's) continues it. It must land where the uninterrupted run lands.
"""

from __future__ import annotations

import copy

import pytest
import torch
from cases import (
    ALL_CASES,
    STATEFUL,
    assert_same_snapshot,
    by_name,
    fixed_batch,
    loss_fn,
    lr_multiplier,
    rel_diff,
    set_lr,
    small_model,
    snapshot,
    through_bytes,
    tiered,
)

SAVE_AT, MORE = 20, 30
INTERCHANGEABLE = ["adamw", "adam_amsgrad", "sgd_momentum", "rmsprop_centered_momentum", "radam_decoupled"]


def run(model, opt, case, steps, start=1):
    batch = fixed_batch()
    for t in range(start, start + steps):
        set_lr(opt, case.lr * lr_multiplier(t))
        opt.zero_grad()
        loss_fn(model, batch, case.sign).backward()
        opt.step()


def resume(case, save_with, load_with):
    """Final params of a run saved by ``save_with`` and continued by ``load_with``, and of the unbroken run."""
    model = small_model()
    opt = save_with(case)(model.parameters())
    run(model, opt, case, SAVE_AT)
    saved = through_bytes(opt.state_dict())
    resumed_model = copy.deepcopy(model)
    run(model, opt, case, MORE, start=SAVE_AT + 1)

    resumed = load_with(case)(resumed_model.parameters())
    resumed.load_state_dict(saved)
    run(resumed_model, resumed, case, MORE, start=SAVE_AT + 1)
    return list(resumed_model.parameters()), list(model.parameters())


def adamlab_opt(case):
    return case.make


def torch_opt(case):
    return case.make_torch


@pytest.mark.parametrize("name", INTERCHANGEABLE)
def test_torch_checkpoint_continues_in_adamlab(name):
    actual, expected = resume(by_name(name), save_with=torch_opt, load_with=adamlab_opt)
    assert rel_diff(actual, expected) <= 1e-12


@pytest.mark.parametrize("name", INTERCHANGEABLE)
def test_adamlab_checkpoint_continues_in_torch(name):
    actual, expected = resume(by_name(name), save_with=adamlab_opt, load_with=torch_opt)
    assert rel_diff(actual, expected) <= 1e-12


@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_adamlab_checkpoint_resumes_exactly(case):
    """Every configuration, including adamlab's own options (decay_scale needs initial_lr back)."""
    actual, expected = resume(case, save_with=adamlab_opt, load_with=adamlab_opt)
    assert rel_diff(actual, expected) == 0


def stepped(case, model):
    opt = case.make(model.parameters())
    run(model, opt, case, 2)
    return opt


@pytest.mark.parametrize("case", tiered(STATEFUL))
def test_wrong_shapes_are_refused_and_change_nothing(case):
    opt = stepped(case, small_model())
    other = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3)).double()
    foreign = through_bytes(stepped(case, other).state_dict())  # same param count, other shapes
    before = snapshot(opt)
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(foreign)
    assert_same_snapshot(snapshot(opt), before)


@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_wrong_group_count_is_refused_and_changes_nothing(case):
    opt = stepped(case, small_model())
    model = small_model()
    decay, rest = [p for p in model.parameters() if p.ndim == 2], [p for p in model.parameters() if p.ndim < 2]
    two_groups = case.make([{"params": decay}, {"params": rest}])
    before = snapshot(opt)
    with pytest.raises(ValueError, match="group"):
        opt.load_state_dict(through_bytes(two_groups.state_dict()))
    assert_same_snapshot(snapshot(opt), before)
