"""adamlab against torch.optim: same model, same data, same changing lr, same trajectory.

Every configuration torch supports, on both backends, in float64 and float32.
The lr changes every step (the same multiplier for both), so per-step scalars
are recomputed each time. State is compared too: the keys torch keeps, and
their values, since checkpoints must be interchangeable.
"""

from __future__ import annotations

import functools

import pytest
import torch
from cases import (
    BACKENDS,
    TORCH_CASES,
    by_name,
    fixed_batch,
    loss_fn,
    lr_multiplier,
    rel_diff,
    set_lr,
    small_model,
    tiered,
)

STEPS = 150
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
# Moments average sign-changing gradients, so the same rounding differences
# are larger relative to them than to the params.
STATE_TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4}


def train(make_opt, dtype, sign):
    """Final params and optimizer state after STEPS steps on the fixed problem."""
    model = small_model(dtype)
    batch = fixed_batch(dtype)
    opt = make_opt(list(model.parameters()))
    base = opt.param_groups[0]["lr"]
    for t in range(1, STEPS + 1):
        set_lr(opt, base * lr_multiplier(t))
        opt.zero_grad()
        loss_fn(model, batch, sign).backward()
        opt.step()
    ps = [p.detach().clone() for p in model.parameters()]
    return ps, [opt.state[p] for p in model.parameters()]


@functools.cache
def torch_trajectory(name, dtype):
    case = by_name(name)
    return train(case.make_torch, dtype, case.sign)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", tiered(TORCH_CASES))
def test_trajectory_matches_torch(case, backend, dtype):
    expected, expected_state = torch_trajectory(case.name, dtype)
    actual, actual_state = train(lambda ps: case.make(ps, fused=BACKENDS[backend]), dtype, case.sign)

    assert rel_diff(actual, expected) <= TOLERANCE[dtype]
    for got, want in zip(actual_state, expected_state):
        assert set(got) == set(want)
        for key in want:
            if key == "step":
                assert float(got[key]) == float(want[key]) == STEPS
            else:
                assert got[key].dtype == want[key].dtype
                assert rel_diff([got[key]], [want[key]]) <= STATE_TOLERANCE[dtype], key
