"""Every table entry minimises a quadratic and Rosenbrock's function (as optax's test table does).

Both problems are shifted so that their minimum is at the origin. Weight
decay pulls towards the origin too, so every decay mode shares the problem's
minimiser and no entry needs its decay switched off. ``maximize=True``
entries are given the negated objective. The lr is held for the first three
quarters of the run, then decays to 1% of it, so sign-like methods settle.
"""

from __future__ import annotations

import pytest
import torch
from cases import ALL_CASES, tiered

TOLERANCE = 1e-2  # max |z - z*|; optax's table uses 3e-2


def quadratic_grad(z):
    """Gradient of sum(c_i z_i^2) with curvatures spread over 10x."""
    return 2 * torch.tensor([1.0, 0.3, 3.0], dtype=z.dtype) * z


def rosenbrock_grad(z):
    """Gradient of (1-x)^2 + 100 (y-x^2)^2 at (x, y) = z + 1."""
    x, y = z[0] + 1, z[1] + 1
    return torch.stack([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def lr_at(case, t: int) -> float:
    fraction = max(0.0, 4 * t / case.converge_steps - 3)
    return case.converge_lr * 0.01**fraction


LONG = 2000  # runs longer than this many steps are in the slow tier


TIERED = tiered(ALL_CASES, slow=lambda c: c.converge_steps > LONG)


@pytest.mark.parametrize("case", TIERED)
def test_converges(case):
    # Both problems in one optimizer: the updates are elementwise, so two
    # params behave as two independent runs, at half the cost.
    quad = torch.tensor([-2.0, 3.0, 0.5], dtype=torch.float64)
    rosen = torch.tensor([-1.0, -1.0], dtype=torch.float64)  # (x, y) = (0, 0), optax's start
    opt = case.make([quad, rosen], lr=case.converge_lr)
    sign = case.sign
    for t in range(case.converge_steps):
        opt.param_groups[0]["lr"] = lr_at(case, t)
        quad.grad = sign * quadratic_grad(quad)
        rosen.grad = sign * rosenbrock_grad(rosen)
        opt.step()
    assert quad.abs().max() < TOLERANCE, quad
    assert rosen.abs().max() < TOLERANCE, rosen
