"""fp16 and bf16 params: fp32 state, fp32 arithmetic, one rounding per step.

The trajectory oracle is the NumPy reference in float64 with the param
rounded to the half type after every step: exactly what "compute in fp32,
round once" should give, up to the rare result that lands on a rounding
boundary. Gradients are fixed random numbers, so a difference is carried
forward but never amplified by the model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cases import ALL_CASES, BACKENDS, STATEFUL, lr_multiplier, params, through_bytes, tiered
from oracle import Reference

HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}
GRADS = torch.tensor([1e-4, 1e-3, 1e-2, 1.0])
ADAM_FIRST_STEP = [c for c in ALL_CASES if c.algorithm == "adam" and c.kwargs.get("bias_correction", True)]


@pytest.mark.parametrize("half", HALF)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_state_is_fp32_and_params_keep_their_dtype(case, backend, half):
    p = torch.randn(6, 5).to(HALF[half])
    opt = case.make([p], fused=BACKENDS[backend])
    for _ in range(2):
        p.grad = torch.randn(6, 5).to(HALF[half])
        opt.step()
    assert p.dtype == HALF[half]
    for key, value in opt.state[p].items():
        if key != "step":
            assert value.dtype == torch.float32, key


@pytest.mark.parametrize("half", HALF)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", params(ADAM_FIRST_STEP))
def test_first_adam_step_moves_each_coordinate_by_lr(case, backend, half):
    """Adam's first step is lr*g/(|g|+eps) whatever the scale of g; here g spans 1e-4..1."""
    lr = 1e-3
    p = torch.zeros(4, dtype=HALF[half])  # zero: half precision resolves 1e-3 well near 0, and decay is idle
    p.grad = GRADS.to(HALF[half])
    case.make([p], lr=lr, fused=BACKENDS[backend]).step()
    g = p.grad.float()
    eps = case.hyper()["eps"]
    expected = -case.sign * lr * g / (g.abs() + eps)
    assert torch.isfinite(p).all()
    torch.testing.assert_close(p.float(), expected, rtol=0.01, atol=0)


def test_torch_adam_overflows_on_the_same_step():
    """The documented contrast: torch keeps fp16 state, v underflows and eps=1e-8 rounds to 0."""
    p = torch.zeros(4, dtype=torch.float16)
    p.grad = GRADS.half()
    torch.optim.Adam([p], lr=1e-3).step()
    assert not torch.isfinite(p).all()


def round_to(dtype, x: np.ndarray) -> np.ndarray:
    return torch.from_numpy(x).to(dtype).double().numpy()


def ulps(actual: torch.Tensor, expected: np.ndarray, dtype) -> np.ndarray:
    """|actual - expected| in units of the half type's spacing at expected."""
    e = torch.from_numpy(expected).to(dtype).abs()
    spacing = torch.nextafter(e, torch.full_like(e, float("inf"))).double() - e.double()
    return ((actual.double() - torch.from_numpy(expected)).abs() / spacing).numpy()


STEPS = 40


@pytest.mark.parametrize("half", HALF)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_trajectory_tracks_rounded_reference(case, backend, half):
    dtype = HALF[half]
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(8, 6, generator=gen).to(dtype)
    grads = [
        (torch.randn(8, 6, generator=gen) * 10 ** (torch.rand(1, generator=gen) * 3 - 2)).to(dtype)
        for _ in range(STEPS)
    ]
    expected = p.double().numpy().copy()
    ref = Reference(case.algorithm, case.hyper(), initial_lr=case.lr)

    opt = case.make([p], fused=BACKENDS[backend])
    for t, g in enumerate(grads, start=1):
        lr = case.lr * lr_multiplier(t)
        opt.param_groups[0]["lr"] = lr
        p.grad = g
        opt.step()
        ref.step([expected], [g.double().numpy()], lr)
        expected[...] = round_to(dtype, expected)

    off = ulps(p, expected, dtype)
    # A float32 result next to a rounding boundary may round the other way (1 ulp,
    # then carried). torch.optim's half arithmetic misses by 2 ulps or more, or overflows.
    assert off.max() <= 1, off.max()
    assert (off > 0.5).mean() <= 0.1, (off > 0.5).mean()


@pytest.mark.parametrize("case", tiered(STATEFUL))
def test_loading_into_half_params_keeps_fp32_state(case):
    source = torch.nn.Linear(4, 3)
    opt = case.make(source.parameters())
    for _ in range(3):
        source.zero_grad()
        source(torch.randn(8, 4)).pow(2).sum().backward()
        opt.step()
    saved = through_bytes(opt.state_dict())

    half = torch.nn.Linear(4, 3).half()
    loaded = case.make(half.parameters())
    loaded.load_state_dict(saved)
    for p, pid in zip(half.parameters(), saved["param_groups"][0]["params"]):
        for key, value in saved["state"][pid].items():
            if key != "step":
                assert loaded.state[p][key].dtype == torch.float32, key
                assert torch.equal(loaded.state[p][key], value), key


def test_torch_downcasts_state_when_loading_into_half_params():
    """The contrast: torch casts floating state to the param's dtype on load."""
    source = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(source.parameters())
    source(torch.randn(8, 4)).sum().backward()
    opt.step()
    half = torch.nn.Linear(4, 3).half()
    loaded = torch.optim.Adam(half.parameters())
    loaded.load_state_dict(through_bytes(opt.state_dict()))
    assert loaded.state[half.weight]["exp_avg"].dtype == torch.float16
