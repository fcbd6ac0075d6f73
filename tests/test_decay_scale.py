"""decay_scale="schedule": decay follows lr / base_lr, whatever a torch scheduler does to initial_lr."""

from __future__ import annotations

import pytest
import torch
from cases import lrs_seen

import adamlab


def test_one_cycle_does_not_change_the_decay_base():
    """OneCycleLR rewrites initial_lr to max_lr/25; the multiplier must still be lr / (lr at construction)."""
    lr, wd, steps = 1e-2, 0.05, 30
    make = lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=lr, total_steps=steps)  # noqa: E731
    p = torch.ones(4, dtype=torch.float64, requires_grad=True)
    opt = adamlab.AdamW([p], lr=lr, weight_decay=wd, decay_scale="schedule")
    sched = make(opt)
    for _ in range(steps):
        p.grad = torch.zeros_like(p)
        opt.step()
        sched.step()
    expected = torch.tensor(1.0, dtype=torch.float64)
    for lr_t in lrs_seen(make, steps, lr):
        expected *= 1 - (lr_t / lr) * wd
    assert torch.allclose(p.detach(), expected.expand(4), rtol=1e-12)


def test_a_negative_decay_factor_is_refused_and_changes_nothing():
    p = torch.ones(3, requires_grad=True)
    opt = adamlab.AdamW([p], lr=1e-3, weight_decay=0.5, decay_scale="schedule")
    p.grad = torch.ones(3)
    opt.step()
    before = (p.detach().clone(), {k: v.clone() for k, v in opt.state[p].items()})
    opt.param_groups[0]["lr"] = 3e-3  # multiplier 3: 1 - 3 * 0.5 < 0
    with pytest.raises(ValueError, match="weight_decay"):
        opt.step()
    assert torch.equal(p.detach(), before[0])
    assert all(torch.equal(opt.state[p][k], v) for k, v in before[1].items())


def test_a_zero_base_lr_is_refused_once_the_lr_rises():
    p = torch.ones(3, requires_grad=True)
    p.grad = torch.ones(3)
    opt = adamlab.AdamW([p], lr=0.0, weight_decay=0.1, decay_scale="schedule")
    opt.step()  # lr 0: nothing moves, and nothing to divide
    assert torch.equal(p.detach(), torch.ones(3))
    opt.param_groups[0]["lr"] = 1e-3
    with pytest.raises(ValueError, match="base_lr"):
        opt.step()
    opt.param_groups[0]["base_lr"] = 1e-3
    opt.step()
    assert p.detach()[0] < 1
