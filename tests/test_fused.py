"""The fused C path against the readable reference path, on every configuration.

Both paths run the same rule from adamlab.rules; these tests check that the
generated loop computes what the rule says, for every table entry and dtype,
on layouts that stress the chunking (many tensors, sizes around the chunk
length, odd strides), and that schedules never cause a rebuild.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from cases import ALL_CASES, lr_multiplier, params, rel_diff, set_lr, tiered

import adamlab
from adamlab.backends import build, cpu

# fp32 paths differ only where torch's sqrt/div are not correctly rounded; half
# params round to fp16/bf16 once per step from identical fp32 values.
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2}
SIZES = [1, 7, 33, 1000, cpu.CHUNK - 1, cpu.CHUNK + 3]


def run(case, dtype, fused, steps=40, sizes=SIZES, grad_layout=lambda g: g):
    """Params and states after `steps` steps of random gradients, same seed for both paths."""
    gen = torch.Generator().manual_seed(0)
    ps = [torch.randn(n, generator=gen).to(dtype).requires_grad_() for n in sizes]
    opt = case.make(ps, fused=fused, lr=case.lr * 0.1)
    base = opt.param_groups[0]["lr"]
    for t in range(1, steps + 1):
        set_lr(opt, base * lr_multiplier(t))
        for p in ps:
            p.grad = grad_layout(torch.randn(p.shape, generator=gen).to(dtype))
        opt.step()
    return ps, [opt.state[p] for p in ps]


@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=lambda d: str(d).split(".")[1])
@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_fused_matches_reference(case, dtype):
    fast, fast_state = run(case, dtype, fused=True)
    ref, ref_state = run(case, dtype, fused=False)
    assert rel_diff(fast, ref) <= TOLERANCE[dtype]
    for got, want in zip(fast_state, ref_state):
        assert set(got) == set(want)
        for key in want:
            assert got[key].dtype == want[key].dtype, key
            assert rel_diff([got[key]], [want[key]]) <= TOLERANCE[dtype], key


def test_half_params_keep_fp32_state_on_the_fused_path():
    case = next(c for c in ALL_CASES if c.name == "adam_amsgrad")
    ps, states = run(case, torch.bfloat16, fused=True, steps=2, sizes=[10])
    assert ps[0].dtype == torch.bfloat16
    assert {s.dtype for k, s in states[0].items() if k != "step"} == {torch.float32}


STRIDE_CASES = [c for c in ALL_CASES if c.name in ("adamw", "sgd_nesterov", "rmsprop_centered")]


@pytest.mark.parametrize("case", params(STRIDE_CASES))
def test_gradient_strides_do_not_change_the_update(case):
    """A transposed-layout grad (torch's fused CPU kernel gets this wrong) follows the element."""
    def transposed_copy(g):
        return g.reshape(40, -1).t().contiguous().t().reshape(g.shape) if g.numel() % 40 == 0 else g

    plain, _ = run(case, torch.float32, fused=True, sizes=[1200, 4000])
    strided, _ = run(case, torch.float32, fused=True, sizes=[1200, 4000], grad_layout=transposed_copy)
    assert all(torch.equal(a, b) for a, b in zip(plain, strided))


def test_a_schedule_builds_each_kernel_once():
    """1000 steps with lr and betas changing every step: one build per (config, dtype) at most."""
    cpu._kernels.clear()
    before = build.builds
    keys_before = set(cpu._kernels)
    p = torch.randn(100, requires_grad=True)
    opt = adamlab.AdamW([p], lr=1e-3, fused=True)
    for t in range(1000):
        opt.param_groups[0]["lr"] = 1e-3 * (1 + t) / 1000
        opt.param_groups[0]["betas"] = (0.9 - 1e-5 * t, 0.999 - 1e-6 * t)
        p.grad = torch.randn(100)
        opt.step()
    assert len(set(cpu._kernels) - keys_before) == 1
    assert build.builds - before <= 1


@pytest.mark.slow  # two fresh processes
def test_a_later_process_reuses_the_compiled_kernel(tmp_path):
    """The on-disk cache: a second process builds nothing for a configuration built before."""
    script = (
        "import torch, adamlab\nfrom adamlab.backends import build\n"
        "p = torch.randn(10, requires_grad=True); p.grad = torch.randn(10)\n"
        "adamlab.Adam([p], amsgrad=True, fused=True).step()\nprint(build.builds)\n"
    )
    env = {**os.environ, "ADAMLAB_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert (first.stdout.strip(), second.stdout.strip()) == ("1", "0")


def test_lr_zero_changes_nothing_on_the_fused_path():
    """The distributed-checkpoint contract: step() at lr=0 creates state and moves no param."""
    for case in ALL_CASES:
        p = torch.randn(50, requires_grad=True)
        p.grad = torch.randn(50)
        before = p.detach().clone()
        opt = case.make([p], fused=True, weight_decay=0.1)
        opt.param_groups[0]["lr"] = 0.0  # what torch.distributed.checkpoint does on a fresh optimizer
        opt.step()
        assert torch.equal(p.detach(), before), case.name


def test_an_unpickled_optimizer_continues_like_the_original():
    """The fused path's caches are derived state: pickling drops them, and the copy rebuilds them."""
    import pickle

    ps = [torch.randn(n, dtype=torch.float64, requires_grad=True) for n in (3, 40)]
    opt = adamlab.AdamW(ps, lr=1e-2, amsgrad=True)
    for p in ps:
        p.grad = torch.randn_like(p)
    opt.step()
    twin = pickle.loads(pickle.dumps({"opt": opt, "params": ps}))
    for a, b in zip(ps, twin["params"]):
        a.grad = b.grad = torch.randn_like(a)
    opt.step()
    twin["opt"].step()
    assert all(torch.equal(a, b) for a, b in zip(ps, twin["params"]))
