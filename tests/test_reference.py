"""Every table entry against the independent NumPy transcription (tests/reference.py).

This is the oracle for what torch.optim lacks (bias_correction=False,
decay_scale="schedule", RAdam's threshold, SGD with decoupled decay). The
oracle itself is first checked against torch.optim where torch has the
algorithm, so a wrong transcription cannot pass silently.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cases import ALL_CASES, BACKENDS, TORCH_CASES, lr_multiplier, params, rel_diff
from oracle import Reference

STEPS = 100
SHAPES = [(4, 3), (7,)]


def random_problem(seed=0):
    """Initial params and a sequence of gradients whose scale varies over 1e-3..10."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) * 10 ** rng.uniform(-3, 1) for s in SHAPES] for _ in range(STEPS)]
    return init, grads


def run_torch_style(make_opt, init, grads, lr0):
    ps = [torch.tensor(x, dtype=torch.float64) for x in init]
    opt = make_opt(ps)
    for t, gs in enumerate(grads, start=1):
        for group in opt.param_groups:
            group["lr"] = lr0 * lr_multiplier(t)
        for p, g in zip(ps, gs):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return ps


def run_reference(case, init, grads):
    ref = Reference(case.algorithm, case.hyper(), initial_lr=case.lr)
    ps = [x.copy() for x in init]
    for t, gs in enumerate(grads, start=1):
        ref.step(ps, gs, case.lr * lr_multiplier(t))
    return [torch.from_numpy(p) for p in ps]


@pytest.mark.parametrize("case", params(TORCH_CASES))
def test_oracle_matches_torch(case):
    init, grads = random_problem()
    expected = run_torch_style(case.make_torch, init, grads, case.lr)
    assert rel_diff(run_reference(case, init, grads), expected) <= 1e-10


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", params(ALL_CASES))
def test_matches_reference(case, backend):
    init, grads = random_problem(seed=1)
    expected = run_reference(case, init, grads)
    actual = run_torch_style(lambda ps: case.make(ps, fused=BACKENDS[backend]), init, grads, case.lr)
    assert rel_diff(actual, expected) <= 1e-10


def test_schedule_decay_follows_the_multiplier_not_the_lr():
    """With zero gradients only the decay acts: theta_T = theta_0 prod(1 - eta_t wd)."""
    from cases import by_name

    case = by_name("adamw_schedule_decay")
    init = [np.ones(5)]
    grads = [[np.zeros(5)] for _ in range(STEPS)]
    actual = run_torch_style(case.make, init, grads, case.lr)[0]
    wd = case.kwargs["weight_decay"]
    expected = np.prod([1 - lr_multiplier(t) * wd for t in range(1, STEPS + 1)])
    np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-12)


def test_radam_threshold_changes_the_first_rectified_step():
    """rho_5 is about 4.996 at beta2=0.999: threshold 4 rectifies step 5, threshold 5 does not."""
    from cases import by_name

    init, grads = random_problem(seed=2)
    five, four = by_name("radam"), by_name("radam_threshold4")
    short = grads[:5]
    a = run_torch_style(five.make, init, short, five.lr)
    b = run_torch_style(four.make, init, short, four.lr)
    assert rel_diff(a, b) > 1e-3
    assert rel_diff(b, run_reference(four, init, short)) <= 1e-10
