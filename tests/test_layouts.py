"""Memory layout never changes the update: it follows elements, not raw memory order.

torch's fused CPU Adam reads a grad whose strides differ from its param's in
raw memory order (conventions.md). Here every table entry, on both backends,
gets params and grads in several layouts; each run must equal the run with
contiguous tensors, element for element.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from cases import ALL_CASES, BACKENDS, by_name, tiered

SHAPES = [(6, 5), (4, 3, 2, 2), (7,)]
STEPS = 4


def other_strides(x):
    """Same values, a permuted memory order: transposed for matrices, channels_last for 4-d."""
    if x.ndim == 2:
        return x.t().contiguous().t()
    if x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x.clone()


def strided_view(x):
    """Same values, every other element of a larger buffer (not contiguous, storage offset 1)."""
    big = torch.zeros(*x.shape[:-1], 2 * x.shape[-1] + 1, dtype=x.dtype)
    view = big[..., 1::2]
    view.copy_(x)
    return view


PARAM_LAYOUTS = {"contiguous": torch.clone, "other_strides": other_strides}
GRAD_LAYOUTS = {"contiguous": torch.clone, "other_strides": other_strides, "strided_view": strided_view}


def run(case, fused, param_layout, grad_layout):
    gen = torch.Generator().manual_seed(5)
    ps = [param_layout(torch.randn(s, generator=gen, dtype=torch.float64)) for s in SHAPES]
    strides = [p.stride() for p in ps]
    opt = case.make(ps, fused=fused)
    for _ in range(STEPS):
        for p in ps:
            p.grad = grad_layout(torch.randn(p.shape, generator=gen, dtype=torch.float64))
        opt.step()
    assert [p.stride() for p in ps] == strides, "a param lost its layout"
    return ps, [opt.state[p] for p in ps]


LAYOUTS = [
    pytest.param(pl, gl, id=f"param_{pl}-grad_{gl}")
    for pl, gl in itertools.product(PARAM_LAYOUTS, GRAD_LAYOUTS)
    if (pl, gl) != ("contiguous", "contiguous")
]


@pytest.mark.parametrize("param_layout, grad_layout", LAYOUTS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_layout_does_not_change_the_update(case, backend, param_layout, grad_layout):
    fused = BACKENDS[backend]
    expected, expected_state = run(case, fused, torch.clone, torch.clone)
    actual, actual_state = run(case, fused, PARAM_LAYOUTS[param_layout], GRAD_LAYOUTS[grad_layout])
    for a, e in zip(actual, expected):
        assert torch.equal(a, e)
    for a, e in zip(actual_state, expected_state):
        for key in e:
            assert torch.equal(a[key], e[key]), key


def test_torch_fused_adam_contrast():
    """The peer defect this file guards against; skipped if torch no longer has it."""
    case = by_name("adam")
    w = torch.randn(6, 5, dtype=torch.float64)
    results = []
    for fused in (False, True):
        p = w.clone()
        p.grad = other_strides(torch.arange(30.0, dtype=torch.float64).reshape(6, 5))
        torch.optim.Adam([p], lr=case.lr, fused=fused).step()
        results.append(p)
    if torch.equal(*results):
        pytest.skip("torch's fused Adam now follows grad strides")
    ours = w.clone()
    ours.grad = other_strides(torch.arange(30.0, dtype=torch.float64).reshape(6, 5))
    case.make([ours]).step()
    assert torch.equal(ours, results[0])
